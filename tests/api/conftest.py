"""Fixtures of the API tests: a real ``crane serve`` process on a database per test (SQLite and
PostgreSQL: ``database_url`` in tests/conftest.py).

With CI=true a missing PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from crane.api.app import create_app
from crane.api.settings import ApiSettings, BackendKind
from tests.dockerd import DockerServer, serve_docker
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "crane_admin0_" + "s" * 43


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, token: str | None = ADMIN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def start_server(
    database_url: str,
    log: Path,
    kubeconfig: str = "/nonexistent",
    extra: list[str] | None = None,
    settings: dict[str, str] | None = None,
) -> Server:
    """``crane serve`` in a subprocess, answering on a free port; ``settings``: more
    ``CRANE_*`` environment."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KUBECONFIG": kubeconfig, **(settings or {})}
    cmd = [
        sys.executable,
        "-m",
        "crane",
        "serve",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--kubeconfig",
        kubeconfig,
        "--log-level",
        "warning",
        *(extra or []),
    ]
    handle = log.open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"crane serve exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return Server(url, proc, log)
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"crane serve did not answer in 60 s: {log.read_text()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[Server]:
    """A real server with the bootstrap admin token ``ADMIN`` and no Kubernetes behind it."""
    srv = start_server(database_url, tmp_path / "serve.log", extra=["--bootstrap-token", ADMIN])
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture
def local_api(tmp_path: Path) -> Iterator[TestClient]:
    """One hostless Docker-mode server in this process (SQLite), as the admin ``ADMIN``: for
    races a test stages by pausing a step of the server."""
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'crane.db'}",
        backend=BackendKind.DOCKER,
        bootstrap_token=ADMIN,
    )
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        yield client


@pytest.fixture
def two_servers(database_url: str, tmp_path: Path) -> Iterator[list[DockerServer]]:
    """Two hostless Docker-mode ``crane serve`` processes on one database (SQLite, PostgreSQL),
    the admin token ``ADMIN`` on both."""
    first = serve_docker(tmp_path, ADMIN, [], database_url=database_url, name="first")
    try:
        second = serve_docker(tmp_path, ADMIN, [], database_url=database_url, name="second")
        try:
            yield [first, second]
        finally:
            second.stop()
    finally:
        first.stop()
