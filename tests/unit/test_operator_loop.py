"""The scheduling loop decides the next pass while the previous pass's writes are in flight,
and writes it only after those are done and learnt."""

from __future__ import annotations

import asyncio
from typing import Any

from crane.lifecycle.plan import Applied, Plan
from crane.operator.loop import SchedulingLoop
from crane.operator.metrics import Metrics


class Recorder:
    def __init__(self) -> None:
        self.log: list[str] = []
        self.passes = 0

    def decide(self, cache: Any) -> Plan:
        self.passes += 1
        self.log.append(f"decide{self.passes}")
        plan = Plan()
        plan.cargo_deletes.append(("t", f"c{self.passes}"))
        return plan

    def learn(self, plan: Plan, applied: Applied) -> None:
        self.log.append(f"learn-{plan.cargo_deletes[0][1]}")

    async def apply(self, plan: Plan) -> Applied:
        name = plan.cargo_deletes[0][1]
        self.log.append(f"write-{name}")
        await asyncio.sleep(0.05)
        self.log.append(f"written-{name}")
        return Applied()


def test_pass_is_decided_during_the_previous_writes_and_written_after_them() -> None:
    rec = Recorder()
    loop = SchedulingLoop(None, lambda: rec, rec, None, Metrics())  # type: ignore[arg-type]
    loop._observe = lambda decider: None  # type: ignore[method-assign]

    async def run() -> None:
        await loop.one_pass(rec)  # type: ignore[arg-type]
        await asyncio.sleep(0)
        await loop.one_pass(rec)  # type: ignore[arg-type]
        await loop.flush()

    asyncio.run(run())
    assert rec.log == [
        "decide1",
        "write-c1",
        "decide2",
        "written-c1",
        "learn-c1",
        "write-c2",
        "written-c2",
        "learn-c2",
    ]
