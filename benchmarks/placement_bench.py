"""Placement benchmark: Crane's engine against first-fit, spread and FGD on the same replays.

Run from the repository root: ``python benchmarks/placement_bench.py [--quick]``.

Two replays per cluster size, as FGD's paper measures: jobs arrive one by one; a job that
cannot be placed when it arrives fails and is dropped. ``fill``: no departures. ``churn``:
Poisson arrivals with heavy-tailed durations, departures freed as time passes. For each
policy it prints the GPU allocation ratio when the GPU demand present first crosses 100%,
110%, 120% and 130% of capacity and its mean in between, the share of the GPU demand that
failed (all jobs, and multi-node gangs alone) by 130%, and the decision latency (p50, p99,
max, and max without garbage-collector pauses).

A third replay measures topology: the churn stream again, but multi-node gangs only *prefer*
a rack (nothing Required). It prints the share of multi-node gangs placed within one rack
among those that one rack could hold when they came (judged on each policy's own state). The
baselines, like kube-scheduler's default scoring, do not look at racks.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import itertools
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import trace
from benchmarks.baselines import BestFit, Fgd, FirstFit, Placer, RackBestFit, Spread
from benchmarks.workload import GPU_MIX, Job, Stream, cluster, replica_mix, stream
from crane.model.gpu import gpu_type_matches
from crane.model.inventory import NodeInventory
from crane.model.topology import DEFAULT_LEVEL_KEYS, TopologyMode, TopologySpec
from crane.placement import CargoRequest, Engine, MiniClusterRequest, Outcome

CHECKPOINTS = (1.0, 1.1, 1.2, 1.3)
RACK = DEFAULT_LEVEL_KEYS["rack"]


@dataclass(frozen=True)
class Policy:
    place: Callable[[Job], Any]
    """A handle for the placed job, or None when it fails."""
    release: Callable[[Any], None]
    nodes: Callable[[Any], list[tuple[str, int]]]
    """(node, GPUs) of each replica of a placed job."""


def engine_policy(nodes: list[NodeInventory]) -> Policy:
    """One MiniCluster per GPU type with min 0: every cargo takes free GPUs."""
    engine = Engine()
    for node in nodes:
        engine.upsert_node(node)
    for _, _, gpu_type, _ in GPU_MIX:
        engine.submit_minicluster(
            MiniClusterRequest(
                key=f"bench/{gpu_type}", gpu_type=gpu_type, min_gpus=0, max_gpus=10**9
            )
        )
    engine.admit()

    def place(job: Job) -> str | None:
        topology = TopologySpec()
        if job.level is not None:
            topology = TopologySpec(level=job.level, mode=TopologyMode.REQUIRED)
        elif job.replicas > 1:
            topology = TopologySpec(level="rack", mode=TopologyMode.PREFERRED)
        d = engine.place_cargo(
            CargoRequest(
                key=job.key,
                minicluster=f"bench/{job.gpu_type}",
                replicas=job.replicas,
                gpus_per_replica=job.gpus_per_replica,
                topology=topology,
            )
        )
        return job.key if d.outcome is Outcome.PLACED else None

    def nodes_of(key: str) -> list[tuple[str, int]]:
        return [(p.node, len(p.gpu_ids)) for p in engine.cargo_placements(key)]

    return Policy(place, engine.release_cargo, nodes_of)


def baseline_policy(placer: Placer) -> Policy:
    def place(job: Job) -> Any:
        return placer.place(job.gpu_type, job.replicas, job.gpus_per_replica, job.level)

    def nodes_of(handle: Any) -> list[tuple[str, int]]:
        return [(placer.nodes[i].name, gpus) for i, gpus in handle]

    return Policy(place, placer.release, nodes_of)


def engine_policy_any(nodes: list[NodeInventory]) -> Policy:
    """Crane with one MiniCluster (min 0) per distinct ``gpuType`` asked for, made on demand:
    a job of the trace accepts an ordered list of every model."""
    engine = Engine()
    for node in nodes:
        engine.upsert_node(node)
    made: set[str] = set()

    def place(job: Job) -> str | None:
        if job.gpu_type not in made:
            made.add(job.gpu_type)
            engine.submit_minicluster(
                MiniClusterRequest(
                    key=f"bench/{len(made)}", gpu_type=job.gpu_type, min_gpus=0, max_gpus=10**9
                )
            )
            engine.admit()
            keys[job.gpu_type] = f"bench/{len(made)}"
        topology = TopologySpec()
        if job.level is not None:
            topology = TopologySpec(level=job.level, mode=TopologyMode.REQUIRED)
        d = engine.place_cargo(
            CargoRequest(
                key=job.key,
                minicluster=keys[job.gpu_type],
                replicas=job.replicas,
                gpus_per_replica=job.gpus_per_replica,
                topology=topology,
            )
        )
        return job.key if d.outcome is Outcome.PLACED else None

    keys: dict[str, str] = {}

    def nodes_of(key: str) -> list[tuple[str, int]]:
        return [(p.node, len(p.gpu_ids)) for p in engine.cargo_placements(key)]

    return Policy(place, engine.release_cargo, nodes_of)


TRACE_POLICIES: list[tuple[str, Callable[[list[NodeInventory]], Policy]]] = [
    ("crane", engine_policy_any),
    ("first-fit", lambda n: baseline_policy(FirstFit(n))),
    ("best-fit", lambda n: baseline_policy(BestFit(n))),
    ("rack-bf", lambda n: baseline_policy(RackBestFit(n))),
    ("fgd", lambda n: baseline_policy(Fgd(n, trace_mix()))),
]


def trace_mix() -> dict[int, float]:
    """FGD's task mix for the trace: share of tasks by GPUs (gang replicas count as 8)."""
    counts = Counter(t.gpus for t in trace.tasks())
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()}


