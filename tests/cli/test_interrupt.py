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
    ("name", "args"),
    [("ctrl-c-list", ["mc", "list", "-w"]), ("ctrl-c-events", ["events", "-w", "--mc"])],
    ids=["list", "events"],
)
def test_ctrl_c_on_a_watch_exits_130_without_a_traceback(
    logged_in: Crane, server: Server, name: str, args: list[str]
) -> None:
    """Its MiniCluster is deleted at the end: the live server is shared with the other CLI
    tests, which list what they made."""
    made = logged_in("mc", "create", name, "--gpu-type", "H100", "--min", "0", "--max", "1")
    assert made.returncode == 0, made.stderr
    try:
        _interrupt([*args, name] if args[0] == "events" else args, logged_in, name)
    finally:
        gone = logged_in("mc", "delete", name, "-y")
        assert gone.returncode == 0, gone.stderr


def _interrupt(args: list[str], logged_in: Crane, name: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "crane", *args],
        env=crane_env(CRANE_CONFIG_DIR=str(logged_in.config_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as at a terminal: a run started in the background inherits SIGINT ignored, and
        # Python then installs no KeyboardInterrupt handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        # the watch has started once the header and the first row (the listing or the
        # history) are out
        shown = [proc.stdout.readline(), proc.stdout.readline()]
        assert name in shown[1], (shown, proc.stderr.read() if proc.stderr else "")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "error" not in err
