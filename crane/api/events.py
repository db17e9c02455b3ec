"""Fan the backend's events out to SSE subscribers; record usage intervals from them and from
the backend's snapshots."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from crane.api import usage
from crane.api.backend import Backend
from crane.api.schemas import Event

log = logging.getLogger("crane.api.events")
RESUME_FIRST = 1.0
RESUME_MAX = 30.0
"""Seconds before the event stream is opened again after a break: the first, and the most
after breaks in a row."""


def first_id() -> int:
    """The number of a run's first event: the time it started, in microseconds. Every number an
    earlier run gave is lower (a run would have to publish more than one event a microsecond
    to catch up with the clock), and it stays below 2**53, where JavaScript's numbers end."""
    return time.time_ns() // 1000


class EventHub:
    """One consumer of ``backend.events()``; every subscriber gets its own bounded queue.

    A subscriber that falls ``buffer`` events behind loses the oldest ones, never blocks others.
    The last ``history`` events are kept, numbered, for ``crane events`` and ``Last-Event-ID``.
    Numbers grow across restarts of the server (:func:`first_id`), so a client that resumes
    after one gets every kept event of the new run instead of those past its old number only.
    """

    def __init__(self, backend: Backend, engine: Engine, buffer: int, history: int = 1000) -> None:
        self._backend = backend
        self._engine = engine
        self._buffer = buffer
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._numbered: set[asyncio.Queue[tuple[int, Event]]] = set()
        self._ring: deque[tuple[int, Event]] = deque(maxlen=history)
        self._seq = first_id() - 1

    def publish(self, event: Event) -> None:
        """Number ``event``, keep it in the history and hand it to every subscriber."""
        self._seq += 1
        self._ring.append((self._seq, event))
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(event)
        for numbered in self._numbered:
            if numbered.full():
                numbered.get_nowait()
            numbered.put_nowait((self._seq, event))

    def since(self, last_id: int) -> list[tuple[int, Event]]:
        """The kept events numbered after ``last_id`` (0: all of them), oldest first."""
        return [(seq, e) for seq, e in self._ring if seq > last_id]

    @contextmanager
    def subscribe_numbered(self) -> Iterator[asyncio.Queue[tuple[int, Event]]]:
        """Like :meth:`subscribe`, each event with its number (the SSE ``id``)."""
        queue: asyncio.Queue[tuple[int, Event]] = asyncio.Queue(self._buffer)
        self._numbered.add(queue)
        try:
            yield queue
        finally:
            self._numbered.discard(queue)

    async def run(self) -> None:
        """Consume the backend's events forever: record usage, publish; resume when it breaks."""
        pause = RESUME_FIRST
        while True:
            try:
                async for event in self._backend.events():
                    pause = RESUME_FIRST
                    if isinstance(event, usage.Snapshot):
                        await run_in_threadpool(usage.reconcile, self._engine, event)
                        continue
                    await run_in_threadpool(usage.record, self._engine, event)
                    self.publish(event)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                # one line per break (the backend down or stalled is not a bug), the traceback
                # with --log-level debug; breaks in a row wait longer, up to RESUME_MAX
                log.warning(
                    "event stream from the %s backend broke (%s: %s); resuming in %.0f s",
                    self._backend.name,
                    type(err).__name__,
                    str(err).splitlines()[0][:300] if str(err) else "",
                    pause,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, RESUME_MAX)

    @contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[Event]]:
        """A bounded queue of the events from now on."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._buffer)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)
