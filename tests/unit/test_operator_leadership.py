"""One writer at a time: an operator paused past its lease (SIGSTOP, a stalled host, a long
garbage collection) decides and writes nothing until it has the lease again, and one that takes
the lease back from another holder starts from the API's state, not from its own memory.

The elector runs on a clock of the test's: moving it past the lease is the pause (a paused
process's monotonic clock moves on while it is stopped). The Lease lives in a fake
coordination API; another instance taking it over is a write to that Lease.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client

from crane.kube.names import CARGOS
from crane.lifecycle.plan import Applied, Plan, StatusWrite
from crane.operator.actions import Actuator
from crane.operator.leader import LeaseElector
from crane.operator.loop import SchedulingLoop
from crane.operator.metrics import Metrics
from crane.operator.watch import KindStream
from tests.unit.test_operator_actions import FakeClient, pod
from tests.unit.test_operator_lease import FakeApis

LEASE = 3.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Cache:
    def __init__(self) -> None:
        self.changed = asyncio.Event()


class Decisions:
    """Deciders that number their passes; the actuator that records what it was asked to write."""

    def __init__(self) -> None:
        self.deciders = 0
        self.passes: list[tuple[int, int]] = []
        """(decider, pass) of every pass decided."""
        self.written: list[str] = []

    def new_decider(self) -> Any:
        self.deciders += 1
        number = self.deciders
        outer = self

        class Decider:
            def decide(self, cache: Any) -> Plan:
                outer.passes.append((number, len(outer.passes) + 1))
                plan = Plan()
                plan.cargo_deletes.append(("t", f"c{len(outer.passes)}"))
                return plan

            def learn(self, plan: Plan, applied: Applied) -> None:
                pass

        return Decider()

    async def apply(self, plan: Plan) -> Applied:
        self.written.extend(name for _, name in plan.cargo_deletes)
        return Applied()


def lease_held_by(apis: FakeApis, holder: str, renewed: datetime) -> None:
    """Another instance writes the Lease, as its elector would."""
    lease = apis.leases[("crane-system", "crane-operator")]
    lease.spec.holder_identity = holder
    lease.spec.renew_time = renewed
    lease.spec.acquire_time = renewed


async def until(what: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not what():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def run_loop(
    scenario: Callable[[SchedulingLoop, Decisions, FakeApis, Clock], Any],
    refresh: Callable[[], Awaitable[None]] | None = None,
) -> None:
    apis = FakeApis({"crane-system"})
    clock = Clock()
    elector = LeaseElector(apis, "crane-system", "crane-operator", "me", LEASE, clock=clock)  # type: ignore[arg-type]
    decisions = Decisions()
    cache = Cache()
    loop = SchedulingLoop(
        cache,  # type: ignore[arg-type]
        decisions.new_decider,
        decisions,  # type: ignore[arg-type]
        elector,
        Metrics(),
        refresh=refresh,
    )
    loop._observe = lambda decider: None  # type: ignore[method-assign]

    async def main() -> None:
        task = asyncio.create_task(loop.run())
        try:
            cache.changed.set()
            assert await until(lambda: len(decisions.passes) == 1), "the leader decides a pass"
            await scenario(loop, decisions, apis, clock)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(main())


def test_an_operator_paused_past_its_lease_decides_nothing_once_another_holds_it() -> None:
    async def scenario(
        loop: SchedulingLoop, decisions: Decisions, apis: FakeApis, clock: Clock
    ) -> None:
        clock.now += 10 * LEASE  # paused; meanwhile a standby took the expired lease over
        lease_held_by(apis, "standby", datetime.now(UTC))
        loop.cache.changed.set()  # the changes the watches gathered during the pause
        assert await until(lambda: not loop.elector.leading or len(decisions.passes) > 1)
        assert decisions.passes == [(1, 1)], "no pass decided on a lease another instance holds"
        assert decisions.written == ["c1"]
        assert loop.decider is None

    run_loop(scenario)


def test_a_lease_taken_back_from_another_holder_starts_from_a_fresh_decider() -> None:
    async def scenario(
        loop: SchedulingLoop, decisions: Decisions, apis: FakeApis, clock: Clock
    ) -> None:
        # paused; a standby led meanwhile (it placed and moved cargos) and then died: its
        # lease has expired too when this one wakes up
        clock.now += 10 * LEASE
        lease_held_by(apis, "standby", datetime.now(UTC) - timedelta(seconds=10 * LEASE))
        loop.cache.changed.set()
        assert await until(lambda: len(decisions.passes) > 1)
        assert decisions.passes[1][0] == 2, (
            "the memory of the first term is stale: the pass after taking the lease back is "
            "decided by a new decider, restored from the API's state"
        )

    run_loop(scenario)


def test_each_new_term_decides_on_a_cache_listed_again() -> None:
    """A standby stopped (or slow) while another led has old events buffered in its watches:
    its first pass after taking the lease over must see the API server's state, so the cache
    is listed again before each new decider (the first one included: a standby primed its
    cache when it started, perhaps long ago)."""
    log: list[str] = []
    decisions_seen: list[Decisions] = []

    async def refresh() -> None:
        log.append(f"listed before decider {len(decisions_seen and decisions_seen[0].passes)}")

    async def scenario(
        loop: SchedulingLoop, decisions: Decisions, apis: FakeApis, clock: Clock
    ) -> None:
        decisions_seen.append(decisions)
        clock.now += 10 * LEASE  # stopped; another instance led and died meanwhile
        lease_held_by(apis, "standby", datetime.now(UTC) - timedelta(seconds=10 * LEASE))
        loop.cache.changed.set()
        assert await until(lambda: len(decisions.passes) > 1)
        assert decisions.passes[1][0] == 2, decisions.passes

    run_loop(scenario, refresh)
    assert log == ["listed before decider 0", "listed before decider 1"], log


def test_a_stopped_watch_stream_applies_nothing_it_had_buffered() -> None:
    """The events a replaced stream had read but not applied are older than the listing that
    replaced it: applying them would take the cache back in time."""
    applied: list[Any] = []

    class Recorder:
        def apply(self, *event: Any) -> None:
            applied.append(event)

    stream = KindStream(None, Recorder(), "pods")  # type: ignore[arg-type]
    stream._pending = [("MODIFIED", {"metadata": {"name": "old"}})]
    stream.stopped = True
    stream._apply()
    assert applied == []
    stream.stopped = False
    stream._pending = [("MODIFIED", {"metadata": {"name": "new"}})]
    stream._apply()
    assert [body["metadata"]["name"] for _, _, body in applied] == ["new"]


def test_writes_still_queued_when_the_lease_lapses_are_not_sent() -> None:
    fake = FakeClient(gone=set())
    held = [False]
    actuator = Actuator(fake, Metrics(), fence=lambda: held[0])  # type: ignore[arg-type]
    plan = Plan()
    plan.status(StatusWrite(CARGOS, "t", "a", {"phase": "Placed"}, "a", "t/a", claims=True))
    plan.pods.append(("t/a", pod("a-0")))
    plan.pod_deletes.append(("t", "b-0", None))
    applied = asyncio.run(actuator.apply(plan))
    actuator.close()
    assert fake.calls == [], "a paused operator that lost its lease sends nothing"
    assert (CARGOS, "t", "a") in applied.failed_status
    assert applied.unsent_pods == ("t/a-0",)


def test_the_elector_counts_terms_and_knows_when_its_lease_may_have_lapsed() -> None:
    apis = FakeApis({"crane-system"})
    clock = Clock()
    elector = LeaseElector(apis, "crane-system", "crane-operator", "me", 15.0, clock=clock)  # type: ignore[arg-type]
    assert elector.try_acquire() and elector.holds()
    term = elector.term
    clock.now += 5
    assert elector.try_acquire() and elector.term == term, "renewing keeps the term"
    clock.now += 14
    assert not elector.holds(), "no renewal for most of the lease: it may be another's"
    lease_held_by(apis, "standby", datetime.now(UTC) - timedelta(seconds=60))
    assert elector.try_acquire() and elector.holds()
    assert elector.term == term + 1, "taken back from another holder: a new term"
    assert isinstance(apis.leases[("crane-system", "crane-operator")], client.V1Lease)


def test_a_loop_stopped_as_a_change_arrives_stops() -> None:
    """Stopping the operator (its loop task cancelled) in the moment a change (or a lease event)
    wakes the loop: asyncio.wait_for of Python 3.11 returned the wake-up and dropped the
    cancellation, so the loop (or its lease renewal) ran on and the operator never stopped."""
    apis = FakeApis({"crane-system"})
    elector = LeaseElector(apis, "crane-system", "crane-operator", "me", LEASE, clock=Clock())  # type: ignore[arg-type]
    decisions = Decisions()
    cache = Cache()
    loop = SchedulingLoop(cache, decisions.new_decider, decisions, elector, Metrics())  # type: ignore[arg-type]
    loop._observe = lambda decider: None  # type: ignore[method-assign]

    async def main() -> None:
        task = asyncio.create_task(loop.run())
        cache.changed.set()
        assert await until(lambda: len(decisions.passes) == 1), "the leader decides a pass"
        await asyncio.sleep(0.05)  # the loop waits for the next change, the renewal for its time
        cache.changed.set()
        loop._renew_now.set()
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=5)
        assert done == {task}, "the loop ran on after it was stopped"
        assert task.cancelled()

    asyncio.run(main())
