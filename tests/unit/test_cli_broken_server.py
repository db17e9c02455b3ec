"""A server that closes the connection or answers something that is not HTTP: one line saying
so with a remedy, exit 1, nothing on stdout (``crane events`` printed its table header first and
then 'HTTP error: Server disconnected ...; check the API URL')."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import crane


@pytest.fixture(params=["close", "garbage"])
def broken(request: pytest.FixtureRequest) -> Iterator[str]:
    """A listener that reads each request, then hangs up or writes bytes that are not HTTP."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                if request.param == "garbage":
                    conn.sendall(b"\x00\x01garbage\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()


@pytest.mark.parametrize("args", [["events"], ["mc", "list"], ["mc", "get", "x"]])
def test_a_broken_answer_is_one_line_and_exit_1(
    broken: str, args: list[str], tmp_path: Path
) -> None:
    done = crane(*args, config_dir=tmp_path, CRANE_API_URL=broken, CRANE_TOKEN="crane_t1_secret")
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "HTTP error" not in lines[0] and "Traceback" not in done.stderr
    assert broken in lines[0] or "cannot reach the Crane API" in lines[0]
    assert "crane config current" in lines[0] or "crane up" in lines[0]
