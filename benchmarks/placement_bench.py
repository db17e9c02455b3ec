"""Placement benchmark: Crane's engine against first-fit and spread on the same gang stream.

Run from the repository root: ``python benchmarks/placement_bench.py [--quick]``.

For each cluster size it streams jobs until 130% of the GPUs have arrived (no departures) and
prints per policy: p50/p99 decision latency, the GPU allocation ratio at the end, and the share
of multi-node gangs placed within one rack among those that one rack could hold when they came.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.baselines import BucketPlacer, FirstFit, Spread
from benchmarks.workload import Job, cluster, jobs
from crane.model.gpu import gpu_type_matches
from crane.model.inventory import NodeInventory
from crane.model.topology import TopologyMode, TopologySpec
from crane.placement import CargoRequest, Engine, MiniClusterRequest, Outcome

RACK = "crane.io/rack"
LOAD = 1.3


class RackBook:
    """Free GPUs per node grouped by rack, to ask whether one rack could hold a gang."""

    def __init__(self, nodes: list[NodeInventory]) -> None:
        self.rack_of = {n.name: n.labels[RACK] for n in nodes}
        self.product = {n.labels[RACK]: n.gpu_product for n in nodes}
        self.free: dict[str, dict[str, int]] = defaultdict(dict)
        for n in nodes:
            self.free[n.labels[RACK]][n.name] = n.gpu_count

    def could_hold(self, job: Job) -> bool:
        return any(
            gpu_type_matches(job.gpu_type, self.product[rack])
            and sum(f // job.gpus_per_replica for f in frees.values()) >= job.replicas
            for rack, frees in self.free.items()
        )

    def take(self, node: str, gpus: int) -> None:
        self.free[self.rack_of[node]][node] -= gpus


Placer = Callable[[Job], list[str] | None]


def engine_placer(nodes: list[NodeInventory]) -> Placer:
    engine = Engine()
    for node in nodes:
        engine.upsert_node(node)
    for gpu_type in ("H100", "A100", "L40S"):
        engine.submit_minicluster(MiniClusterRequest(
            key=f"bench/{gpu_type}", gpu_type=gpu_type, min_gpus=0, max_gpus=10**9))
    engine.admit()
    rack = TopologySpec(level="rack", mode=TopologyMode.PREFERRED)

    def place(job: Job) -> list[str] | None:
        d = engine.place_cargo(CargoRequest(
            key=job.key, minicluster=f"bench/{job.gpu_type}", replicas=job.replicas,
            gpus_per_replica=job.gpus_per_replica, topology=rack))
        return [p.node for p in d.placements] if d.outcome is Outcome.PLACED else None

    return place


def baseline_placer(cls: type[BucketPlacer], nodes: list[NodeInventory]) -> Placer:
    placer = cls(nodes)

    def place(job: Job) -> list[str] | None:
        chosen = placer.place(job.gpu_type, job.replicas, job.gpus_per_replica)
        return None if chosen is None else [nodes[i].name for i in chosen]

    return place


def run(name: str, make: Callable[[list[NodeInventory]], Placer], nodes: list[NodeInventory],
        stream: list[Job]) -> dict[str, float | str]:
    place = make(nodes)
    book = RackBook(nodes)
    total = sum(n.gpu_count for n in nodes)
    latencies: list[float] = []
    allocated = 0
    rack_eligible = rack_kept = 0
    for job in stream:
        eligible = job.replicas > 1 and book.could_hold(job)
        start = time.perf_counter()
        placed = place(job)
        latencies.append(time.perf_counter() - start)
        if placed is None:
            continue
        allocated += job.gpus
        for node in placed:
            book.take(node, job.gpus_per_replica)
        if eligible:
            rack_eligible += 1
            rack_kept += len({book.rack_of[n] for n in placed}) == 1
    latencies.sort()
    return {
        "policy": name,
        "p50_ms": 1000 * statistics.median(latencies),
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))],
        "max_ms": 1000 * latencies[-1],
        "alloc": allocated / total,
        "rack": rack_kept / rack_eligible if rack_eligible else 1.0,
        "rack_n": f"{rack_kept}/{rack_eligible}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 nodes only")
    args = parser.parse_args()
    sizes = (1000,) if args.quick else (1000, 10000)
    policies: list[tuple[str, Callable[[list[NodeInventory]], Placer]]] = [
        ("crane", engine_placer),
        ("first-fit", lambda n: baseline_placer(FirstFit, n)),
        ("spread", lambda n: baseline_placer(Spread, n)),
    ]
    for size in sizes:
        nodes = cluster(size)
        total = sum(n.gpu_count for n in nodes)
        stream = jobs(nodes, LOAD)
        multi = sum(1 for j in stream if j.replicas > 1)
        print(f"\n{len(nodes)} nodes, {total} GPUs; {len(stream)} jobs ({multi} multi-node), "
              f"{sum(j.gpus for j in stream)} GPUs = {LOAD:.0%} of capacity, no departures")
        print(f"{'policy':<10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'alloc':>7} "
              f"{'in one rack (when one could hold it)':>38}")
        for name, make in policies:
            r = run(name, make, nodes, stream)
            print(f"{r['policy']:<10} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} {r['max_ms']:>8.2f} "
                  f"{r['alloc']:>7.2%} {r['rack']:>30.1%} ({r['rack_n']})")


if __name__ == "__main__":
    main()
