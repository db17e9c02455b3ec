"""A child process of a test (an operator, an API server) that logs to a file and that the test
starts, SIGKILLs, stops and polls: one implementation for the e2e and chaos suites."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path


class ChildProcess:
    """One process at a time, started again after it is killed; its output goes to a log file
    that every start appends to."""

    def __init__(self, log_path: Path) -> None:
        """Not started yet: the subclass's ``start`` calls :meth:`spawn`."""
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self, argv: list[str], env: dict[str, str], cwd: Path, banner: str = "") -> int:
        """Start ``argv`` with stdout and stderr appended to the log, after a ``banner`` line when
        given. Returns the log's size before the process wrote anything."""
        with self.log_path.open("ab") as out:
            if banner:
                out.write(f"\n===== {banner} =====\n".encode())
                out.flush()
            mark = out.tell()
            self.proc = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd
            )
        return mark

    def kill(self) -> None:
        """SIGKILL and reap (nothing when it is not running)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=60)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL when it has not exited within 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()

    def crashed(self) -> int | None:
        """The exit code when the process ended on its own, else None."""
        return None if self.proc is None else self.proc.poll()

    def tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