def trace_replay(policy: Policy, capacity: int, s: Stream, patience: float) -> list[str]:
    """One policy over a trace stream with departures and waiting gangs; the row's cells:
    allocation at the crossings and its mean, the trace tenant's demand dropped, gangs'
    mean wait (in minutes) and share dropped, and each tenant's share of its demand placed."""
    place, release = policy.place, policy.release
    marks = {i: mark for mark, i in s.checkpoints.items()}
    first, last = s.checkpoints[CHECKPOINTS[0]], s.checkpoints[CHECKPOINTS[-1]]
    running: list[tuple[float, int, int, Any]] = []
    order = itertools.count()
    waiting: list[Job] = []
    allocated = 0
    window = 0.0
    ratios: list[str] = []
    asked: Counter[str] = Counter()
    got: Counter[str] = Counter()
    waits: list[float] = []
    gangs = dropped_gangs = 0

    def start(job: Job, now: float) -> bool:
        nonlocal allocated
        handle = place(job)
        if handle is None:
            return False
        allocated += job.gpus
        got[job.key.split("/")[0]] += job.gpus
        end = now + (job.departure - job.arrival)
        heapq.heappush(running, (end, next(order), job.gpus, handle))
        return True

    def retry(now: float) -> None:
        nonlocal dropped_gangs
        kept: list[Job] = []
        for job in waiting:
            if now - job.arrival > patience:
                dropped_gangs += 1
            elif start(job, now):
                waits.append(now - job.arrival)
            else:
                kept.append(job)
        waiting[:] = kept

    for n, job in enumerate(s.jobs):
        while running and running[0][0] <= job.arrival:
            now, _, gpus, handle = heapq.heappop(running)
            release(handle)
            allocated -= gpus
            if waiting:
                retry(now)
        tenant = job.key.split("/")[0]
        asked[tenant] += job.gpus
        if job.level is not None:
            gangs += 1
            if start(job, job.arrival):
                waits.append(0.0)
            else:
                waiting.append(job)
        else:
            start(job, job.arrival)
        if n in marks:
            ratios.append(f"{allocated / capacity:.1%}")
        if first <= n <= last:
            window += allocated / capacity
    dropped_gangs += len(waiting)
    trace_failed = 1 - got["trace"] / asked["trace"]
    cells = [*ratios, f"{window / (last - first + 1):.1%}", f"{trace_failed:.1%}"]
    if gangs:
        wait = statistics.fmean(waits) / 60 if waits else 0.0
        cells += [
            f"{wait:.1f}",
            f"{dropped_gangs / gangs:.1%}",
            f"{got['trace'] / asked['trace']:.0%}/{got['train'] / asked['train']:.0%}",
        ]
    return cells


