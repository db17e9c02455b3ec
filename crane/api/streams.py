"""A cap on the long-lived answers (event streams, followed logs, execs) one tenant holds open
at once.

Each open stream costs the server a socket, a subscriber queue or a reader thread (an exec: a
thread until its command ends), and a token lookup every keep-alive; without a cap one tenant's
script could open thousands and slow the API for every tenant. Past ``max_streams_per_tenant``
a new stream is a 429 problem naming the limit; the slot comes back when the stream ends,
however it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

from crane.api.auth import Principal
from crane.api.errors import TooManyStreams


class StreamSlots:
    """Open streams per holder: a tenant for tenant and MiniCluster tokens, the token itself
    for an admin token (admins act for every tenant)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    @staticmethod
    def holder(principal: Principal) -> str:
        """Whose slots a stream of ``principal`` takes."""
        if principal.is_admin or principal.tenant is None:
            return f"token {principal.token_id}"
        return f"tenant {principal.tenant}"

    def open(self, holder: str) -> int:
        """How many streams ``holder`` has open now."""
        with self._lock:
            return self._open[holder]

    def take(self, principal: Principal) -> Slot:
        """One of the principal's slots, held until :meth:`Slot.hold`'s stream ends or the slot
        is released; a 429 when none is free."""
        holder = self.holder(principal)
        with self._lock:
            if self._open[holder] >= self.limit:
                raise TooManyStreams(
                    f"{holder} has {self.limit} event streams, followed logs and execs open, "
                    "the most this server allows (max_streams_per_tenant): close one, or follow "
                    "fewer replicas at once"
                )
            self._open[holder] += 1
        return Slot(self, holder)

    def _give_back(self, holder: str) -> None:
        with self._lock:
            self._open[holder] -= 1
            if self._open[holder] <= 0:
                del self._open[holder]


class Slot:
    """One open stream's place; given back once, whichever way the stream ends."""

    def __init__(self, slots: StreamSlots, holder: str) -> None:
        self._slots = slots
        self._holder = holder
        self._released = threading.Event()

    def release(self) -> None:
        """Give the place back (again: nothing)."""
        if not self._released.is_set():
            self._released.set()
            self._slots._give_back(self._holder)

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        """Released when what opens the stream fails (the stream never starts)."""
        if kind is not None:
            self.release()

    def hold(self, body: AsyncIterator[str]) -> AsyncIterator[str]:
        """``body``, keeping this place until it ends, is closed, or is dropped unread (a
        client gone before the first byte)."""

        async def held() -> AsyncIterator[str]:
            try:
                async for chunk in body:
                    yield chunk
            finally:
                self.release()

        stream = held()
        weakref.finalize(stream, self.release)
        return stream


async def while_valid(
    source: AsyncIterator[str], valid: Callable[[], Awaitable[bool]], every: float
) -> AsyncIterator[str]:
    """``source``'s items for as long as ``valid()`` holds: asked before each item and, while
    ``source`` is quiet, every ``every`` seconds, so a revoked or expired token ends a stream
    whose source says nothing (a followed log of a replica that prints nothing)."""
    pending: asyncio.Future[str] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(source))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not await valid():
                return
            if not done:
                continue
            got, pending = pending, None
            try:
                item = got.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await pending  # the source closed, or its error retrieved (never logged)
