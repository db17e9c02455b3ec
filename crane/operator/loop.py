"""The one scheduling loop: wait for a change, decide, write the plan; only while leading.

A pass is decided while the previous pass's writes are still in flight; its own writes start
once those are done and learnt (:meth:`Decider.learn`), so one object's writes never overtake
each other, and a failed status write is known before the next plan goes out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from crane.lifecycle.decide import Decider
from crane.lifecycle.plan import Applied, Plan
from crane.operator.actions import Actuator
from crane.operator.cache import ClusterCache
from crane.operator.leader import LeaseElector, LeaseNamespaceMissing
from crane.operator.metrics import Metrics

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
"""Longest sleep without a change: time-based decisions (node grace) need a pass now and then."""
METRICS_SECONDS = 5.0
PASS_SHARE = 2.0
"""After a change, wait this many times the last pass's duration (at least the debounce) to
gather more changes into the next pass: a pass costs the same for one change as for a hundred,
so under a burst of changes deciding takes at most a third of the loop's time."""


class SchedulingLoop:
    """Runs scheduling passes while this operator holds the leader lease."""

    def __init__(
        self,
        cache: ClusterCache,
        new_decider: Callable[[], Decider],
        actuator: Actuator,
        elector: LeaseElector,
        metrics: Metrics,
        debounce_seconds: float = 0.05,
        refresh: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.cache = cache
        self.refresh = refresh
        """Lists the cluster into the cache again (watches restarted from those listings);
        awaited before every new decider: a standby may have primed its cache long ago."""
        self.new_decider = new_decider
        self.decider: Decider | None = None
        self.actuator = actuator
        self.elector = elector
        self.metrics = metrics
        self.debounce = debounce_seconds
        self._metrics_at = 0.0
        self._pass_seconds = 0.0
        """How long the last decision took (seconds)."""
        self._writing: tuple[Decider, Plan, asyncio.Future[Applied]] | None = None
        """The previous pass's plan while the actuator writes it."""
        self._term = -1
        """The lease term the decider was made in."""
        self._lease_changed = asyncio.Event()
        """Set by each renewal: a standby's loop wakes at once when it takes the lease."""
        self._renew_now = asyncio.Event()
        """Set by the loop when the lease may have lapsed: renew before the next pass."""

    async def _renew(self) -> None:
        """Acquire or renew the lease every third of its duration, or at once when the loop
        finds it may have lapsed; on its own task, so long writes never starve it."""
        elector = self.elector
        renew_every = max(0.5, elector.duration / 3)
        while True:
            try:
                await asyncio.to_thread(elector.try_acquire)
            except LeaseNamespaceMissing as err:
                log.error("cannot take the leader lease: %s; standing by", err)
                elector.stand_by()
            except Exception:
                log.exception("lease renewal failed; standing by")
                elector.stand_by()
            self._lease_changed.set()
            self._renew_now.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(renew_every):
                    await self._renew_now.wait()

    async def _lead(self) -> Decider | None:
        """The decider of this pass, or None when this instance may not decide now: it must
        hold the lease with no other instance able to have taken it over (a pause past the
        lease, SIGSTOP or a stalled host, asks for a renewal first). A new term starts from a
        new decider, since what the old one remembers may have been changed by the instance
        that led meanwhile, on a cache listed again (:attr:`refresh`), since what the watches
        had buffered while this instance stood by (or was stopped) may be old."""
        if not self.elector.holds():
            if self.elector.leading:
                self._renew_now.set()
            self.decider = None
            return None
        if self.decider is None or self._term != self.elector.term:
            if self.refresh is not None:
                try:
                    await self.refresh()
                except Exception:
                    log.exception("cannot list the cluster again for a new term; retrying")
                    return None
                if not self.elector.holds():
                    return None
            self.decider = self.new_decider()
            self._term = self.elector.term
        return self.decider

    async def run(self) -> None:
        """Loop forever: while leading, run a pass on each change (or tick); the lease is
        renewed on a task of its own. Waits use ``asyncio.timeout``: Python 3.11's
        ``asyncio.wait_for`` drops a cancellation that comes as its wait ends, and the loop
        would never stop."""
        self._lease_changed = asyncio.Event()
        self._renew_now = asyncio.Event()
        renewing = asyncio.create_task(self._renew(), name="crane-lease-renewal")
        try:
            while True:
                if await self._lead() is None:
                    await self.flush()
                    self._lease_changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(TICK_SECONDS):
                            await self._lease_changed.wait()
                    continue
                try:
                    async with asyncio.timeout(TICK_SECONDS):
                        await self.cache.changed.wait()
                    await asyncio.sleep(self._gather_seconds())
                except TimeoutError:
                    pass
                decider = await self._lead()
                if decider is None:
                    continue  # the changes stay pending for the next leader's pass
                self.cache.changed.clear()
                await self.one_pass(decider)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing

    def _gather_seconds(self) -> float:
        """How long to gather changes before the next pass (see :data:`PASS_SHARE`)."""
        return min(TICK_SECONDS, max(self.debounce, PASS_SHARE * self._pass_seconds))

    async def one_pass(self, decider: Decider) -> None:
        """Decide a plan from the cache and, once the previous pass's writes are learnt, start
        writing it. A failed decision drops the decider: the next pass starts from the API's state.
        """
        started = time.perf_counter()
        try:
            plan = decider.decide(self.cache)
        except Exception:
            log.exception("scheduling pass failed; starting over from the API's state")
            await self.flush()
            self.decider = None
            self.cache.changed.set()
            return
        self._pass_seconds = time.perf_counter() - started
        self.metrics.decision_seconds.observe(self._pass_seconds)
        for kind, _ in plan.conflicts:
            self.metrics.restore_conflicts.labels(kind).inc()
        self._observe(decider)
        await self.flush()
        if not plan.empty():
            self._writing = (decider, plan, asyncio.ensure_future(self.actuator.apply(plan)))

    async def flush(self) -> None:
        """Wait for the writes in flight and learn how they went."""
        if self._writing is None:
            return
        decider, plan, writing = self._writing
        self._writing = None
        applied = await writing
        if applied.terminating:  # a namespace being deleted that the watch has not shown yet
            self.cache.terminating.update(applied.terminating)
        decider.learn(plan, applied)

    def _observe(self, decider: Decider) -> None:
        now = time.monotonic()
        if now - self._metrics_at < METRICS_SECONDS:
            return
        self._metrics_at = now
        products = {n: v.gpu_product for n, v in self.cache.nodes.items()}
        queued = sum(1 for d in decider.engine.queue() if str(d.outcome) == "Queued")
        self.metrics.observe_gpus(decider.engine.gpu_counts(), products, queued)
