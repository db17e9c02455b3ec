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

from benchmarks.baselines import Fgd, FirstFit, Placer, Spread
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
        engine.submit_minicluster(MiniClusterRequest(
            key=f"bench/{gpu_type}", gpu_type=gpu_type, min_gpus=0, max_gpus=10**9))
    engine.admit()

    def place(job: Job) -> str | None:
        topology = TopologySpec()
        if job.level is not None:
            topology = TopologySpec(level=job.level, mode=TopologyMode.REQUIRED)
        elif job.replicas > 1:
            topology = TopologySpec(level="rack", mode=TopologyMode.PREFERRED)
        d = engine.place_cargo(CargoRequest(
            key=job.key, minicluster=f"bench/{job.gpu_type}", replicas=job.replicas,
            gpus_per_replica=job.gpus_per_replica, topology=topology))
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
    ms = [1000 * statistics.median(latencies),
          1000 * latencies[int(0.99 * (len(latencies) - 1))], 1000 * latencies[-1],
          1000 * max(own)]
    return [*ratios, f"{window / (last - first + 1):.1%}", f"{failed / arrived:.1%}",
            f"{gang_failed / gang_arrived:.1%}", *(f"{v:.3f}" for v in ms)]


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
        return any(count >= job.replicas for (product, _), count in self.whole.items()
                   if gpu_type_matches(job.gpu_type, product))


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


HEADER = ["policy", *(f"@{c:.0%}" for c in CHECKPOINTS), "mean", "failed", "gang fail", "p50 ms",
          "p99 ms", "max ms", "max no GC"]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 nodes only")
    args = parser.parse_args()
    print("$ python benchmarks/placement_bench.py" + (" --quick" if args.quick else ""))
    print("@N%: allocation ratio (allocated / total GPUs) when the GPU demand present first "
          "crosses N% of capacity;\nmean: its average over the arrivals from 100% to 130%; "
          "failed: share of the GPU demand dropped by 130%\n(gang fail: of multi-node gangs "
          "alone); decision latency in CPU ms; max no GC: without garbage-collector pauses")
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
    print("\nmulti-node gangs within one rack, of those one rack could hold when they came "
          "(churn; gangs prefer a rack)")
    print(f"{'policy':>9} " + " ".join(f"{h:>22}" for h in headings))
    for policy, cells in kept.items():
        print(f"{policy:>9} " + " ".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    main()
