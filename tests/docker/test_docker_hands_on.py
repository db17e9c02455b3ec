"""A careless operator on the Docker hosts of a ``crane serve --backend docker``: chatty cargos
whose logs must not fill the disk, and hands on dockerd behind Crane's back (containers removed,
stopped or renamed, networks removed, foreign containers wearing Crane's labels)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from crane.docker.hosts import HostSpec
from tests.dockerd import IMAGE, DockerServer, cli, serving

ADMIN = "crane_dockhands_" + "h" * 43
LOG_MAX_SIZE = "10k"
LOG_MAX_FILE = 2
CHATTY = [
    "sh",
    "-c",
    "trap 'exit 0' TERM; i=0; while [ $i -lt 4000 ]; do echo line-$i; i=$((i+1)); done; "
    "echo end; while true; do sleep 1; done",
]
"""4000 lines (some 300 kB of json-file log), then ``end``; ends on TERM."""
TICK = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerServer]:
    """h0 (8 H100) alone, keeping two log files of 10 kB per container."""
    settings = {
        "CRANE_DOCKER_LOG_MAX_SIZE": LOG_MAX_SIZE,
        "CRANE_DOCKER_LOG_MAX_FILE": str(LOG_MAX_FILE),
    }
    with serving(
        tmp_path_factory.mktemp("hands"), ADMIN, host_specs[:1], settings=settings
    ) as running:
        yield running


@pytest.fixture(scope="module")
def h0(host_specs: list[HostSpec]) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=host_specs[0].url)
    yield client
    client.close()


@pytest.fixture
def crane(server: DockerServer, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``crane`` as the admin against the module's server."""
    return cli(server.url, ADMIN, tmp_path)


def _until(check: Callable[[], Any], what: str, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return got


def _mc(api: httpx.Client, name: str, command: list[str], replicas: int = 1) -> None:
    template = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": command}]}}
    spec = {
        "gpuType": "H100",
        "gpus": {"min": replicas, "max": replicas},
        "replicas": 1,
        "template": {"replicas": replicas, "gpusPerReplica": 1, "template": template},
    }
    created = api.post("/v1/miniclusters", json={"name": name, "spec": spec})
    assert created.status_code == 201, created.text


def _phase(api: httpx.Client, cargo: str) -> str | None:
    got = api.get(f"/v1/cargos/{cargo}")
    return got.json()["status"]["phase"] if got.status_code == 200 else None


def test_a_chatty_cargo_keeps_a_bounded_log_that_still_reads(
    admin: httpx.Client,
    h0: docker.DockerClient,
    crane: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    """A replica printing 300 kB: its container's log was unbounded (json-file without
    max-size, so a chatty cargo filled the host's disk); now it is rotated at the configured
    size and count, and ``crane cargo logs`` (whole, --tail, --since, --all-replicas) reads
    the lines kept, across the rotated files, in order."""
    _mc(admin, "chatty", CHATTY, replicas=2)
    try:
        _until(lambda: _phase(admin, "chatty-0") == "Running", "chatty-0 running")
        for replica in (0, 1):
            container = h0.containers.get(f"crane.default.chatty-0-{replica}")
            assert container.attrs["HostConfig"]["LogConfig"] == {
                "Type": "json-file",
                "Config": {"max-size": LOG_MAX_SIZE, "max-file": str(LOG_MAX_FILE)},
            }
        _until(
            lambda: admin.get("/v1/cargos/chatty-0/logs", params={"tail": 1}).text == "end\n",
            "all 4000 lines written",
        )
        whole = admin.get("/v1/cargos/chatty-0/logs").text.splitlines()
        assert whole[-1] == "end"
        kept = [int(line.removeprefix("line-")) for line in whole[:-1]]
        # 2 files of 10 kB hold some 250 json-file entries: the oldest lines are gone
        assert 50 < len(kept) < 600, len(kept)
        assert kept == list(range(kept[0], 4000)), "the lines kept are the last, in order"
        tail = crane("cargo", "logs", "chatty-0", "--tail", "3")
        assert tail.returncode == 0, tail.stderr
        assert tail.stdout.splitlines() == ["line-3998", "line-3999", "end"]
        since = crane("cargo", "logs", "chatty-0", "--since", "10m")
        assert since.returncode == 0 and since.stdout.splitlines() == whole, since.stderr
        both = crane("cargo", "logs", "chatty-0", "--all-replicas", "--tail", "1")
        assert both.returncode == 0, both.stderr
        assert sorted(both.stdout.splitlines()) == ["[replica 0] end", "[replica 1] end"]
    finally:
        admin.delete("/v1/miniclusters/chatty")
