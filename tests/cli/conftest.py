"""A real ``crane serve`` for the SDK and CLI tests, and a way to run the ``crane`` command.

``server`` is ``crane serve --backend docker`` as a subprocess (SQLite, a bootstrap admin
token) with two hosts added through the API: hack/dockerd daemons 3 and 4, four simulated H100
each, racks r1 and r2. ``CRANE_TEST_API_URL`` and ``CRANE_TEST_TOKEN`` point the tests at a
server started elsewhere instead. ``unready_server`` has a Kubernetes backend without a cluster.
Tests that need a working backend fail when ``/readyz`` says it is not ready.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.dockerd import clean, daemons, serve_docker, wait_healthy
from tests.dockerd import env as crane_env
from tests.support import free_port

BOOTSTRAP = "crane_clitest1_" + "s3cr3t" * 6
DAEMONS = range(3, 5)


@dataclass(frozen=True)
class Server:
    url: str
    token: str


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    external = os.environ.get("CRANE_TEST_API_URL")
    if external:
        yield Server(external.rstrip("/"), os.environ["CRANE_TEST_TOKEN"])
        return
    urls = daemons(DAEMONS)
    clean(urls)
    hosts: list[dict[str, object]] = [
        {
            "name": f"cli-{i}",
            "dockerHost": url,
            "gpus": 4,
            "gpuType": "H100",
            "labels": {"rack": f"r{i}"},
        }
        for i, url in enumerate(urls, start=1)
    ]
    running = serve_docker(tmp_path_factory.mktemp("server"), BOOTSTRAP, hosts)
    yield Server(running.url, BOOTSTRAP)
    running.stop()
    clean(urls)


@pytest.fixture(scope="session")
def unready_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("unready")
    port = free_port()
    log = data / "serve.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crane",
            "serve",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{data / 'crane.db'}",
            "--bootstrap-token",
            BOOTSTRAP,
        ],
        env=crane_env(CRANE_CONFIG_DIR=str(data / "cfg"), KUBECONFIG=str(data / "none")),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc, log)
    yield Server(url, BOOTSTRAP)
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture
def backend_ready(server: Server) -> None:
    """Fail unless the server's backend can do real work."""
    ready = httpx.get(f"{server.url}/readyz", timeout=5)
    if ready.status_code != 200:
        pytest.fail(f"the API's backend is not ready: {ready.text}")


@dataclass
class Crane:
    """Runs ``python -m crane`` with its own config dir and no CRANE_* from the caller."""

    config_dir: Path

    def __call__(self, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crane", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=crane_env(CRANE_CONFIG_DIR=str(self.config_dir), **env),
            timeout=120,
            check=False,
        )


@pytest.fixture
def crane(tmp_path: Path) -> Crane:
    return Crane(tmp_path / "cfg")


@pytest.fixture
def logged_in(crane: Crane, server: Server) -> Crane:
    proc = crane("login", server.url, "--token", server.token)
    assert proc.returncode == 0, proc.stderr
    return crane
