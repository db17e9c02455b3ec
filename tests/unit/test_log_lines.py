"""A log's bytes as lines: a line without end comes in bounded pieces, in linear time."""

from __future__ import annotations

import time

from crane.api.loglines import MAX_LINE_BYTES, log_lines


def test_lines_across_chunks_and_the_last_unterminated_line() -> None:
    assert list(log_lines([b"a\nb", b"c\n", b"d"])) == ["a", "bc", "d"]
    assert list(log_lines([b"\n\n"])) == ["", ""]
    assert list(log_lines([b"caf\xc3", b"\xa9\n"])) == ["caf\u00e9"]


def test_a_long_line_comes_in_pieces_of_the_limit() -> None:
    assert list(log_lines([b"x" * 10 + b"\n"], 4)) == ["xxxx", "xxxx", "xx"]
    assert list(log_lines([b"x" * 8 + b"\n", b"y\n"], 4)) == ["xxxx", "xxxx", "y"]
    assert list(log_lines([b"xxxxx", b"xxx\nab"], 4)) == ["xxxx", "xxxx", "ab"]


def test_a_line_of_32_mb_in_16_kib_chunks_is_read_in_linear_time() -> None:
    """Docker hands a log over in chunks of at most 16 KiB; joining them into one line took
    time in the square of its length (a 50 MB line: five minutes of the server's CPU)."""
    chunk = b"x" * 16384
    started = time.monotonic()
    pieces = list(log_lines(chunk for _ in range(2048)))
    assert time.monotonic() - started < 10
    assert sum(map(len, pieces)) == 2048 * 16384
    assert max(map(len, pieces)) == MAX_LINE_BYTES
