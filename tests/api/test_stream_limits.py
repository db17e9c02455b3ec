"""One tenant cannot hold the server's streams: event streams, followed logs and execs count
against a per-tenant limit (``CRANE_MAX_STREAMS_PER_TENANT``, here 3); past it a new one is a
429 problem, other tenants stream on, and a closed or failed stream gives its place back.

The server runs the Docker backend without hosts (no Docker daemon needed: cargos wait).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.dockerd import ROOT, DockerServer, env, serve_docker

ADMIN = "crane_streams_" + "s" * 43
LIMIT = 3
TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerServer]:
    running = serve_docker(
        tmp_path_factory.mktemp("streams"), ADMIN, [], CRANE_MAX_STREAMS_PER_TENANT=str(LIMIT)
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tokens(server: DockerServer) -> dict[str, str]:
    """Tenants st-a (a tenant token and a MiniCluster token) and st-b; st-a has a cargo of two
    replicas that never runs (no hosts)."""
    with server.client() as admin:
        for tenant in ("st-a", "st-b"):
            assert admin.post("/v1/tenants", json={"name": tenant}).status_code == 201
        body = {"name": "mc", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 4}}}
        made = admin.post("/v1/miniclusters", params={"tenant": "st-a"}, json=body)
        assert made.status_code == 201, made.text
        cargo = {
            "name": "job",
            "spec": {"miniCluster": "mc", "replicas": 2, "template": TEMPLATE},
        }
        made = admin.post("/v1/cargos", params={"tenant": "st-a"}, json=cargo)
        assert made.status_code == 201, made.text

        def token(**body: Any) -> str:
            made = admin.post("/v1/tokens", json=body)
            assert made.status_code == 201, made.text
            return str(made.json()["token"])

        return {
            "a": token(scope="tenant", tenant="st-a"),
            "a-mc": token(scope="minicluster", tenant="st-a", miniCluster="mc"),
            "b": token(scope="tenant", tenant="st-b"),
        }


def _open(stack: ExitStack, server: DockerServer, token: str) -> httpx.Response:
    """An event stream of ``token``, kept open until ``stack`` closes; its first line read when
    it was accepted."""
    client = stack.enter_context(
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    )
    response = stack.enter_context(client.stream("GET", "/v1/events"))
    if response.status_code == 200:
        lines = response.iter_lines()
        stack.callback(lines.close)  # kept: a dropped line iterator closes the stream
        assert next(lines).startswith(": connected")
    else:
        response.read()
    return response


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 429, f"answered {response.status_code}: the limit did not hold"
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["type"].endswith("/too-many-streams"), problem
    assert f"{LIMIT} event streams, followed logs and execs open" in problem["detail"], problem


def _opens_within(server: DockerServer, token: str, seconds: float = 60) -> None:
    """A new stream of ``token`` is accepted within ``seconds`` (a closed one's place is back)."""
    deadline = time.monotonic() + seconds
    while True:
        with ExitStack() as stack:
            if _open(stack, server, token).status_code == 200:
                return
        assert time.monotonic() < deadline, "a closed stream never gave its place back"
        time.sleep(0.1)


def test_a_tenant_past_its_stream_limit_is_429_and_other_tenants_stream_on(
    server: DockerServer, tokens: dict[str, str]
) -> None:
    with ExitStack() as held:
        first = ExitStack()
        assert _open(first, server, tokens["a"]).status_code == 200
        assert _open(held, server, tokens["a"]).status_code == 200
        assert _open(held, server, tokens["a-mc"]).status_code == 200  # the same tenant's
        with ExitStack() as extra:
            _refused(_open(extra, server, tokens["a"]))
            _refused(_open(extra, server, tokens["a-mc"]))
            assert _open(extra, server, tokens["b"]).status_code == 200
            with server.client() as admin:  # and the API answers everyone
                assert admin.get("/v1/miniclusters", params={"tenant": "st-a"}).status_code == 200
        first.close()
        _opens_within(server, tokens["a"])
    _opens_within(server, tokens["a"])


def test_an_exec_counts_against_the_limit_while_it_runs(
    server: DockerServer, tokens: dict[str, str]
) -> None:
    """Each exec holds a server thread until its command ends: with the tenant's streams all
    open, an exec is a 429 too (it was run, one thread more each); with one closed it runs
    (here: 404, the replica has no container), and an exec's place comes back when it ends."""
    headers = {"Authorization": f"Bearer {tokens['a']}"}
    body = {"replica": 0, "command": ["true"], "timeoutSeconds": 5}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        with ExitStack() as held:
            first = ExitStack()
            for _ in range(LIMIT - 1):
                assert _open(held, server, tokens["a"]).status_code == 200
            assert _open(first, server, tokens["a"]).status_code == 200
            _refused(api.post("/v1/cargos/job:exec", json=body))
            first.close()
            deadline = time.monotonic() + 60
            while (ran := api.post("/v1/cargos/job:exec", json=body)).status_code == 429:
                assert time.monotonic() < deadline, "a closed stream never gave its place back"
                time.sleep(0.1)
            assert ran.status_code == 404, ran.text
            for _ in range(2 * LIMIT):  # each ended exec gave its place back
                assert api.post("/v1/cargos/job:exec", json=body).status_code == 404
        _opens_within(server, tokens["a"])


def test_a_log_that_cannot_be_followed_gives_its_place_back(
    server: DockerServer, tokens: dict[str, str]
) -> None:
    """Twice the limit of failed follows (the cargo has no container), then the limit's worth
    of event streams still opens."""
    headers = {"Authorization": f"Bearer {tokens['a']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as api:
        for _ in range(2 * LIMIT):
            answer = api.get("/v1/cargos/job/logs", params={"follow": "true"})
            assert answer.status_code not in (200, 429, 500), answer.text
    with ExitStack() as held:
        for _ in range(LIMIT):
            assert _open(held, server, tokens["a"]).status_code == 200


def test_following_every_replica_reports_each_failure_in_one_line(
    server: DockerServer, tokens: dict[str, str], tmp_path: Path
) -> None:
    """`crane cargo logs --all-replicas -f` on a cargo whose replicas have no container: one
    error line per replica, no traceback, a failing exit code."""
    proc = subprocess.run(
        [sys.executable, "-m", "crane", "cargo", "logs", "job", "--all-replicas", "-f"],
        env=env(
            CRANE_API_URL=server.url,
            CRANE_TOKEN=tokens["a"],
            CRANE_CONFIG_DIR=str(tmp_path / "cfg"),
        ),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    errors = sorted(line for line in proc.stderr.splitlines() if line.strip())
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert [line.split("] ")[0] for line in errors] == ["[replica 0", "[replica 1"], errors
    assert all("] error: " in line for line in errors), errors
