"""Which API servers of one database are alive, so a request one of them was killed while
running is not waited on.

Each server process is an *instance* (a random id) that writes a heartbeat row every
:data:`HEARTBEAT_SECONDS`; one silent for :data:`GONE_SECONDS` is gone (killed, its machine
lost), one stopped cleanly removes its row. The same loop keeps the idempotency table bounded:
keys older than :data:`KEY_TTL` are forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col
from starlette.concurrency import run_in_threadpool

from crane.api.db import IdempotencyRow, ServerRow, aware, utcnow

log = logging.getLogger("crane.api")

HEARTBEAT_SECONDS = 5.0
GONE_SECONDS = 20.0
"""A server whose heartbeat is older than this is gone (four beats missed)."""
KEY_TTL = timedelta(hours=24)
"""How long an ``Idempotency-Key``'s first answer is kept (as payment APIs keep theirs)."""


def new_instance() -> str:
    """A fresh id for this server process."""
    return uuid.uuid4().hex


def beat(engine: Engine, instance: str) -> None:
    """Say ``instance`` is alive now."""
    with Session(engine) as session:
        row = session.get(ServerRow, instance)
        if row is None:
            row = ServerRow(instance=instance)
        row.seen_at = utcnow()
        session.add(row)
        session.commit()


def alive(engine: Engine, instance: str) -> bool:
    """Whether ``instance`` beat within :data:`GONE_SECONDS`."""
    with Session(engine) as session:
        row = session.get(ServerRow, instance)
    return row is not None and aware(row.seen_at) > utcnow() - timedelta(seconds=GONE_SECONDS)


def forget(engine: Engine, instance: str) -> None:
    """``instance`` stops: gone at once for the others."""
    with Session(engine) as session:
        session.exec(delete(ServerRow).where(col(ServerRow.instance) == instance))
        session.commit()


def prune(engine: Engine, now: datetime | None = None) -> int:
    """Forget idempotency keys older than :data:`KEY_TTL` and servers long gone; how many keys
    went."""
    at = now or utcnow()
    with Session(engine) as session:
        keys = session.exec(
            delete(IdempotencyRow).where(col(IdempotencyRow.created_at) < at - KEY_TTL)
        )
        session.exec(delete(ServerRow).where(col(ServerRow.seen_at) < at - KEY_TTL))
        session.commit()
    return int(keys.rowcount or 0)


async def keep_alive(engine: Engine, instance: str) -> None:
    """Beat every :data:`HEARTBEAT_SECONDS` (and prune) until cancelled; a database that fails
    a beat is logged and tried again at the next."""
    while True:
        try:
            await run_in_threadpool(beat, engine, instance)
            await run_in_threadpool(prune, engine)
        except SQLAlchemyError as err:
            log.warning("heartbeat of API server %s failed: %s", instance, err)
        await asyncio.sleep(HEARTBEAT_SECONDS)
