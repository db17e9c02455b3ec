"""Realistic clusters and job streams for the placement benchmarks."""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

from crane.model.fleet import FleetSpec, NodeGroup, expand
from crane.model.inventory import NodeInventory

GPU_MIX = (
    ("h100", "NVIDIA-H100-80GB-HBM3", "H100", 0.5),
    ("a100", "NVIDIA-A100-SXM4-80GB", "A100", 0.3),
    ("l40s", "NVIDIA-L40S", "L40S", 0.2),
)
"""(group, GFD product, gpuType, share of nodes)."""

JOB_MIX = (
    (1, 0.50, None),
    (2, 0.10, None),
    (4, 0.10, None),
    (8, 0.18, None),
    (16, 0.06, "rack"),
    (32, 0.04, "rack"),
    (64, 0.015, "rack"),
    (128, 0.005, "block"),
)
"""(GPUs per job, share of jobs, Required level). Half the jobs take 1 GPU, a fifth a 2 or 4
GPU NVLink island, a sixth a whole node; multi-node gangs (8 GPUs per replica) must stay
within one rack or, at 128 GPUs, one block, as distributed training asks. The shape follows
the Alibaba PAI 2020 and 2023 GPU traces."""

NODES_PER_RACK = 8
DURATION_SIGMA = 1.5
"""Durations are log-normal with median 1 and this sigma (mean 3.1, p99 33): heavy-tailed,
as the Philly and PAI traces report."""
OFFERED = 2.0
"""Offered load of the replay with departures, x capacity (Little: rate x mean GPUs x mean
duration); the demand present climbs towards it through the checkpoints."""


@dataclass(frozen=True)
class Job:
    key: str
    gpu_type: str
    replicas: int
    gpus_per_replica: int
    level: str | None
    """The Required topology level of a multi-node gang, else None (Preferred node)."""
    arrival: float = 0.0
    departure: float = math.inf

    @property
    def gpus(self) -> int:
        return self.replicas * self.gpus_per_replica


@dataclass(frozen=True)
class Stream:
    """Jobs in arrival order and, for each checkpoint (a share of capacity), the index of the
    job whose arrival makes the demand present first cross it."""

    jobs: list[Job]
    checkpoints: dict[float, int]
    departures: bool


def fleet(nodes: int) -> FleetSpec:
    """About ``nodes`` nodes of 8 GPUs: 2 zones, blocks of 8 racks, racks of 8 nodes."""
    groups = []
    for name, product, _, share in GPU_MIX:
        racks = nodes * share / NODES_PER_RACK
        groups.append(
            NodeGroup(
                name=name,
                product=product,
                gpus_per_node=8,
                islands="0-3,4-7",
                zones=2,
                blocks_per_zone=max(1, round(racks / 16)),
                racks_per_block=8,
                nodes_per_rack=NODES_PER_RACK,
                nodes_per_clique=4 if name == "h100" else 0,
            )
        )
    return FleetSpec(groups=groups)


def cluster(nodes: int) -> list[NodeInventory]:
    return expand(fleet(nodes))


def mean_gpus() -> float:
    return sum(size * share for size, share, _ in JOB_MIX)


def replica_mix() -> dict[int, float]:
    """Share of single-node tasks by GPUs (a gang counts once per replica): FGD's workload."""
    tasks: dict[int, float] = {}
    for size, share, _ in JOB_MIX:
        per, replicas = (8, size // 8) if size > 8 else (size, 1)
        tasks[per] = tasks.get(per, 0.0) + share * replicas
    total = sum(tasks.values())
    return {k: v / total for k, v in sorted(tasks.items())}


def _capacity_by_type(nodes: list[NodeInventory]) -> dict[str, int]:
    product_type = {p: t for _, p, t, _ in GPU_MIX}
    capacity = {t: 0 for _, _, t, _ in GPU_MIX}
    for node in nodes:
        capacity[product_type[node.gpu_product]] += node.gpu_count
    return capacity


def stream(
    nodes: list[NodeInventory], checkpoints: Sequence[float], departures: bool, seed: int = 7
) -> Stream:
    """Jobs until the GPU demand present passes the last checkpoint (x the cluster's GPUs).

    Each GPU type is asked for in proportion to its capacity. Without departures every job
    stays, so the demand present is all that arrived (FGD's replay). With departures, arrivals
    are Poisson at a rate for ``OFFERED`` load (Little's law) and each job lasts a log-normal
    time; the demand present counts jobs that arrived and have not ended, placed or not, so
    the checkpoints fall at the same job for every policy.
    """
    rng = random.Random(seed)
    sizes = [s for s, _, _ in JOB_MIX]
    weights = [w for _, w, _ in JOB_MIX]
    level_of = {s: lv for s, _, lv in JOB_MIX}
    capacity = _capacity_by_type(nodes)
    types = list(capacity)
    total = sum(capacity.values())
    mean_duration = math.exp(DURATION_SIGMA**2 / 2)
    rate = OFFERED * total / (mean_gpus() * mean_duration)
    out: list[Job] = []
    marks: dict[float, int] = {}
    ends: list[tuple[float, int]] = []
    present = 0
    now = 0.0
    while len(marks) < len(checkpoints):
        size = rng.choices(sizes, weights)[0]
        gpu_type = rng.choices(types, [capacity[t] for t in types])[0]
        replicas, per = (size // 8, 8) if size > 8 else (1, size)
        end = math.inf
        if departures:
            now += rng.expovariate(rate)
            end = now + rng.lognormvariate(0.0, DURATION_SIGMA)
            while ends and ends[0][0] <= now:
                present -= heapq.heappop(ends)[1]
            heapq.heappush(ends, (end, size))
        out.append(Job(f"bench/j{len(out)}", gpu_type, replicas, per, level_of[size], now, end))
        present += size
        for mark in checkpoints:
            if mark not in marks and present >= mark * total:
                marks[mark] = len(out) - 1
    return Stream(out, marks, departures)
