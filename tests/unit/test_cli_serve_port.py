"""``crane serve`` on a port that is taken says so in one line and exits 2, as ``crane up`` does.

It printed uvicorn's start-up and shut-down log around "[Errno 98] error while attempting to
bind" and exited 3, a code docs/cli.md does not have (0 ok, 1 failed, 2 bad usage)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.support import crane


def test_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        served = crane(
            "serve",
            "--backend",
            "docker",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{tmp_path / 'crane.db'}",
            config_dir=tmp_path / "cfg",
            timeout=120,
        )
    assert served.returncode == 2, served.stderr
    assert served.stderr.startswith(f"error: port {port} on 127.0.0.1 is already in use")
    assert served.stderr.count("\n") == 1, served.stderr
    assert not (tmp_path / "crane.db").exists()  # nothing done before the port was checked


def test_a_host_that_does_not_resolve_is_one_line_and_exit_2(tmp_path: Path) -> None:
    served = crane(
        "serve",
        "--backend",
        "docker",
        "--host",
        "no such host",
        "--database-url",
        f"sqlite:///{tmp_path / 'crane.db'}",
        config_dir=tmp_path / "cfg",
        timeout=120,
    )
    assert served.returncode == 2, served.stderr
    assert served.stderr.startswith("error: cannot listen on no such host:8080"), served.stderr
    assert served.stderr.count("\n") == 1, served.stderr


def test_a_choice_not_offered_reads_without_pydantics_prefix(tmp_path: Path) -> None:
    # It read "Invalid value for '--backend': Value error, 'nope' is not one of ...".
    served = crane("serve", "--backend", "nope", config_dir=tmp_path / "cfg")
    assert served.returncode == 2, served.stderr
    assert "'nope' is not one of 'kube', 'docker'" in served.stderr
    assert "Value error" not in served.stderr, served.stderr
