"""Hold/release, ``logs --since`` and exec on the Docker backend, through the CLI and the API
of a real ``crane serve --backend docker`` on one dockerd (issue 15)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crane.docker.hosts import HostSpec
from tests.dockerd import IMAGE, DockerServer, cli, serving

ADMIN = "crane_dockops_" + "o" * 43
TICK = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; i=0; while true; do echo tick-$i; i=$((i+1)); sleep 1; done",
]
"""A line a second (so a `--since` window holds fewer lines than the whole log); ends on TERM."""


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerServer]:
    """h0 (8 H100) alone."""
    with serving(tmp_path_factory.mktemp("ops"), ADMIN, host_specs[:1]) as running:
        yield running


@pytest.fixture
def crane(server: DockerServer, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``crane`` as the admin against the module's server."""
    return cli(server.url, ADMIN, tmp_path)


def _until(check: Callable[[], Any], what: str, seconds: float = 60) -> Any:
    deadline = time.monotonic() + seconds
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return got


def _template_mc(
    api: httpx.Client, name: str, replicas: int = 1, command: list[str] = TICK
) -> None:
    template = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": command}]}}
    spec = {
        "gpuType": "H100",
        "gpus": {"min": 4, "max": 8},
        "replicas": replicas,
        "template": {"replicas": 1, "gpusPerReplica": 4, "template": template},
    }
    created = api.post("/v1/miniclusters", json={"name": name, "spec": spec})
    assert created.status_code == 201, created.text


def _phase(api: httpx.Client, cargo: str) -> str | None:
    got = api.get(f"/v1/cargos/{cargo}")
    return got.json()["status"]["phase"] if got.status_code == 200 else None


def _reserved_by(api: httpx.Client, mc: str) -> int:
    """GPUs of the map that ``mc`` reserves or uses."""
    return sum(
        1
        for node in api.get("/v1/nodes").json()["items"]
        for gpu in node["gpus"]
        if any(
            (gpu.get(field) or "").rpartition("/")[2] == mc
            for field in ("reservedFor", "miniCluster")
        )
    )


