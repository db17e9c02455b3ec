"""``crane exec`` on the Kubernetes backend is bounded as in Docker mode: more than 1 MiB of
output, or a command past its timeout, is a 409 (Conflict) that says what to do."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client

from crane.api.errors import Conflict
from crane.api.kube import _exec
from crane.api.schemas import MAX_EXEC_OUTPUT, ExecRequest


class FakeSocket:
    """A pods/exec websocket that writes ``chunk`` on each update, ``frames`` times, then ends
    (or never ends when ``frames`` is None)."""

    def __init__(self, chunk: str, frames: int | None) -> None:
        self.chunk, self.frames = chunk, frames
        self.out = ""
        self.returncode = 0

    def is_open(self) -> bool:
        return self.frames is None or self.frames > 0

    def update(self, timeout: float = 0) -> None:
        if self.frames is not None:
            self.frames -= 1
        self.out += self.chunk

    def run_forever(self, timeout: float | None = None) -> None:
        """As the client's: update until the socket closes or ``timeout`` passes."""
        start = time.monotonic()
        while self.is_open() and (timeout is None or time.monotonic() - start < timeout):
            self.update()

    def peek_stdout(self) -> str:
        return self.out

    def peek_stderr(self) -> str:
        return ""

    def read_all(self) -> str:
        return self.out

    def close(self) -> None:
        pass


def _run(monkeypatch: pytest.MonkeyPatch, sock: FakeSocket, timeout: int = 5) -> Any:
    import kubernetes.stream

    monkeypatch.setattr(kubernetes.stream, "stream", lambda *a, **k: sock)
    request = ExecRequest.model_validate(
        {"command": ["yes"], "replica": 0, "timeoutSeconds": timeout}
    )
    return _exec(client.Configuration(), "t", "job-0", request)


def test_output_over_one_mib_is_a_conflict_that_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sock = FakeSocket("y\n" * 32768, frames=None)  # `yes`: it never ends by itself
    with pytest.raises(Conflict, match=f"more than {MAX_EXEC_OUTPUT} bytes"):
        _run(monkeypatch, sock)
    assert len(sock.out) <= MAX_EXEC_OUTPUT + 65536, "it stopped reading at the cap"


def test_output_under_the_cap_is_answered_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    result = _run(monkeypatch, FakeSocket("ok\n", frames=3))
    assert (result.exit_code, result.output) == (0, "ok\nok\nok\n")
