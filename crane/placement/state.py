"""The engine's mutable records: nodes, MiniClusters and cargos."""

from __future__ import annotations

from dataclasses import dataclass, field

from crane.model.inventory import NodeInventory
from crane.model.specs import ReplicaPlacement
from crane.placement.types import CargoRequest, MiniClusterRequest

ROOT = "*"
"""The path of the whole-cluster domain; every other domain path starts with ``*/``."""


@dataclass
class NodeState:
    """A node and, per GPU id, the MiniCluster reserving it and the cargo using it."""

    inv: NodeInventory
    path: tuple[str, ...]
    resv: list[str | None]
    cargo: list[str | None]
    free: int
    nominated: dict[int, str] = field(default_factory=dict)
    """GPU id -> the waiting MiniCluster it is held for (see ``nomination.py``)."""

    @property
    def name(self) -> str:
        """The node's name."""
        return self.inv.name

    @property
    def product(self) -> str:
        """The node's GPU product (e.g. ``NVIDIA-H100-80GB-HBM3``)."""
        return self.inv.gpu_product

    @property
    def open(self) -> bool:
        """Whether the node takes new placements."""
        return self.inv.ready and self.inv.schedulable

    @property
    def avail(self) -> int:
        """Free GPUs the index counts: unreserved, unused, not busy, on an open node."""
        return self.free if self.open else 0

    def is_free(self, gpu: int) -> bool:
        """Whether GPU ``gpu`` is unreserved, unused, not busy and not nominated."""
        return (
            self.resv[gpu] is None
            and self.cargo[gpu] is None
            and gpu not in self.inv.busy_gpu_ids
            and gpu not in self.nominated
        )

    def free_ids(self) -> list[int]:
        """The ids of the node's free GPUs (see :meth:`is_free`), ascending."""
        return [g for g in range(len(self.resv)) if self.is_free(g)]

    def idle_ids(self, minicluster: str) -> list[int]:
        """GPUs reserved for ``minicluster`` that no cargo uses and nothing else holds."""
        busy = self.inv.busy_gpu_ids
        return [
            g
            for g in range(len(self.resv))
            if self.resv[g] == minicluster and self.cargo[g] is None and g not in busy
        ]

    def island_fit(self, size: int) -> tuple[int, int]:
        """How well ``size`` free GPUs sit in this node's islands, lower is better:
        (0, GPUs left in the tightest island that holds them) when one island does, else
        (1, islands the replica would span). Keeps whole islands whole."""
        counts = sorted(sum(1 for g in island if self.is_free(g)) for island in self.inv.islands)
        fitting = [c for c in counts if c >= size]
        if fitting:
            return (0, fitting[0] - size)
        spanned, left = 0, size
        for c in reversed(counts):
            if left <= 0:
                break
            left -= c
            spanned += 1
        return (1, spanned)

    def count_free(self) -> int:
        """How many of the node's GPUs are free (see :meth:`is_free`)."""
        return sum(1 for g in range(len(self.resv)) if self.is_free(g))


@dataclass
class McState:
    """A MiniCluster: its request, whether it is admitted, its reservation and its cargos."""

    req: MiniClusterRequest
    admitted: bool = False
    reserved: dict[str, set[int]] = field(default_factory=dict)
    cargos: set[str] = field(default_factory=set)
    used: int = 0
    borrowed: int = 0

    @property
    def key(self) -> str:
        """The MiniCluster's key, as in its request."""
        return self.req.key

    @property
    def reserved_count(self) -> int:
        """GPUs reserved for the MiniCluster, over all nodes."""
        return sum(len(ids) for ids in self.reserved.values())

    @property
    def waiting(self) -> bool:
        """Not admitted, or admitted with fewer GPUs reserved than ``min`` (resizing)."""
        return not self.admitted or self.reserved_count < self.req.min_gpus


@dataclass
class CargoState:
    """A placed cargo: its request, where each replica runs and its borrowed GPUs."""

    req: CargoRequest
    placements: tuple[ReplicaPlacement, ...]
    borrowed: int
    """GPUs this cargo holds outside its MiniCluster's reservation (preemptible)."""

    @property
    def gpus(self) -> int:
        """GPUs the cargo uses, over all its replicas."""
        return sum(len(p.gpu_ids) for p in self.placements)
