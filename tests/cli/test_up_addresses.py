"""``crane up --host`` with an IPv6 address (``::1``, ``[::1]``) or a wildcard: the CLI context it
saves reaches the API it started, so ``crane nodes`` works at once."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.dockerd import daemons, env, wait_healthy
from tests.support import free_port, unavailable


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize(
    ("given", "reached"), [("::1", "[::1]"), ("[::1]", "[::1]"), ("0.0.0.0", "127.0.0.1")]
)
def test_the_saved_context_reaches_the_api(tmp_path: Path, given: str, reached: str) -> None:
    if ":" in given and not _ipv6_loopback():
        unavailable("no IPv6 loopback on this machine")
    docker_url = daemons(range(0, 1))[0]
    port = free_port()
    environ = env(CRANE_CONFIG_DIR=str(tmp_path / "cfg"), DOCKER_HOST=docker_url)
    log = tmp_path / "up.log"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "crane", "up", "--gpus", "2", "--gpu-type", "H100"),
            *("--host", given, "--port", str(port), "--data-dir", str(tmp_path / "data")),
        ],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        wait_healthy(f"http://{reached}:{port}", proc, log)
        nodes = subprocess.run(
            [sys.executable, "-m", "crane", "nodes", "-o", "name"],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert nodes.returncode == 0, nodes.stderr
        assert nodes.stdout.split() == ["node/local"]
        assert f"API at http://{reached}:{port}" in log.read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