TRACE_HEADER = ["policy", *(f"@{c:.0%}" for c in CHECKPOINTS), "mean", "failed"]
TENANT_HEADER = [*TRACE_HEADER, "gang wait", "gang drop", "got tr/trn"]


def trace_tables() -> None:
    """The openb trace replays (tasks alone, then the two-tenant mix)."""
    if not trace.available():
        print(f"\n(openb trace not found at {trace.TRACE}: trace replays skipped)")
        return
    nodes = trace.nodes()
    capacity = sum(n.gpu_count for n in nodes)
    patience = trace.patience()
    for tenants in (False, True):
        s = trace.stream(nodes, CHECKPOINTS, tenants)
        name = (
            "two tenants: openb tasks + rack-Required gangs on G2"
            if tenants
            else "openb tasks with departures"
        )
        print(
            f"\nAlibaba openb trace, {len(nodes)} nodes, {capacity} GPUs; {name}: "
            f"{len(s.jobs)} jobs"
        )
        header = TENANT_HEADER if tenants else TRACE_HEADER
        print(" ".join(f"{h:>10}" for h in header))
        for policy, make in TRACE_POLICIES:
            row = trace_replay(make(nodes), capacity, s, patience)
            print(f"{policy:>10} " + " ".join(f"{c:>10}" for c in row))


POLICIES: list[tuple[str, Callable[[list[NodeInventory]], Policy]]] = [
    ("crane", engine_policy),
    ("first-fit", lambda n: baseline_policy(FirstFit(n))),
    ("spread", lambda n: baseline_policy(Spread(n))),
    ("fgd", lambda n: baseline_policy(Fgd(n, replica_mix()))),
]


class GcClock:
    """CPU seconds spent in Python's cyclic garbage collector."""

    def __init__(self) -> None:
        self.spent = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.spent += time.thread_time() - self._start


def replay(policy: Policy, capacity: int, s: Stream) -> list[str]:
    """One policy over one stream; the table row's cells.

    The state loaded, the collector's objects are frozen (``gc.freeze()``), as a long-running
    scheduler does; decisions are timed in CPU time (the machine may be shared), with and
    without the collector's pauses that fall inside them.
    """
    place, release = policy.place, policy.release
    gc.collect()
    gc.freeze()
    clock = GcClock()
    gc.callbacks.append(clock)
    own: list[float] = []
    marks = {i: mark for mark, i in s.checkpoints.items()}
    running: list[tuple[float, int, Any]] = []
    latencies: list[float] = []
    allocated = arrived = failed = gang_arrived = gang_failed = 0
    ratios: list[str] = []
    first, last = s.checkpoints[CHECKPOINTS[0]], s.checkpoints[CHECKPOINTS[-1]]
    window = 0.0
    for n, job in enumerate(s.jobs):
        while running and running[0][0] <= job.arrival:
            _, gpus, handle = heapq.heappop(running)
            release(handle)
            allocated -= gpus
        start, paused = time.thread_time(), clock.spent
        handle = place(job)
        latencies.append(time.thread_time() - start)
        own.append(latencies[-1] - (clock.spent - paused))
        arrived += job.gpus
        gang_arrived += job.gpus if job.level else 0
        if handle is None:
            failed += job.gpus
            gang_failed += job.gpus if job.level else 0
        else:
            allocated += job.gpus
            heapq.heappush(running, (job.departure, job.gpus, handle))
        if n in marks:
            ratios.append(f"{allocated / capacity:.1%}")
        if first <= n <= last:
            window += allocated / capacity
    gc.callbacks.remove(clock)
    gc.unfreeze()
    latencies.sort()
    ms = [
        1000 * statistics.median(latencies),
        1000 * latencies[int(0.99 * (len(latencies) - 1))],
        1000 * latencies[-1],
        1000 * max(own),
    ]
    return [
        *ratios,
        f"{window / (last - first + 1):.1%}",
        f"{failed / arrived:.1%}",
        f"{gang_failed / gang_arrived:.1%}",
        *(f"{v:.3f}" for v in ms),
    ]


