"""ASGI middleware that writes one audit row per mutating call under ``/v1``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crane.api.db import AuditRow

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _write(engine: Engine, row: AuditRow) -> None:
    with Session(engine) as session:
        session.add(row)
        session.commit()


class AuditMiddleware:
    """Records who (token id), what (method and path), when, and the result (status, detail).

    Also the calls refused with 401/403/404, so probing shows up in the log.
    """

    def __init__(self, app: ASGIApp, engine: Engine) -> None:
        self.app = app
        self.engine = engine

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in MUTATING
            or not scope["path"].startswith("/v1/")
        ):
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            state: dict[str, Any] = scope.get("state", {})
            who = state.get("principal")
            row = AuditRow(
                token_id=who.token_id if who else None,
                tenant=state.get("tenant") or (who.tenant if who else None),
                action=scope["method"],
                target=(
                    scope["path"]
                    + ("?" + scope["query_string"].decode() if scope.get("query_string") else "")
                )[:300],
                status=status,
                detail=str(state.get("error_detail", ""))[:1000],
            )
            await run_in_threadpool(_write, self.engine, row)
