"""``Idempotency-Key``: a retried create / grow / shrink returns the first answer, once.

The first request with a key claims it by inserting a row (a unique constraint makes exactly
one claim win, also across workers); concurrent retries wait for that row's answer. A first
attempt that failed with a server error releases its claim, so a retry runs again. A claim
whose server is gone (killed while running it: ``crane.api.instances``) is never answered: a
retry is told so at once (409), since the first attempt may or may not have taken effect.
Keys are kept for ``instances.KEY_TTL``.
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

from crane.api import instances
from crane.api.db import IdempotencyRow
from crane.api.errors import Conflict, CraneError, problem_body

POLL_SECONDS = 0.05
WAIT_SECONDS = 3700.0
"""How long a retry waits for the first attempt (longer than the longest grow wait)."""
LOOK_SECONDS = 1.0
"""How often a waiting retry looks whether the first attempt's server is still alive."""


def fingerprint(method: str, path: str, body: Any) -> str:
    """SHA-256 hex digest of a request's method, path and JSON body (keys sorted)."""
    text = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(f"{method} {path} {text}".encode()).hexdigest()


def _claim(engine: Engine, owner: str, principal: str, key: str, fp: str) -> IdempotencyRow | None:
    """Claim ``key`` for server ``owner``: None when this request won, else the existing row."""
    with Session(engine) as session:
        session.add(IdempotencyRow(principal=principal, key=key, fingerprint=fp, owner=owner))
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
        row.status, row.body, row.owner = status, body, None
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


def _orphaned(engine: Engine, row: IdempotencyRow) -> bool:
    """Whether claim ``row``'s server is gone, so nobody will ever answer it."""
    if row.owner is None:  # claimed before servers said who they are: only the wait bounds it
        return False
    return not instances.alive(engine, row.owner)


def cut_off(key: str) -> Conflict:
    """The answer to a retry of a request whose server stopped while running it."""
    return Conflict(
        f"the first request with Idempotency-Key {key!r} did not finish: the API server running "
        "it stopped. It may or may not have taken effect: look (GET the object) and, if needed, "
        "send it again with a new Idempotency-Key"
    )


async def run_once(
    engine: Engine,
    owner: str,
    principal: str,
    key: str | None,
    fp: str,
    call: Callable[[], Awaitable[tuple[int, Any]]],
) -> Response:
    """Run ``call`` (returning status and a JSON-able body) at most once per ``key``, on the
    API server ``owner`` (``crane.api.instances``)."""
    if key is None:
        status, body = await call()
        return JSONResponse(body, status_code=status)
    deadline = time.monotonic() + WAIT_SECONDS
    next_look = 0.0
    while True:
        row = await run_in_threadpool(_claim, engine, owner, principal, key, fp)
        if row is None:
            break
        if row.fingerprint != fp:
            raise Conflict(
                f"Idempotency-Key {key!r} was used for a different request: "
                "use a new key for a new request"
            )
        if row.status is not None:
            return _replay(row)
        if time.monotonic() >= next_look:
            if await run_in_threadpool(_orphaned, engine, row):
                raise cut_off(key)
            next_look = time.monotonic() + LOOK_SECONDS
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
