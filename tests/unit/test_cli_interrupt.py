"""Ctrl-C, whenever it comes: exit 130 and no traceback. A watch or a wait interrupted at a
random moment (start-up, the listing, the first poll, between polls) once ended by SIGINT
(-2 to its parent, not the 130 a script checks), with a traceback when it came during start-up."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support import FakeApi, crane_env

_MC = {
    "name": "study",
    "tenant": "default",
    "uid": "u1",
    "spec": {"gpuType": "H100", "gpus": {"min": 4, "max": 8}},
    "createdAt": "2026-01-01T00:00:00Z",
}


def _api(body: object) -> FakeApi:
    api = FakeApi()
    api.answer = (200, "application/json", json.dumps(body).encode())
    return api


def _start(url: str, cfg: Path, *args: str) -> subprocess.Popen[str]:
    """``crane ARGS`` as a shell starts it (SIGINT at its default); ``-X importtime`` tells on
    stderr when the command's own code runs: a Ctrl-C before it is the interpreter's."""
    return subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "crane", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=crane_env(cfg, CRANE_API_URL=url, CRANE_TOKEN="crane_t1_secret", COLUMNS="100"),
        # a test run in the background inherits SIGINT ignored: the child gets the default
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


class _Run:
    """One ``crane`` interrupted ``delay`` seconds after its own code started."""

    def __init__(self, url: str, cfg: Path, args: tuple[str, ...], delay: float) -> None:
        self.args, self.delay = args, delay
        self.proc = _start(url, cfg, *args)
        self.err: list[str] = []
        self._reader = threading.Thread(target=self._interrupt, daemon=True)
        self._reader.start()

    def _interrupt(self) -> None:
        assert self.proc.stderr is not None
        sent = False
        for line in self.proc.stderr:
            self.err.append(line)
            # typer loads once the command's own code runs (and has taken over Ctrl-C)
            if not sent and line.rpartition("|")[2].strip().startswith("typer"):
                sent = True
                time.sleep(self.delay)
                self.proc.send_signal(signal.SIGINT)

    def finish(self) -> str | None:
        """What is wrong with how it ended (``None``: exit 130, no traceback, quiet)."""
        try:
            code = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._reader.join(timeout=60)
        said = [ln for ln in self.err if not ln.startswith("import time:")]
        if code == 130 and said in ([], ["interrupted\n"]):
            return None
        return f"crane {' '.join(self.args)}, Ctrl-C {self.delay:.2f}s in: exit {code}, {said[-2:]}"


def test_ctrl_c_at_any_moment_of_a_watch_or_a_wait_exits_130_without_a_traceback(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    many, one = _api({"items": [_MC], "count": 1}), _api(_MC)
    request.addfinalizer(many.close)
    request.addfinalizer(one.close)
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    commands: list[tuple[str, tuple[str, ...]]] = [
        (many.url, ("mc", "list", "-w", "-o", "name")),
        (one.url, ("mc", "get", "study", "-w")),
        (one.url, ("wait", "mc/study", "--for", "condition=Ready", "--interval", "0.2")),
    ]
    runs: list[_Run] = []
    try:
        for url, args in commands * 5:
            runs.append(_Run(url, tmp_path, args, rng.uniform(0, 1.5)))
        wrong = [w for w in (run.finish() for run in runs) if w is not None]
    finally:
        for run in runs:
            if run.proc.poll() is None:
                run.proc.kill()
                run.proc.wait()
    assert wrong == [], f"seed {seed}: {wrong}"


_INTERRUPTED_IN_EXEC = """
import runpy, sys

from crane.cli.main import app


@app.command("boom")
def boom() -> None:
    # Ctrl-C landing in code run from a string, as the methods dataclasses writes on an import
    exec("import os, signal\\nos.kill(os.getpid(), signal.SIGINT)\\nfor _ in range(10**7): pass")


sys.argv = ["crane", "boom"]
runpy.run_module("crane", run_name="__main__")
"""


def _ends_with_130(tmp_path: Path) -> None:
    """``python -m interrupted_in_exec`` (written in ``tmp_path``) exits 130, quietly."""
    env = crane_env(tmp_path)
    env["PYTHONPATH"] = f"{tmp_path}:{env['PYTHONPATH']}"
    done = subprocess.run(
        [sys.executable, "-m", "interrupted_in_exec"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")


def test_ctrl_c_inside_code_run_from_a_string_still_exits_130(tmp_path: Path) -> None:
    """`crane mc list -w` died by SIGINT when Ctrl-C came during its first poll: the lazy import
    there writes dataclass methods with exec, and CPython kills a `python -m` process whose
    KeyboardInterrupt ended such code, even after the command caught it and chose exit 130."""
    (tmp_path / "interrupted_in_exec.py").write_text(_INTERRUPTED_IN_EXEC)
    _ends_with_130(tmp_path)


def test_a_second_ctrl_c_while_the_first_is_handled_still_exits_130(tmp_path: Path) -> None:
    """Ctrl-C twice (the second during the first's clean-up) is 130 as well, not a traceback."""
    script = _INTERRUPTED_IN_EXEC.replace(
        "for _ in range(10**7): pass",
        "try:\\n for _ in range(10**7): pass\\nfinally:\\n"
        " os.kill(os.getpid(), signal.SIGINT)\\n for _ in range(10**7): pass",
    )
    (tmp_path / "interrupted_in_exec.py").write_text(script)
    _ends_with_130(tmp_path)


def test_ctrl_c_during_a_finalizer_still_ends_the_command_with_130(tmp_path: Path) -> None:
    """A garbage collection may run a finalizer at any moment; a Ctrl-C that lands in one was
    printed by Python as 'Exception ignored' and lost, and a watch ran on until killed (seen as
    'exit -9' with a KeyboardInterrupt traceback in the random-moment test above)."""
    script = tmp_path / "finalizer.py"
    script.write_text(
        "import os, signal, time\n"
        "from crane.cli import interrupt\n"
        "interrupt.install()\n"
        "class Held:\n"
        "    def __del__(self):\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "        time.sleep(5)\n"
        "Held()\n"
        "time.sleep(60)\n"
        "print('went on')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")
