"""Terminal helpers: TTY detection, messages on stderr, ``-y/--yes`` confirmation. No typer."""

from __future__ import annotations

import os
import sys
from typing import IO


class UsageError(Exception):
    """A mistake in how a command was called; reported with exit code 2."""


class Declined(Exception):
    """The user answered no to a confirmation."""


def is_tty(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (stdout) is a terminal; ``CRANE_FORCE_TTY=1`` says yes for tests."""
    if os.environ.get("CRANE_FORCE_TTY") == "1":
        return True
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def say(message: str) -> None:
    """A message for the person (not data): stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def confirm(question: str, *, yes: bool) -> None:
    """Ask ``question`` on the terminal unless ``yes``.

    Raises :class:`UsageError` when stdin is not a terminal (pass ``--yes``) and
    :class:`Declined` when the answer is not yes.
    """
    if yes:
        return
    if not is_tty(sys.stdin):
        raise UsageError(f"{question.rstrip('?')}: refusing without confirmation; pass --yes")
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline().strip().lower()
    if answer not in ("y", "yes"):
        raise Declined("nothing done")