class RackBook:
    """Free GPUs per node and whole free nodes per (product, rack), fed by one policy's
    placements: could one rack hold a gang of whole-node replicas?"""

    def __init__(self, nodes: list[NodeInventory]) -> None:
        self.capacity = {n.name: n.gpu_count for n in nodes}
        self.free = dict(self.capacity)
        self.rack_of = {n.name: (n.gpu_product, n.labels.get(RACK, "-")) for n in nodes}
        self.whole = Counter(self.rack_of[n.name] for n in nodes)

    def change(self, placed: list[tuple[str, int]], sign: int) -> None:
        for node, gpus in placed:
            was_whole = self.free[node] == self.capacity[node]
            self.free[node] += sign * gpus
            self.whole[self.rack_of[node]] += (self.free[node] == self.capacity[node]) - was_whole

    def could_hold(self, job: Job) -> bool:
        return any(
            count >= job.replicas
            for (product, _), count in self.whole.items()
            if gpu_type_matches(job.gpu_type, product)
        )


def locality(policy: Policy, nodes: list[NodeInventory], s: Stream) -> str:
    """Share of multi-node gangs placed within one rack, of those one rack could hold."""
    book = RackBook(nodes)
    running: list[tuple[float, int, Any]] = []
    order = itertools.count()
    eligible = kept = 0
    for job in s.jobs:
        while running and running[0][0] <= job.arrival:
            _, _, handle = heapq.heappop(running)
            book.change(policy.nodes(handle), +1)
            policy.release(handle)
        could = job.replicas > 1 and book.could_hold(job)
        handle = policy.place(job)
        if handle is None:
            continue
        placed = policy.nodes(handle)
        book.change(placed, -1)
        heapq.heappush(running, (job.departure, next(order), handle))
        if could:
            eligible += 1
            kept += len({book.rack_of[node] for node, _ in placed}) == 1
    return f"{kept / eligible:.1%} ({kept}/{eligible})" if eligible else "n/a"


HEADER = [
    "policy",
    *(f"@{c:.0%}" for c in CHECKPOINTS),
    "mean",
    "failed",
    "gang fail",
    "p50 ms",
    "p99 ms",
    "max ms",
    "max no GC",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 nodes only")
    parser.add_argument(
        "--trace-only", action="store_true", help="only the Alibaba openb trace replays"
    )
    args = parser.parse_args()
    if args.trace_only:
        print("$ python benchmarks/placement_bench.py --trace-only")
        trace_tables()
        return
    print("$ python benchmarks/placement_bench.py" + (" --quick" if args.quick else ""))
    print(
        "@N%: allocation ratio (allocated / total GPUs) when the GPU demand present first "
        "crosses N% of capacity;\nmean: its average over the arrivals from 100% to 130%; "
        "failed: share of the GPU demand dropped by 130%\n(gang fail: of multi-node gangs "
        "alone); decision latency in CPU ms; max no GC: without garbage-collector pauses"
    )
    sizes = (1000,) if args.quick else (1000, 10000)
    kept: dict[str, list[str]] = {policy: [] for policy, _ in POLICIES}
    headings: list[str] = []
    for size in sizes:
        nodes = cluster(size)
        capacity = sum(n.gpu_count for n in nodes)
        for departures in (False, True):
            s = stream(nodes, CHECKPOINTS, departures)
            name = "churn (log-normal durations)" if departures else "fill (no departures)"
            print(f"\n{len(nodes)} nodes, {capacity} GPUs; {name}: {len(s.jobs)} jobs")
            print(" ".join(f"{h:>9}" for h in HEADER))
            for policy, make in POLICIES:
                row = replay(make(nodes), capacity, s)
                print(f"{policy:>9} " + " ".join(f"{c:>9}" for c in row))
        preferring = replace(s, jobs=[replace(j, level=None) for j in s.jobs])
        headings.append(f"{len(nodes)} nodes")
        for policy, make in POLICIES:
            kept[policy].append(locality(make(nodes), nodes, preferring))
    print(
        "\nmulti-node gangs within one rack, of those one rack could hold when they came "
        "(churn; gangs prefer a rack)"
    )
    print(f"{'policy':>9} " + " ".join(f"{h:>22}" for h in headings))
    for policy, cells in kept.items():
        print(f"{policy:>9} " + " ".join(f"{c:>22}" for c in cells))
    trace_tables()


if __name__ == "__main__":
    main()
