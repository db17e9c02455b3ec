"""A real ``crane serve`` for the SDK and CLI tests, and a way to run the ``crane`` command.

By default the server runs as a subprocess on a free port with SQLite and a bootstrap admin
token. ``CRANE_TEST_API_URL`` and ``CRANE_TEST_TOKEN`` point the tests at a server started
elsewhere instead (one with a working backend: Kubernetes test cluster or Docker).
Tests that need a working backend skip, with the reason, when ``/readyz`` says it is not ready;
with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
BOOTSTRAP = "crane_clitest1_" + "s3cr3t" * 6


@dataclass(frozen=True)
class Server:
    url: str
    token: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRANE_")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    external = os.environ.get("CRANE_TEST_API_URL")
    if external:
        yield Server(external.rstrip("/"), os.environ["CRANE_TEST_TOKEN"])
        return
    data = tmp_path_factory.mktemp("server")
    port = _free_port()
    log = (data / "serve.log").open("w")
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
        env=_clean_env(CRANE_CONFIG_DIR=str(data / "cfg"), KUBECONFIG=str(data / "none")),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"crane serve did not start: {(data / 'serve.log').read_text()[-2000:]}")
        time.sleep(0.2)
    yield Server(url, BOOTSTRAP)
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture
def backend_ready(server: Server) -> None:
    """Skip (fail with CI=true) unless the server's backend can do real work."""
    ready = httpx.get(f"{server.url}/readyz", timeout=5)
    if ready.status_code != 200:
        reason = f"the API's backend is not ready: {ready.json().get('detail', ready.text)}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (set CRANE_TEST_API_URL/CRANE_TEST_TOKEN to a ready server)")
        pytest.skip(reason)


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
            env=_clean_env(CRANE_CONFIG_DIR=str(self.config_dir), **env),
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
