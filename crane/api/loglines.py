"""A log's bytes as lines, in bounded pieces.

A program may write for long without a newline (a progress bar, a dump of binary data). Held
until the newline, such a line would grow in the server's memory for as long as the program
writes, and joining it chunk by chunk costs time in the square of its length: one tenant's log
of 50 MB without a newline took the server five minutes of CPU to answer. A line longer than
:data:`MAX_LINE_BYTES` is given out in pieces of that size instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

MAX_LINE_BYTES = 64 * 1024
"""The longest piece of a log line given out at once (a longer line comes in several)."""


def log_lines(chunks: Iterable[bytes], limit: int = MAX_LINE_BYTES) -> Iterator[str]:
    """The lines of ``chunks`` (without their newline), decoded with replacement; a line
    longer than ``limit`` bytes as several pieces of at most ``limit``; the last, unterminated
    line too. Linear in the log's size; holds at most one chunk and ``limit`` bytes."""
    pending = bytearray()
    cut = False  # the current line was given out in pieces already
    for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                pending += chunk[start:]
                break
            pending += chunk[start:end]
            start = end + 1
            pieces = list(_pieces(pending, limit))
            yield from pieces
            if pending or not (cut or pieces):
                yield pending.decode(errors="replace")
            pending.clear()
            cut = False
        if len(pending) >= limit:
            yield from _pieces(pending, limit)
            cut = True
    yield from _pieces(pending, limit)
    if pending:
        yield pending.decode(errors="replace")


def _pieces(pending: bytearray, limit: int) -> Iterator[str]:
    """Whole pieces of ``limit`` bytes taken from the front of ``pending`` (a shorter rest
    stays in it)."""
    while len(pending) >= limit:
        piece = bytes(pending[:limit])
        del pending[:limit]
        yield piece.decode(errors="replace")
