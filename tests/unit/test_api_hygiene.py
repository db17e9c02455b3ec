"""The transport rules around the app: a bug is a 500 problem that does not escape (so the
server keeps the connection), and a body over the limit never reaches the app."""

from __future__ import annotations

import asyncio
import json

from starlette.types import Message, Receive, Scope, Send

from crane.api.hygiene import BodyLimit, CatchAll

SCOPE: Scope = {"type": "http", "method": "POST", "path": "/v1/x", "headers": []}


def _run(app: object, chunks: list[bytes]) -> list[Message]:
    sent: list[Message] = []
    pending = list(chunks)

    async def receive() -> Message:
        chunk = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    async def main() -> None:
        await app(dict(SCOPE), receive, send)  # type: ignore[operator]

    asyncio.run(main())
    return sent


def test_a_bug_answers_a_500_problem_and_does_not_escape() -> None:
    async def buggy(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError((0, "*", ""))

    sent = _run(CatchAll(buggy), [b""])
    assert sent[0]["status"] == 500
    assert dict(sent[0]["headers"])[b"content-type"] == b"application/problem+json"
    assert "KeyError" in json.loads(sent[1]["body"])["detail"]


def test_a_chunked_body_over_the_limit_never_reaches_the_app() -> None:
    reached: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append((await receive())["body"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sent = _run(BodyLimit(app, 1024), [b"x" * 600, b"x" * 600])
    assert sent[0]["status"] == 413 and not reached
    assert "1024 bytes" in json.loads(sent[1]["body"])["detail"]
    sent = _run(BodyLimit(app, 1024), [b"x" * 500, b"x" * 500])
    assert sent[0]["status"] == 200 and reached == [b"x" * 1000]
