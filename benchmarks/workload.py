"""Realistic clusters and gang workloads for the placement benchmarks."""

from __future__ import annotations

import random
from dataclasses import dataclass

from crane.model.fleet import FleetSpec, NodeGroup, expand
from crane.model.inventory import NodeInventory

GPU_MIX = (
    ("h100", "NVIDIA-H100-80GB-HBM3", "H100", 0.5),
    ("a100", "NVIDIA-A100-SXM4-80GB", "A100", 0.3),
    ("l40s", "NVIDIA-L40S", "L40S", 0.2),
)
"""(group, GFD product, gpuType, share of nodes)."""

GANG_SIZES = ((1, 0.50), (2, 0.10), (4, 0.10), (8, 0.18), (16, 0.06), (32, 0.04), (64, 0.015),
              (128, 0.005))
"""Total GPUs per job and its share: most jobs take 1 GPU, many 8, a few 32-128 across nodes,
as in the Alibaba PAI 2020 and 2023 GPU traces."""

NODES_PER_RACK = 8


@dataclass(frozen=True)
class Job:
    key: str
    gpu_type: str
    replicas: int
    gpus_per_replica: int

    @property
    def gpus(self) -> int:
        return self.replicas * self.gpus_per_replica


def fleet(nodes: int) -> FleetSpec:
    """About ``nodes`` nodes of 8 GPUs: 2 zones, blocks of 8 racks, racks of 8 nodes."""
    groups = []
    for name, product, _, share in GPU_MIX:
        racks = nodes * share / NODES_PER_RACK
        groups.append(NodeGroup(
            name=name, product=product, gpus_per_node=8, islands="0-3,4-7", zones=2,
            blocks_per_zone=max(1, round(racks / 16)), racks_per_block=8,
            nodes_per_rack=NODES_PER_RACK, nodes_per_clique=4 if name == "h100" else 0,
        ))
    return FleetSpec(groups=groups)


def cluster(nodes: int) -> list[NodeInventory]:
    return expand(fleet(nodes))


def jobs(nodes: list[NodeInventory], load: float, seed: int = 7) -> list[Job]:
    """Jobs until ``load`` x the cluster's GPUs have arrived, each GPU type asked for in
    proportion to its capacity (so every type is oversubscribed alike)."""
    rng = random.Random(seed)
    sizes = [s for s, _ in GANG_SIZES]
    weights = [w for _, w in GANG_SIZES]
    types = [t for _, _, t, _ in GPU_MIX]
    product_type = {p: t for _, p, t, _ in GPU_MIX}
    capacity = dict.fromkeys(types, 0)
    for node in nodes:
        capacity[product_type[node.gpu_product]] += node.gpu_count
    type_weights = [capacity[t] for t in types]
    total_gpus = sum(type_weights)
    out: list[Job] = []
    arrived = 0
    while arrived < load * total_gpus:
        size = rng.choices(sizes, weights)[0]
        gpu_type = rng.choices(types, type_weights)[0]
        replicas, per = (size // 8, 8) if size > 8 else (1, size)
        out.append(Job(f"bench/j{len(out)}", gpu_type, replicas, per))
        arrived += size
    return out
