"""``crane up`` fails fast: one line with the remedy, exit 2, no banner, the CLI context kept.

Docker unreachable, the port taken, and no GPUs found with none declared. None of these needs a
Docker daemon: each is found before Crane talks to one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crane.cli.main import app
from tests.dockerd import env
from tests.support import free_port

SAVED = (
    "current-context: local\ncontexts:\n  local:\n    url: http://127.0.0.1:9999\n    token: keep\n"
)


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "config.yaml").write_text(SAVED)
    return cfg


def _up(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crane", "up", "--data-dir", str(tmp_path / "data"), *args],
        env=env(CRANE_CONFIG_DIR=str(tmp_path / "cfg"), **extra),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), done.stderr
    assert "crane: " not in done.stderr and "Traceback" not in done.stderr
    return lines[0]


def test_docker_unreachable(tmp_path: Path) -> None:
    _config(tmp_path)
    sock = f"unix://{tmp_path}/no-docker.sock"
    done = _up(
        tmp_path, "--gpus", "8", "--gpu-type", "H100", "--port", str(free_port()), DOCKER_HOST=sock
    )
    line = _one_line(done)
    assert f"cannot reach Docker at {sock}" in line
    assert "--docker-host" in line
    assert (tmp_path / "cfg" / "config.yaml").read_text() == SAVED


def test_port_busy(tmp_path: Path) -> None:
    _config(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = _up(
            tmp_path,
            "--gpus",
            "8",
            "--gpu-type",
            "H100",
            "--port",
            str(port),
            DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock",
        )
    line = _one_line(done)
    assert f"port {port} on 127.0.0.1 is already in use" in line
    assert "--port" in line
    assert "Errno" not in line
    assert (tmp_path / "cfg" / "config.yaml").read_text() == SAVED


def test_gpus_without_type_is_usage(tmp_path: Path) -> None:
    done = _up(tmp_path, "--gpus", "8", "--port", str(free_port()))
    assert "--gpu-type" in _one_line(done)


def test_no_gpus_found_and_none_declared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(tmp_path)
    monkeypatch.setenv("CRANE_CONFIG_DIR", str(cfg))
    monkeypatch.setattr("crane.docker.local.discover", lambda: None)
    result = CliRunner().invoke(
        app, ["up", "--data-dir", str(tmp_path / "data"), "--port", str(free_port())]
    )
    assert isinstance(result.exception, Exception)
    from crane.cli.errors import describe

    failure = describe(result.exception)
    assert failure.code == 2
    assert "no NVIDIA GPUs found" in failure.line()
    assert "--gpus 8 --gpu-type H100" in failure.line()
    assert result.output == ""
    assert (cfg / "config.yaml").read_text() == SAVED
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "content", [b"garbage token!!\n", b"", b"\xff\xfe not text", b"crane_x_" + b"\x01" * 4]
)
def test_a_garbage_admin_token_names_its_file(tmp_path: Path, content: bytes) -> None:
    """An admin-token file someone edited or truncated: which file, and what to do, before
    anything starts (it was 'invalid bootstrap_token: ...; fix the manifest or options')."""
    _config(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "admin-token").write_bytes(content)
    sock = f"unix://{tmp_path}/no-docker.sock"
    done = _up(
        tmp_path, "--gpus", "8", "--gpu-type", "H100", "--port", str(free_port()), DOCKER_HOST=sock
    )
    line = _one_line(done)
    assert str(data / "admin-token") in line
    assert "delete it" in line
    assert "manifest" not in line and "bootstrap_token" not in line
    assert "!!" not in line  # the file's content may be a secret: never echoed
    assert (data / "admin-token").read_bytes() == content
    assert (tmp_path / "cfg" / "config.yaml").read_text() == SAVED


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_a_port_out_of_range_is_usage(tmp_path: Path, port: str) -> None:
    done = _up(tmp_path, "--gpus", "8", "--gpu-type", "H100", "--port", port)
    assert "1 to 65535" in _one_line(done)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--gpus", "65", "--gpu-type", "H100"], "--gpus 65"),
        (["--gpus", "2", "--gpu-type", "H100 \u2603"], "--gpu-type"),
        (["--gpus", "2", "--gpu-type", "H100", "--label", "rack=\u2603"], "--label"),
    ],
)
def test_a_declared_node_crane_cannot_keep_is_one_line_naming_the_flag(
    tmp_path: Path, args: list[str], named: str
) -> None:
    """It was pydantic's report ('1 validation error for HostSpec gpu_count Input should be
    ... For further information visit https://errors.pydantic.dev/...'), naming no flag."""
    done = _up(tmp_path, *args, "--port", str(free_port()))
    line = _one_line(done)
    assert named in line and "pydantic" not in line and "HostSpec" not in line, line
