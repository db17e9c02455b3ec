"""Transport-level rules every request meets before any router or backend sees it.

* :class:`BodyLimit`: a request body over the limit is a 413 (Content-Length or chunked alike),
  read off the connection first so the keep-alive connection stays usable.
  A JSON body with ``NaN`` or ``Infinity``, a key twice in one object, or nested past what
  the parser reads is a 400 (:func:`unsound_json`).
* :class:`HeadAsGet`: HEAD answers as GET without the body, wherever GET is allowed.
* :class:`CatchAll`: a bug answers a 500 problem and the connection stays open (an exception
  that leaves the app makes the server drop the connection).
"""

from __future__ import annotations

import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crane.api.errors import CraneError, problem_body

log = logging.getLogger("crane.api")
MEDIA = b"application/problem+json"
DRAIN_FACTOR = 64
"""An over-limit body is read and dropped up to this many times the limit; beyond that the
connection is closed instead."""


async def send_problem(
    send: Send, err: CraneError, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer ``err`` as ``application/problem+json`` straight on the ASGI channel."""
    body = json.dumps(problem_body(err)).encode()
    headers = [
        (b"content-type", MEDIA),
        (b"content-length", str(len(body)).encode()),
        *(extra_headers or []),
    ]
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def too_large(limit: int) -> CraneError:
    """The 413 problem for a body over ``limit`` bytes."""
    return CraneError(
        f"the request body is larger than the limit of {limit} bytes: send less (an admin "
        "raises the limit with CRANE_MAX_BODY_BYTES)",
        413,
        "Content too large",
    )


class BodyLimit:
    """Buffer each request body up to ``limit`` bytes, then hand it to the app; over the limit,
    answer 413 without calling the app at all."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the body (bounded), then run the app with it or answer 413."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        declared = _content_length(scope)
        over = declared is not None and declared > self.limit
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body was complete
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                over = True
            if not over:
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
            if size > self.limit * DRAIN_FACTOR:
                await send_problem(send, too_large(self.limit), [(b"connection", b"close")])
                return
        if over:
            await send_problem(send, too_large(self.limit))
            return
        refused = unsound_json(scope, b"".join(chunks))
        if refused is not None:
            await send_problem(send, refused)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class _NonFinite(ValueError):
    pass


class _Repeated(ValueError):
    pass


def _reject_constant(name: str) -> float:
    raise _NonFinite(name)


def _once_each(pairs: list[tuple[str, object]]) -> dict[str, object]:
    seen: dict[str, object] = {}
    for key, value in pairs:
        if key in seen:
            raise _Repeated(key)
        seen[key] = value
    return seen


def _bad_json(detail: str) -> CraneError:
    return CraneError(f"the body is not valid JSON: {detail}", 400, "Bad request")


def unsound_json(scope: Scope, body: bytes) -> CraneError | None:
    """A 400 for a JSON body that parses to something other than what the client meant:

    * ``NaN``, ``Infinity`` or ``-Infinity``: no JSON number (RFC 8259) though Python's parser
      takes them; stored, they came back as ``null``, and Kubernetes refuses them;
    * a key twice in one object: the last would win without a word, while a proxy or a reader
      of the audit may take the first;
    * nesting past what the parser reads (a ``RecursionError``, which no handler expects).

    Else None (a body that is not JSON is the router's to answer)."""
    if not body:
        return None
    media = dict(scope.get("headers", [])).get(b"content-type", b"").split(b";")[0].strip()
    if media.lower() != b"application/json" and not media.lower().endswith(b"+json"):
        return None
    try:
        json.loads(body, parse_constant=_reject_constant, object_pairs_hook=_once_each)
    except _NonFinite as exc:
        return _bad_json(f"{exc} is no JSON number; send a number or a string")
    except _Repeated as exc:
        return _bad_json(f"one object holds the key {str(exc)!r} twice; send each key once")
    except RecursionError:
        return _bad_json("it is nested too deep to read: flatten it")
    except ValueError:
        return None
    return None


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class CatchAll:
    """Turn an exception that escaped every handler into a 500 problem, logged once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; on an escaped exception answer 500 if nothing was sent yet."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            err = CraneError(
                f"internal error ({type(exc).__name__}); the server log has the details", 500
            )
            await send_problem(send, err)


class HeadAsGet:
    """Answer ``HEAD`` as the ``GET`` of the same URL without its body (RFC 9110 section 9.3.2):
    the ``Allow`` header of every 405 names HEAD wherever GET is, so HEAD must work there.
    The status and headers (``Content-Length`` included) are the GET's; once the first body
    chunk is due the answer ends, and a streaming route hears the client leave."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run a HEAD request as GET and drop the body; pass anything else through."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        done = False

        async def head_send(message: Message) -> None:
            nonlocal done
            if done:
                return
            if message["type"] == "http.response.body":
                done = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        async def head_receive() -> Message:
            if done:
                return {"type": "http.disconnect"}
            return await receive()

        await self.app({**scope, "method": "GET"}, head_receive, head_send)
