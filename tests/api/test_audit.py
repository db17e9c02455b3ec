"""The audit row of a mutating call is committed before its answer reaches the client."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from starlette.types import Message

from crane.api import problems
from crane.api.audit import AuditMiddleware
from crane.api.db import make_engine, migrate
from crane.api.errors import Conflict
from tests.api.conftest import ADMIN, start_server, stop_server


def _app(database_url: str) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.post("/v1/things", status_code=201)
    async def create() -> dict[str, str]:
        return {"name": "a"}

    @app.post("/v1/taken")
    async def taken() -> None:
        raise Conflict("thing a exists: pick another name")

    @app.post("/v1/echo")
    async def echo() -> None:
        raise Conflict("thing 'a\x00b' exists: pick another name")

    @app.post("/v1/bug")
    async def bug() -> None:
        raise RuntimeError("boom")

    engine = make_engine(database_url)
    migrate(engine)
    app.add_middleware(AuditMiddleware, engine=engine)
    app.state.engine = engine
    return app


async def _call(
    app: FastAPI, path: str, query: bytes = b"", audited: bool = True
) -> tuple[int, list[tuple[object, ...]]]:
    """POST ``path``; the status and the audit rows as they were when the answer started
    (none read when not ``audited``)."""
    seen: list[tuple[int, list[tuple[object, ...]]]] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            rows = []
            if audited:
                with app.state.engine.connect() as conn:
                    rows = conn.execute(
                        text("SELECT action, target, status, detail FROM audit_log")
                    ).all()
            seen.append((message["status"], [tuple(r) for r in rows]))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [],
        "server": ("test", 80),
        "client": ("127.0.0.1", 1),
        "root_path": "",
    }
    try:
        await app(scope, receive, send)
    except RuntimeError:
        assert path == "/v1/bug"
    return seen[0]


@pytest.mark.parametrize(
    ("path", "status", "detail"),
    [
        ("/v1/things", 201, ""),
        ("/v1/taken", 409, "thing a exists: pick another name"),
        ("/v1/bug", 500, ""),
    ],
)
def test_audit_row_is_committed_before_the_answer(
    database_url: str, path: str, status: int, detail: str
) -> None:
    app = _app(database_url)
    try:
        answered, rows = asyncio.run(_call(app, path))
    finally:
        app.state.engine.dispose()
    assert answered == status
    assert rows == [("POST", path, status, detail)]


@pytest.mark.parametrize(
    ("path", "query", "status", "target", "detail"),
    [
        (
            "/v1/no\x00such",
            b"",
            404,
            "/v1/no\\x00such",
            "no route POST /v1/no\\x00such: see /docs for the API",
        ),
        ("/v1/things", b"a=%00&b=\xff\x00", 201, "/v1/things?a=%00&b=\ufffd\\x00", ""),
        ("/v1/echo", b"", 409, "/v1/echo", "thing 'a\\x00b' exists: pick another name"),
    ],
)
def test_a_nul_or_bad_byte_in_the_path_query_or_echoed_input_is_audited_not_a_500(
    database_url: str, path: str, query: bytes, status: int, target: str, detail: str
) -> None:
    """PostgreSQL text cannot hold NUL: a path with %00, a query with a raw NUL or non-UTF-8
    byte, or an error message echoing such input answered a bare 500 and dropped the
    connection (anyone could, unauthenticated); each is answered and audited, NUL as \\x00."""
    app = _app(database_url)
    try:
        answered, rows = asyncio.run(_call(app, path, query))
    finally:
        app.state.engine.dispose()
    assert answered == status
    assert rows == [("POST", target, status, detail)]


def test_an_audit_row_the_database_cannot_take_still_lets_the_answer_through(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The database locked or down at the moment the row is written: the call has happened
    (a tenant made, say), so its caller gets its own answer, not a bare text 500 that makes it
    retry; the missing row is logged as an error saying what it held."""
    app = _app(database_url)
    with app.state.engine.connect() as conn:  # the audit table goes: every insert now fails
        conn.execute(text("DROP TABLE audit_log"))
        conn.commit()
    try:
        answered, _ = asyncio.run(_call(app, "/v1/things", audited=False))
    finally:
        app.state.engine.dispose()
    assert answered == 201
    assert any(
        "audit row not written" in r.getMessage() and "/v1/things -> 201" in r.getMessage()
        for r in caplog.records
    ), caplog.text


def test_a_newline_in_a_path_cannot_forge_a_line_of_the_server_log(tmp_path: Path) -> None:
    """A path is percent-decoded before it is logged: ``%0a`` in it wrote a line break into
    the server's log, so an outsider's request (no token needed) could add a line that reads
    like the server's own (``ERROR: ... token admin0``) when an audit row could not be written.
    Text from a request now appears in the log with its control characters escaped."""
    db = tmp_path / "crane.db"
    srv = start_server(
        f"sqlite:///{db}", tmp_path / "serve.log", extra=["--bootstrap-token", ADMIN]
    )
    try:
        with sqlite3.connect(db) as conn:  # every audit insert now fails and is logged
            conn.execute("DROP TABLE audit_log")
        forged = "FORGED audit row written: DELETE /v1/tenants/prod -> 204 by token admin0"
        with srv.client(None) as anon:
            resp = anon.post(f"/v1/miniclusters/x%0a{quote(forged)}%0d%1b[2J:grow", json={})
        assert resp.status_code in (401, 404), resp.text
        deadline = time.monotonic() + 30
        while "audit row not written" not in srv.log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop_server(srv)
    log = srv.log.read_text()
    assert "audit row not written" in log, log
    assert "x\\nFORGED audit row" in log, log
    assert not any(line.startswith("FORGED") for line in log.splitlines()), log
    assert "\x1b" not in log and "\r" not in log
