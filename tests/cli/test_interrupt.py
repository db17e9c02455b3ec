"""Ctrl-C on a watch (``-w``) exits 130 quietly, as kubectl get -w does: ``crane events -w`` and
``crane mc list -w`` exited 0, which a script reads as 'the watch ended by itself'."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from tests.cli.conftest import Crane, Server
from tests.dockerd import env as crane_env


@pytest.mark.parametrize(
    "args", [["mc", "list", "-w"], ["events", "-w", "--mc", "ctrl-c"]], ids=["list", "events"]
)
def test_ctrl_c_on_a_watch_exits_130_without_a_traceback(
    logged_in: Crane, server: Server, args: list[str]
) -> None:
    made = logged_in("mc", "create", "ctrl-c", "--gpu-type", "H100", "--min", "0", "--max", "1")
    assert made.returncode == 0 or "exists" in made.stderr, made.stderr
    proc = subprocess.Popen(
        [sys.executable, "-m", "crane", *args],
        env=crane_env(CRANE_CONFIG_DIR=str(logged_in.config_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        # the watch has started once the header and the first row (the listing or the
        # history) are out
        shown = [proc.stdout.readline(), proc.stdout.readline()]
        assert "ctrl-c" in shown[1], (shown, proc.stderr.read() if proc.stderr else "")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "error" not in err
