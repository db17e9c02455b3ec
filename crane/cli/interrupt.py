"""Ctrl-C, for every command and at every moment: exit 130, no traceback. Standard library only:
``python -m crane`` installs it before anything else loads.

CPython ends a ``python -m`` process by SIGINT (-2 to its parent, not 130) whenever a
KeyboardInterrupt ended code that ran from a string (``exec``/``eval`` of text: the methods that
``dataclasses`` and ``namedtuple`` write on a lazy import, typer reading annotations), even one
that was caught afterwards and turned into ``exit 130``. So an interrupted command does not leave
through the interpreter's own exit: :func:`leave` flushes what it wrote and ends the process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType
from typing import NoReturn

INTERRUPTED = 130
"""The exit code of a command ended by Ctrl-C, as a shell reports one killed by SIGINT."""


def _again(signum: int, frame: FrameType | None) -> None:
    """A Ctrl-C after the first (or once the command is done): end now, without a word."""
    _flushed()
    os._exit(INTERRUPTED)


def _first(signum: int, frame: FrameType | None) -> None:
    """The first Ctrl-C: KeyboardInterrupt, so the command stops and cleans up (``finally``);
    one more Ctrl-C while it does must not cut that short with a traceback."""
    signal.signal(signal.SIGINT, _again)
    raise KeyboardInterrupt


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """A Ctrl-C that came while Python ran a finalizer (``__del__``, a weakref callback, which
    a garbage collection may start at any moment) cannot stop the command: Python prints it as
    'Exception ignored' and goes on, and a watch would run on. End here, as the command would
    have, without the traceback; any other such error is Python's to print."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _flushed()
        os._exit(INTERRUPTED)
    sys.__unraisablehook__(unraisable)


def install() -> None:
    """Take over Ctrl-C, unless SIGINT is not Python's default (ignored, as in a background job of
    a shell, or someone else's handler)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _first)
        sys.unraisablehook = _unraisable


def _flushed() -> None:
    """What the command wrote, out; a reader gone or a stream closed: nothing more can reach it."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()


def leave(code: int) -> NoReturn:
    """End the process with ``code``; an interrupted command (130) ends here and now, with what
    it wrote flushed, where the interpreter's own exit could turn it into a SIGINT death. From
    here on, a Ctrl-C ends the process at once, with 130."""
    if signal.getsignal(signal.SIGINT) is _first:
        signal.signal(signal.SIGINT, _again)
    if code == INTERRUPTED:
        _flushed()
        os._exit(INTERRUPTED)
    sys.exit(code)
