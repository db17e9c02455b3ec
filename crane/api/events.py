"""Fan the backend's events out to SSE subscribers; record usage intervals from them and from
the backend's snapshots."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from crane.api import usage
from crane.api.backend import Backend
from crane.api.schemas import Event

log = logging.getLogger("crane.api.events")


class EventHub:
    """One consumer of ``backend.events()``; every subscriber gets its own bounded queue.

    A subscriber that falls ``buffer`` events behind loses the oldest ones, never blocks others.
    """

    def __init__(self, backend: Backend, engine: Engine, buffer: int) -> None:
        self._backend = backend
        self._engine = engine
        self._buffer = buffer
        self._subscribers: set[asyncio.Queue[Event]] = set()

    async def run(self) -> None:
        while True:
            try:
                async for event in self._backend.events():
                    if isinstance(event, usage.Snapshot):
                        await run_in_threadpool(usage.reconcile, self._engine, event)
                        continue
                    await run_in_threadpool(usage.record, self._engine, event)
                    for queue in self._subscribers:
                        if queue.full():
                            queue.get_nowait()
                        queue.put_nowait(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "event stream from the %s backend broke; resuming", self._backend.name
                )
                await asyncio.sleep(1.0)

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(self._buffer)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
