"""Plain list-and-watch streams that feed the cache, one per kind the loop reads.

kopf runs the process (start-up, clean-up, liveness, signals); the watches are these. kopf's
per-event machinery (causes, progress, loggers, patches) is made for handlers that change
objects, and the operator's handlers only fed the cache: it cost about 0.6 ms of CPU per event,
most of the operator's CPU with a thousand pods starting. A stream here decodes each event and
hands it to :meth:`ClusterCache.apply` on the event loop, nothing more.

A stream lists once (or starts from the priming list's resourceVersion), then watches from the
list's resourceVersion, resuming from the last event seen whenever the server ends a watch. When
the API server no longer has that version (410 Gone), or the connection fails, it lists again and
:meth:`ClusterCache.resync` heals the cache: objects deleted while nobody watched are dropped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from crane.kube.client import KubeClient
from crane.operator.cache import ClusterCache

log = logging.getLogger(__name__)

RETRY_SECONDS = (1.0, 30.0)
"""First and longest wait before listing again after a failure (doubling in between)."""
UNSERVED_SECONDS = 60.0
"""How often to look again for a kind the API server does not serve (DRA's, on old servers)."""


class Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


class KindStream:
    """Keeps the cache's copy of one kind current: list, then watch, again and again."""

    def __init__(
        self,
        client: KubeClient,
        cache: ClusterCache,
        kind: str,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
    ) -> None:
        self.client = client
        self.stopped = False
        self.cache = cache
        self.kind = kind
        self.version = resource_version
        """Where the next watch starts; None: list first."""
        self.timeout = timeout_seconds
        self._pending: list[tuple[str | None, dict[str, Any]]] = []
        """Events the watch thread read and the event loop has not applied yet, in order."""
        self._lock = threading.Lock()

    async def run(self) -> None:
        """List and watch until cancelled; failures are logged and retried with backoff."""
        wait = RETRY_SECONDS[0]
        while True:
            try:
                if self.version is None:
                    await self._relist()
                if self.version is None:  # the API server does not serve this kind
                    await asyncio.sleep(UNSERVED_SECONDS)
                    continue
                started = time.monotonic()
                await self._watch_once()
                if time.monotonic() - started < RETRY_SECONDS[0]:  # ended at once: not a spin
                    await asyncio.sleep(wait)
                    wait = min(RETRY_SECONDS[1], wait * 2)
                else:
                    wait = RETRY_SECONDS[0]
            except asyncio.CancelledError:
                self.stopped = True
                raise
            except Expired:
                log.info("watch of %s expired; listing again", self.kind)
                self.version = None
            except Exception as err:  # the API server is away or restarting: list again later
                log.info("watch of %s failed: %s; listing again in %.0fs", self.kind, err, wait)
                self.version = None
                await asyncio.sleep(wait)
                wait = min(RETRY_SECONDS[1], wait * 2)

    async def _relist(self) -> None:
        since = self.cache.mark()
        items, version = await asyncio.to_thread(self.client.list_versioned, self.kind)
        dropped = self.cache.resync(self.kind, items, since)
        if dropped:
            log.warning("listing %s: %d the watch had missed were gone", self.kind, dropped)
        self.version = version

    async def _watch_once(self) -> None:
        """Run one watch in a daemon thread of its own: it blocks for minutes, so never in the
        loop's default executor (whose few threads the actuator and the lease need), and never
        in a thread the interpreter would wait for at exit."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def settle(err: BaseException | None) -> None:
            if done.done():
                return
            if err is None:
                done.set_result(None)
            else:
                done.set_exception(err)

        def run() -> None:
            err: BaseException | None = None
            try:
                self._follow(loop)
            except BaseException as failed:  # handed to the awaiting task
                err = failed
            try:
                loop.call_soon_threadsafe(settle, err)
            except RuntimeError:  # the loop is closed: the operator stopped
                return

        threading.Thread(target=run, name=f"crane-watch-{self.kind}", daemon=True).start()
        await done

    def _follow(self, loop: asyncio.AbstractEventLoop) -> None:
        """One watch, in a worker thread; its events are applied on the event loop, in order,
        before the watch's end is (both go through the loop's FIFO of callbacks)."""
        assert self.version is not None
        for event in self.client.watch(self.kind, self.version, self.timeout):
            if self.stopped:
                return
            kind, body = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if body.get("code") == 410:
                    raise Expired(body.get("message", ""))
                raise RuntimeError(f"watch error: {body.get('message', body)}")
            version = (body.get("metadata") or {}).get("resourceVersion")
            if kind != "BOOKMARK":
                with self._lock:
                    wake = not self._pending
                    self._pending.append((kind, body))
                if wake:  # one wake-up of the loop per batch, not per event
                    loop.call_soon_threadsafe(self._apply)
            if version:
                self.version = version

    def _apply(self) -> None:
        """On the event loop: apply every event read so far, in the order read (none once the
        stream is stopped: a listing that replaced it is newer than what it had buffered)."""
        with self._lock:
            batch, self._pending = self._pending, []
        if self.stopped:
            return
        for event_type, body in batch:
            self.cache.apply(self.kind, event_type, body)
