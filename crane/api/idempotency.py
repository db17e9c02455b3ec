"""``Idempotency-Key``: a retried create / grow / shrink returns the first answer, once.

The first request with a key claims it by inserting a row (a unique constraint makes exactly
one claim win, also across workers); concurrent retries wait for that row's answer. A first
attempt that failed with a server error releases its claim, so a retry runs again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from crane.api.db import IdempotencyRow
from crane.api.errors import Conflict, CraneError, problem_body

POLL_SECONDS = 0.05
WAIT_SECONDS = 3700.0
"""How long a retry waits for the first attempt (longer than the longest grow wait)."""


def fingerprint(method: str, path: str, body: Any) -> str:
    """SHA-256 hex digest of a request's method, path and JSON body (keys sorted)."""
    text = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(f"{method} {path} {text}".encode()).hexdigest()


def _claim(engine: Engine, principal: str, key: str, fp: str) -> IdempotencyRow | None:
    """Claim ``key``: None when this request won, else the existing row."""
    with Session(engine) as session:
        session.add(IdempotencyRow(principal=principal, key=key, fingerprint=fp))
        try:
            session.commit()
            return None
        except IntegrityError:
            session.rollback()
        row = session.exec(
            select(IdempotencyRow).where(
                IdempotencyRow.principal == principal, IdempotencyRow.key == key
            )
        ).first()
        return row


def _store(engine: Engine, principal: str, key: str, status: int, body: str) -> None:
    with Session(engine) as session:
        row = session.exec(
            select(IdempotencyRow).where(
                IdempotencyRow.principal == principal, IdempotencyRow.key == key
            )
        ).one()
        row.status, row.body = status, body
        session.add(row)
        session.commit()


def _release(engine: Engine, principal: str, key: str) -> None:
    with Session(engine) as session:
        session.exec(
            delete(IdempotencyRow).where(
                col(IdempotencyRow.principal) == principal,
                col(IdempotencyRow.key) == key,
            )
        )
        session.commit()


def _replay(row: IdempotencyRow) -> Response:
    assert row.status is not None and row.body is not None
    media = "application/json" if row.status < 400 else "application/problem+json"
    return Response(
        row.body, status_code=row.status, media_type=media, headers={"Idempotent-Replayed": "true"}
    )


async def run_once(
    engine: Engine,
    principal: str,
    key: str | None,
    fp: str,
    call: Callable[[], Awaitable[tuple[int, Any]]],
) -> Response:
    """Run ``call`` (returning status and a JSON-able body) at most once per ``key``."""
    if key is None:
        status, body = await call()
        return JSONResponse(body, status_code=status)
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        row = await run_in_threadpool(_claim, engine, principal, key, fp)
        if row is None:
            break
        if row.fingerprint != fp:
            raise Conflict(
                f"Idempotency-Key {key!r} was used for a different request: "
                "use a new key for a new request"
            )
        if row.status is not None:
            return _replay(row)
        if time.monotonic() > deadline:
            raise Conflict(f"a request with Idempotency-Key {key!r} is still running: retry later")
        await asyncio.sleep(POLL_SECONDS)
    try:
        status, body = await call()
    except CraneError as err:
        if err.status >= 500:
            await run_in_threadpool(_release, engine, principal, key)
            raise
        await run_in_threadpool(
            _store, engine, principal, key, err.status, json.dumps(problem_body(err))
        )
        raise
    except BaseException:
        await run_in_threadpool(_release, engine, principal, key)
        raise
    text = json.dumps(body, default=str)
    await run_in_threadpool(_store, engine, principal, key, status, text)
    return Response(text, status_code=status, media_type="application/json")
