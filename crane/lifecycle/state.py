"""The scheduling loop's memory between passes: what the engine holds and what was last written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crane.lifecycle.memo import Memo
from crane.model.inventory import NodeInventory
from crane.model.specs import CargoSpec, ReplicaPlacement
from crane.placement.types import CargoRequest, MiniClusterRequest

REQUEST_RETRY_SECONDS = 15.0
"""How long a create asked for waits for the watch to show it before it is asked again."""


@dataclass
class Revocation:
    """Retries of one token revocation: backoff doubling up to a minute, from ``first``."""

    first: float
    next: float
    tries: int = 0


@dataclass
class LoopState:
    """The loop's memory between passes: what the engine holds and what was last written."""

    nodes: dict[str, NodeInventory] = field(default_factory=dict)
    """Nodes as last given to the engine."""
    lost_nodes: set[str] = field(default_factory=set)
    """Nodes NotReady past the grace period, removed from the engine."""
    miniclusters: dict[str, MiniClusterRequest] = field(default_factory=dict)
    cargos: dict[str, CargoRequest] = field(default_factory=dict)
    """Cargos the engine holds GPUs for."""
    placements: dict[str, tuple[ReplicaPlacement, ...]] = field(default_factory=dict)
    written: dict[str, dict[str, Any]] = field(default_factory=dict)
    """uid -> the status last written, newer than the cache until the watch catches up."""
    unsaved: set[str] = field(default_factory=set)
    """uids whose last status write failed: written again next pass even if unchanged, and
    (for a cargo) no pods created except right after a write that succeeded."""
    attempts: dict[str, tuple[int, int]] = field(default_factory=dict)
    """uid -> (capacity epoch, generation) of the last placement that did not fit."""
    requested: dict[str, float] = field(default_factory=dict)
    """Pod key -> when its creation was last asked for; not asked again until the watch shows it."""
    tokens: dict[str, str] = field(default_factory=dict)
    """MiniCluster uid -> id of the app manager token minted for it (before the watch shows it)."""
    revocations: dict[str, Revocation] = field(default_factory=dict)
    """Deleted MiniCluster uid -> how revoking its app manager token goes."""
    revoked: set[str] = field(default_factory=set)
    """Deleted MiniClusters whose token is revoked (or given up on): free to go."""
    claims_asked: dict[str, float] = field(default_factory=dict)
    """Pod key -> when its ResourceClaim was last asked for (made or deleted) on a DRA node;
    not asked again within a retry interval, so a watch that lags does not repeat it."""
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    """Cargo key -> (reason, message) of a pod of it the API server refused for good: the
    cargo fails next pass (its template can never make a pod there) and lets its GPUs go."""
    repairs: dict[str, str] = field(default_factory=dict)
    """Cargo key -> why its claim lost at restore: its pods are deleted and it waits again."""
    cargo_specs: Memo[CargoSpec] = field(default_factory=Memo)
    """Cargo uid -> its validated spec (template checked), parsed once per spec object."""
    phases: Memo[str] = field(default_factory=Memo)
    """Cargo uid -> the phase of the status last written or read, parsed once per status."""
    node_inputs: dict[str, tuple[object, ...]] = field(default_factory=dict)
    """Node -> what its engine inventory was last made from (its view, the GPU ids Crane's
    cargos and stray Crane pods hold, the GPUs others' pods use): a node whose inputs are the
    same is not made again."""
    steady: dict[str, tuple[object, ...]] = field(default_factory=dict)
    """Cargo key -> what its last step read (record, last written status, placement, owner,
    replicas) when that step left it settled (Running, or Placed with every pod there, at its
    spec's replica count, no pod in flight) and wrote nothing: a pass that reads the same
    inputs again skips it (see :meth:`CargoLifecycle.reconcile`)."""
    epoch: int = 0
    """Bumped whenever capacity may have freed, so waiting cargos are tried again."""
    restored: bool = False

    def bump(self) -> None:
        """Advance the capacity epoch, so that cargos that did not fit are tried again."""
        self.epoch += 1

    def in_flight(self, pod_key: str, now: float) -> bool:
        """Whether a pod's creation was asked for within :data:`REQUEST_RETRY_SECONDS` and the
        watch has not shown the pod since (the pass drops the entry when it sees the pod): the
        pod may exist, so its GPUs are not free."""
        asked = self.requested.get(pod_key)
        return asked is not None and now - asked < REQUEST_RETRY_SECONDS

    def may_request(
        self, pod_key: str, now: float, retry_seconds: float = REQUEST_RETRY_SECONDS
    ) -> bool:
        """Whether to ask for a pod's creation now (not asked within ``retry_seconds``)."""
        if now - self.requested.get(pod_key, -retry_seconds) < retry_seconds:
            return False
        self.requested[pod_key] = now
        return True

    def used_ids(self) -> dict[str, set[int]]:
        """node -> GPU ids Crane's cargos hold."""
        out: dict[str, set[int]] = {}
        for placements in self.placements.values():
            for p in placements:
                out.setdefault(p.node, set()).update(p.gpu_ids)
        return out