def test_hold_releases_the_gpus_keeps_the_object_and_release_regrows(
    admin: httpx.Client, crane: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    _template_mc(admin, "held")
    try:
        _until(lambda: _phase(admin, "held-0") == "Running", "held-0 running")
        assert _reserved_by(admin, "held") >= 4
        done = crane("mc", "hold", "held")
        assert done.returncode == 0, done.stderr
        assert "held" in done.stderr
        _until(lambda: _phase(admin, "held-0") is None, "held-0 deleted")

        def released() -> dict[str, Any] | None:
            mc: dict[str, Any] = admin.get("/v1/miniclusters/held").json()
            gone = mc["status"]["reservedGpus"] == 0 and _reserved_by(admin, "held") == 0
            return mc if gone else None

        mc = _until(released, "the held MiniCluster's GPUs released")
        assert mc["spec"]["suspend"] is True and mc["spec"]["gpus"] == {"min": 4, "max": 8}
        admitted = next(c for c in mc["status"]["conditions"] if c["type"] == "Admitted")
        assert (admitted["status"], admitted["reason"]) == ("False", "Held")
        assert "crane mc release held" in mc["status"]["message"]
        listed = crane("mc", "get", "held")
        assert "Held" in listed.stdout, listed.stdout
        grow = admin.post("/v1/miniclusters/held:grow", json={"count": 1})
        assert grow.status_code == 422 and "release" in grow.json()["detail"], grow.text
        done = crane("mc", "release", "held")
        assert done.returncode == 0, done.stderr
        _until(lambda: _phase(admin, "held-0") == "Running", "held-0 running again")
        mc = admin.get("/v1/miniclusters/held").json()
        assert mc["spec"]["suspend"] is False and mc["status"]["reservedGpus"] == 4
    finally:
        admin.delete("/v1/miniclusters/held")


def test_logs_since_and_exec(
    admin: httpx.Client, crane: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    _template_mc(admin, "ops")
    try:
        _until(lambda: _phase(admin, "ops-0") == "Running", "ops-0 running")

        def whole() -> list[str] | None:
            lines = admin.get("/v1/cargos/ops-0/logs").text.splitlines()
            return lines if len(lines) >= 6 else None

        everything = _until(whole, "six log lines")
        recent = crane("cargo", "logs", "ops-0", "--since", "2s")
        assert recent.returncode == 0, recent.stderr
        lines = recent.stdout.splitlines()
        assert lines and "tick-0" not in lines, lines
        assert len(lines) < len(everything) and all(line.startswith("tick-") for line in lines)
        bad = crane("cargo", "logs", "ops-0", "--since", "soon")
        assert bad.returncode != 0 and "not a duration" in bad.stderr

        ran = crane("exec", "ops-0", "--", "sh", "-c", "echo in-$CRANE_CARGO; exit 3")
        assert ran.returncode == 3, ran.stderr
        assert ran.stdout == "in-ops-0\n"
        ok = crane("exec", "ops-0", "--replica", "0", "--", "true")
        assert ok.returncode == 0 and ok.stdout == ""
        # A command past --timeout: the server's remedy alone (it read "...; pick another
        # name, or fetch the object again and retry", a generic conflict's).
        slow = crane("exec", "ops-0", "--timeout", "1s", "--", "sleep", "30")
        assert slow.returncode == 1, slow.stderr
        assert "did not finish within 1s" in slow.stderr and "crane exec --timeout" in slow.stderr
        assert "pick another name" not in slow.stderr, slow.stderr
        missing = admin.post("/v1/cargos/ops-0:exec", json={"replica": 5, "command": ["true"]})
        assert missing.status_code == 404, missing.text
        nothing = admin.post("/v1/cargos/nope:exec", json={"command": ["true"]})
        assert nothing.status_code == 404, nothing.text
    finally:
        admin.delete("/v1/miniclusters/ops")


def test_exec_ends_at_its_timeout_and_stalls_no_one(
    server: DockerServer, admin: httpx.Client
) -> None:
    """``timeoutSeconds`` bounds the whole command, however often it writes (it bounded only
    the wait for each chunk: `crane exec --timeout 3 -- sleep 15` answered after 15 s, a
    command printing a line a second never ended), a command writing without end is cut off
    at 1 MiB instead of growing the server's memory, and a handful of long execs do not take
    the threads the rest of the API needs (they held them: every tenant's `crane nodes` and
    `mc create` timed out until the commands ended)."""
    _template_mc(admin, "slowexec")
    try:
        _until(lambda: _phase(admin, "slowexec-0") == "Running", "slowexec-0 running")
        chatty = ["sh", "-c", "while true; do echo x; sleep 1; done"]
        answers: list[tuple[int, float, str]] = []

        def one() -> None:
            started = time.monotonic()
            with httpx.Client(base_url=server.url, headers=admin.headers, timeout=45) as api:
                try:
                    got = api.post(
                        "/v1/cargos/slowexec-0:exec",
                        json={"command": chatty, "timeoutSeconds": 3},
                    )
                except httpx.TimeoutException:
                    answers.append((0, time.monotonic() - started, "no answer in 45 s"))
                    return
            answers.append((got.status_code, time.monotonic() - started, got.text))

        execs = [threading.Thread(target=one) for _ in range(8)]
        for thread in execs:
            thread.start()
        time.sleep(1)
        asked = time.monotonic()
        nodes = admin.get("/v1/nodes", timeout=45)
        waited = time.monotonic() - asked
        for thread in execs:
            thread.join()
        assert nodes.status_code == 200 and waited < 15, (nodes.status_code, waited)
        assert len(answers) == 8
        for status, took, text in answers:
            assert status == 409 and "did not finish within 3s" in text, (status, text)
            assert took < 20, took
        flood = admin.post(
            "/v1/cargos/slowexec-0:exec",
            json={"command": ["cat", "/dev/zero"], "timeoutSeconds": 60},
            timeout=90,
        )
        assert flood.status_code == 409, flood.text[:300]
        assert "more than 1048576 bytes" in flood.json()["detail"]
        still = admin.post(
            "/v1/cargos/slowexec-0:exec",
            json={"command": ["sh", "-c", "echo out; echo err >&2; exit 4"]},
        )
        assert still.status_code == 200, still.text
        assert still.json()["exitCode"] == 4
        assert sorted(still.json()["output"].split()) == ["err", "out"]
    finally:
        admin.delete("/v1/miniclusters/slowexec")


def test_a_log_line_of_32_mb_is_answered_at_once_in_pieces(admin: httpx.Client) -> None:
    """A replica writing 32 MB without a newline: its log took the server minutes of CPU to
    answer (the line was joined chunk by chunk, in time the square of its length, and held
    whole in memory); it now comes at once, the long line in pieces of 64 KiB."""
    write = (
        'BEGIN { s = "x"; for (i = 0; i < 16; i++) s = s s; '
        'for (i = 0; i < 512; i++) printf "%s", s; print ""; print "end"; system("sleep 300") }'
    )
    template = {
        "spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["awk", write]}]}
    }
    spec = {
        "gpuType": "H100",
        "gpus": {"min": 1, "max": 1},
        "replicas": 1,
        "template": {"replicas": 1, "gpusPerReplica": 1, "template": template},
    }
    created = admin.post("/v1/miniclusters", json={"name": "longline", "spec": spec})
    assert created.status_code == 201, created.text
    try:
        _until(
            lambda: admin.get("/v1/cargos/longline-0/logs", params={"tail": 1}).text == "end\n",
            "the 32 MB line written",
            120,
        )
        started = time.monotonic()
        try:
            whole = admin.get("/v1/cargos/longline-0/logs", timeout=60)
        except httpx.TimeoutException:
            pytest.fail("the log of a 32 MB line was not answered within 60 s")
        took = time.monotonic() - started
        assert whole.status_code == 200 and took < 45, (whole.status_code, took)
        lines = whole.text.split("\n")
        assert lines[-2:] == ["end", ""]
        assert sum(map(len, lines[:-2])) == 65536 * 512
        assert max(map(len, lines)) == 65536
    finally:
        admin.delete("/v1/miniclusters/longline")


def test_a_followed_log_of_a_quiet_replica_ends_when_its_token_is_revoked(
    server: DockerServer, admin: httpx.Client
) -> None:
    """The token was looked up again only when the replica printed a line: a replica that
    said one line and then nothing kept the stream open to a revoked token (and its place
    among the tenant's open streams) until it printed again. Now it ends within seconds."""
    quiet = ["sh", "-c", "echo ready; trap 'exit 0' TERM; while true; do sleep 1; done"]
    _template_mc(admin, "quiet", command=quiet)
    try:
        _until(lambda: _phase(admin, "quiet-0") == "Running", "quiet-0 running")
        made = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": "default"})
        assert made.status_code == 201, made.text
        token = made.json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        url = f"{server.url}/v1/cargos/quiet-0/logs"
        with httpx.stream("GET", url, params={"follow": "true"}, headers=headers, timeout=30) as r:
            assert r.status_code == 200, r.read()
            lines = r.iter_lines()
            assert next(lines) == "ready"
            assert admin.delete(f"/v1/tokens/{token['id']}").status_code == 204
            try:
                rest = list(lines)
            except httpx.ReadTimeout:
                pytest.fail("the quiet log stayed open 30 s after its token was revoked")
        assert rest == []
    finally:
        admin.delete("/v1/miniclusters/quiet")


def test_a_followed_log_left_before_its_first_line_gives_its_place_back(
    host_specs: list[HostSpec], tmp_path: Path
) -> None:
    """A followed log answers with its first line; a client that gave up before a silent
    replica printed one (``crane cargo logs -f``, then Ctrl-C) left its place among the
    tenant's open streams taken until the replica printed or ended: with the limit at 1, every
    later stream of the tenant was a 429. Now the place comes back within seconds."""
    silent = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    limit = {"CRANE_MAX_STREAMS_PER_TENANT": "1"}
    with (
        serving(tmp_path, ADMIN, host_specs[1:2], settings=limit) as running,
        running.client() as api,
    ):
        _template_mc(api, "silent", command=silent)
        _until(lambda: _phase(api, "silent-0") == "Running", "silent-0 running")
        url = f"{running.url}/v1/cargos/silent-0/logs"
        headers = {"Authorization": f"Bearer {ADMIN}"}
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(url, params={"follow": "true"}, headers=headers, timeout=2)

        def events_open() -> bool:
            with httpx.stream("GET", f"{running.url}/v1/events", headers=headers) as r:
                return r.status_code == 200

        _until(events_open, "the left log's place given back", seconds=30)


def test_a_followed_log_ends_when_its_token_is_revoked(
    server: DockerServer, admin: httpx.Client
) -> None:
    _template_mc(admin, "follow")
    try:
        _until(lambda: _phase(admin, "follow-0") == "Running", "follow-0 running")
        made = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": "default"})
        assert made.status_code == 201, made.text
        token = made.json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        url = f"{server.url}/v1/cargos/follow-0/logs"
        with httpx.stream("GET", url, params={"follow": "true"}, headers=headers, timeout=60) as r:
            assert r.status_code == 200, r.read()
            lines = r.iter_lines()
            assert next(lines).startswith("tick-")
            assert admin.delete(f"/v1/tokens/{token['id']}").status_code == 204
            revoked = time.monotonic()
            after: list[str] = []
            for line in lines:
                if time.monotonic() - revoked > 5:
                    after.append(line)
                if len(after) >= 3:
                    break
        assert not after, f"the log kept streaming to a revoked token: {after[:3]}"
    finally:
        admin.delete("/v1/miniclusters/follow")
