"""Requests to the placement engine and the decisions it returns.

These types are the engine's contract with every backend (operator, API, Docker). Keys are
opaque strings chosen by the caller, by convention ``namespace/name`` (Kubernetes) or
``tenant/name`` (Docker).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from crane.model.specs import ReplicaPlacement
from crane.model.topology import TopologySpec


@dataclass(frozen=True)
class MiniClusterRequest:
    """What the engine needs of a MiniCluster. ``created`` orders equal priorities (older first)."""

    key: str
    gpu_type: str
    min_gpus: int
    max_gpus: int
    topology: TopologySpec = field(default_factory=TopologySpec)
    priority: int = 0
    created: float = 0.0
    template_gpus_per_replica: int | None = None
    """With a template, reservations are shaped as whole slots of this many GPUs per replica."""
    template_replicas: int | None = None
    namespace_quota: int | None = None
    """GPUs this MiniCluster's namespace may still reserve (ResourceQuota), if limited."""
    queue: str = ""
    """The admission queue (``""``: the cluster's); each queue has a queueing strategy."""


@dataclass(frozen=True)
class CargoRequest:
    """A gang: ``replicas`` containers of ``gpus_per_replica`` GPUs each, all or none."""

    key: str
    minicluster: str
    replicas: int
    gpus_per_replica: int
    topology: TopologySpec = field(default_factory=TopologySpec)
    created: float = 0.0
    expected_end: float | None = None
    """When the cargo is expected to end (same clock as ``created``), if known: from an
    expected duration or a deadline; used to estimate when waiting work starts."""


class Outcome(StrEnum):
    """What a decision came to: cargo Placed/Pending, MiniCluster Admitted/Queued, or Rejected."""

    PLACED = "Placed"
    ADMITTED = "Admitted"
    PENDING = "Pending"
    QUEUED = "Queued"
    REJECTED = "Rejected"
    """Can never fit the cluster as it is (e.g. larger than any domain of the required level):
    reported as Unschedulable, holds no queue position."""


@dataclass(frozen=True)
class DomainFit:
    """The best domain found at the requested level and what it has."""

    level: str
    domain: str
    free_gpus: int
    preemptible_gpus: int = 0


@dataclass(frozen=True)
class Explanation:
    """Why something waits, in numbers; ``sentence()`` renders it for a person.

    Example sentence: "needs 16 H100 within one rack; best rack z1/b2/r3 has 12 free;
    preempting 2 borrowed cargos would free 8".
    """

    needed_gpus: int
    gpu_type: str
    level: str
    required: bool
    best: DomainFit | None = None
    total_free_gpus: int = 0
    preemptible_cargos: tuple[str, ...] = ()
    preemptible_gpus: int = 0
    detail: str = ""
    """Anything the numbers do not say, e.g. "MiniCluster is at max (32 of 32 GPUs)"."""

    def sentence(self, named: Callable[[str], bool] | None = None, others: str = "") -> str:
        """The explanation for a person. Without ``named``, preemptible cargos are only
        counted; with it, those ``named(key)`` allows are listed and the rest counted as
        ``others`` (e.g. "of another tenant")."""
        scope = f"within one {self.level}" if self.required else f"(prefers one {self.level})"
        parts = [f"needs {self.needed_gpus} {self.gpu_type} {scope}"]
        if self.detail:
            parts.append(self.detail)
        if self.best is not None:
            best = self.best
            parts.append(f"best {best.level} {best.domain} has {best.free_gpus} free")
        elif self.total_free_gpus == 0 and "no node has" not in self.detail:
            parts.append(f"every {self.gpu_type} GPU is reserved or in use (0 free)")
        elif self.total_free_gpus:
            parts.append(
                f"no {self.level} has free {self.gpu_type} GPUs that fit "
                f"({self.total_free_gpus} free in the cluster)"
            )
        if self.preemptible_cargos:
            n = len(self.preemptible_cargos)
            cargos = "cargo" if n == 1 else "cargos"
            which = ""
            if named is not None:
                shown = [k for k in self.preemptible_cargos if named(k)]
                hidden = n - len(shown)
                if not shown:
                    which = f" {others}".rstrip()
                else:
                    which = f" ({', '.join(shown)}" + (f"; {hidden} {others})" if hidden else ")")
            parts.append(
                f"preempting {n} borrowed {cargos}{which} would free {self.preemptible_gpus}"
            )
        return "; ".join(parts)


@dataclass(frozen=True)
class AdmissionDecision:
    """The result of trying to admit (reserve ``min`` for) a MiniCluster."""

    key: str
    outcome: Outcome
    reservation: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """node -> reserved GPU ids, when admitted."""
    queue_position: int | None = None
    explanation: Explanation | None = None
    preemption: PreemptionPlan | None = None
    """Borrowed cargos whose preemption would let this MiniCluster be admitted."""
    waits_behind: tuple[str, ...] = ()
    """MiniClusters ahead in the queue that this one waits for (their claim or StrictFIFO)."""
    estimated_start: float | None = None
    """When it is expected to be admitted, from running cargos' expected ends, if known."""


@dataclass(frozen=True)
class CargoDecision:
    """The result of trying to place a cargo: where its replicas go, or why it waits."""

    key: str
    outcome: Outcome
    placements: tuple[ReplicaPlacement, ...] = ()
    domain: str | None = None
    explanation: Explanation | None = None


@dataclass(frozen=True)
class PreemptionPlan:
    """Cargos to preempt (whole, newest first) and the GPUs that frees.

    Applying it is the caller's job."""

    beneficiary: str
    victims: tuple[str, ...] = ()
    freed_gpus: int = 0
    sufficient: bool = False


@dataclass(frozen=True)
class MiniClusterUsage:
    """A MiniCluster's GPUs reserved, in use and borrowed, and how many cargos it has."""

    reserved_gpus: int
    in_use_gpus: int
    borrowed_gpus: int
    cargos: int


@dataclass(frozen=True)
class GpuCounts:
    """A node's GPUs by state (see :meth:`crane.placement.engine.Engine.gpu_counts`)."""

    total: int
    reserved: int
    in_use: int
    borrowed: int


@dataclass(frozen=True)
class GpuSlot:
    """One GPU of the GPU map: who reserves it and who uses it."""

    node: str
    gpu_id: int
    reserved_for: str | None = None
    cargo: str | None = None
    minicluster: str | None = None
    busy: bool = False
    """Held by something other than Crane."""
