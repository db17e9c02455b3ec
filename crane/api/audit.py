"""ASGI middleware that writes one audit row per mutating call under ``/v1``."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crane.api.db import AuditRow

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
log = logging.getLogger("crane.api.audit")


def _write(engine: Engine, row: AuditRow) -> None:
    with Session(engine) as session:
        session.add(row)
        session.commit()


def _storable(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with each NUL written ``\\x00``: PostgreSQL text
    cannot hold NUL, and a path or an echoed field with one must not fail the call."""
    return text.replace("\x00", "\\x00")[:limit]


def _row(scope: Scope, status: int) -> AuditRow:
    state: dict[str, Any] = scope.get("state", {})
    who = state.get("principal")
    query = (scope.get("query_string") or b"").decode("utf-8", "replace")
    return AuditRow(
        token_id=who.token_id if who else None,
        tenant=state.get("tenant") or (who.tenant if who else None),
        action=scope["method"],
        target=_storable(scope["path"] + ("?" + query if query else ""), 300),
        status=status,
        detail=_storable(str(state.get("error_detail", "")), 1000),
    )


class AuditMiddleware:
    """Records who (token id), what (method and path), when, and the result (status, detail).

    The row is committed before the response starts, so a client that got its answer finds the
    row. Also the calls refused with 401/403/404 (probing shows up in the log) and those that
    raised (500, committed before the error response is sent). A row that cannot be written
    (the database down or locked) is logged as an error with what it held, and the call's own
    answer is still sent: the call has happened, and a bare 500 would make its caller retry it.
    """

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the call on; for a mutating ``/v1`` call, record its row before the answer."""
        if (
            scope["type"] != "http"
            or scope["method"] not in MUTATING
            or not scope["path"].startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        recorded = False

        async def record(status: int) -> None:
            nonlocal recorded
            recorded = True
            row = _row(scope, status)
            try:
                await run_in_threadpool(_write, self.engine, row)
            except Exception:  # the call is done: its answer must still reach the caller
                log.exception(
                    "audit row not written (database unavailable?): %s %s -> %s by token %s",
                    row.action,
                    row.target,
                    row.status,
                    row.token_id,
                )

        async def send_recorded(message: Message) -> None:
            if message["type"] == "http.response.start" and not recorded:
                await record(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recorded)
        finally:
            if not recorded:
                await record(500)
