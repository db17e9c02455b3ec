"""Log lines that text from a request cannot forge: control characters in logged values escaped.

Crane's log calls put request-borne text (a percent-decoded path, a name, a Docker or
Kubernetes error quoting a tenant's image or message) in a record's arguments. A line break
there started a new line that read like the server's own; ESC sequences reached the terminal
of whoever tails the log. :func:`install` wraps the log record factory once per process so the
string arguments of ``crane.*`` records have every control or format character written as an
escape (``\\n``, ``\\x1b``); numbers stay numbers, so ``%d`` and ``%.1f`` still format.
"""

from __future__ import annotations

import logging
from typing import Any

_installed = False


def printable(text: str) -> str:
    """``text`` with control and format characters (line breaks, ESC, NUL, C1 controls, bidi
    overrides) written as Python escapes (``\\n``, ``\\x1b``), so that text from a tenant or a
    server stays on one line and cannot move the cursor, recolour or retitle a terminal, write
    its clipboard or forge a log line. The CLI prints server text through it too
    (:mod:`crane.cli.render`); it imports nothing, so the CLI's start-up stays light."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def _safe(arg: Any) -> Any:
    if arg is None or isinstance(arg, int | float):
        return arg
    return printable(str(arg))


def install() -> None:
    """Escape the string arguments of every ``crane.*`` log record from now on (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.args and (record.name == "crane" or record.name.startswith("crane.")):
            if isinstance(record.args, dict):
                record.args = {k: _safe(v) for k, v in record.args.items()}
            else:
                record.args = tuple(_safe(a) for a in record.args)
        return record

    logging.setLogRecordFactory(factory)
