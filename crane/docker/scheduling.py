"""Engine requests built from Docker mode's rows, and the engine rebuilt from SQL and containers.

The rebuild follows the one rule of :mod:`crane.placement.restore` (the same as Kubernetes
mode): cargos first, a claim grounded in live containers before one read from SQL alone, then
reservations, which never take a GPU a cargo of another MiniCluster holds. A cargo whose
containers still live holds their GPUs whatever its row says (failed, finishing, or no row at
all), so no GPU is handed out while a container may still use it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Protocol

from crane.docker import labels as L
from crane.docker.store import CargoRow, MiniClusterRow
from crane.lifecycle import service
from crane.lifecycle.cargo_status import timestamp
from crane.model import CargoPhase
from crane.model.specs import ReplicaPlacement
from crane.placement import Engine
from crane.placement.restore import (
    CargoClaim,
    ReservationClaim,
    RestoreConflict,
    agrees,
    restore_cargos,
    restore_reservations,
)
from crane.placement.types import CargoRequest, MiniClusterRequest

log = logging.getLogger(__name__)

LIVE_STATES = frozenset({"running", "restarting", "created", "paused"})
"""Container states whose process runs or may start: their GPUs are in use."""

HOLDING = frozenset(
    {
        CargoPhase.PLACED.value,
        CargoPhase.RUNNING.value,
        CargoPhase.PREEMPTED.value,
        CargoPhase.PENDING.value,
    }
)
"""Phases whose row holds the placement it has (a preempted one, and a Pending one whose gang
restarts, until their containers are gone; a Pending row waiting to be placed has none)."""


class LabelledContainer(Protocol):
    """What the rebuild reads of a container (the Docker SDK's ``Container``)."""

    @property
    def status(self) -> str:
        """Docker's container state: created, running, exited, ..."""

    @property
    def labels(self) -> dict[str, str]:
        """The container's labels, where Crane writes its cargo, replica, host and GPUs."""


@dataclass(frozen=True)
class LiveReplica:
    """A live container of a cargo: its replica, host and GPU ids, from Crane's labels."""

    cargo_uid: str
    cargo: str
    tenant: str
    minicluster: str
    placement: ReplicaPlacement


def live_replicas(
    containers: Mapping[str, Iterable[LabelledContainer]],
) -> dict[str, list[LiveReplica]]:
    """Cargo uid -> its live containers, from every host's Crane containers (host -> list)."""
    out: dict[str, list[LiveReplica]] = {}
    for host, found in sorted(containers.items()):
        for c in found:
            labels = c.labels or {}
            uid = labels.get(L.CARGO_UID)
            if c.status not in LIVE_STATES or not uid:
                continue
            try:
                replica = int(labels.get(L.REPLICA, ""))
                ids = [int(i) for i in labels.get(L.GPU_IDS, "").split(",") if i.strip()]
            except ValueError:
                log.warning("container of cargo %s on %s has unreadable labels", uid, host)
                continue
            out.setdefault(uid, []).append(
                LiveReplica(
                    uid,
                    labels.get(L.CARGO, ""),
                    labels.get(L.TENANT, ""),
                    labels.get(L.MINICLUSTER, ""),
                    ReplicaPlacement(replica=replica, node=host, gpu_ids=ids),
                )
            )
    return out


def minicluster_request(row: MiniClusterRow) -> MiniClusterRequest:
    """The engine's request for a MiniCluster row (built once, in crane.lifecycle.service)."""
    return service.minicluster_request(row.key, row.mc_spec(), row.created_at.timestamp())


def cargo_request(row: CargoRow) -> CargoRequest:
    """The engine's request for a cargo row (built once, in crane.lifecycle.service)."""
    return service.cargo_request(
        row.key,
        row.cargo_spec(),
        row.created_at.timestamp(),
        timestamp(row.placed_at),
        timestamp(row.started_at),
    )


def _placeholder(key: str) -> MiniClusterRequest:
    """A MiniCluster whose row is gone, held only so its cargos' containers keep their GPUs."""
    return MiniClusterRequest(key=key, gpu_type="", min_gpus=0, max_gpus=2**31)


def _claim(row: CargoRow, live: list[LiveReplica]) -> CargoClaim | None:
    """A row's claim: its live containers' GPUs first, its SQL placement for the rest; it
    agrees when every live container is a replica of the row's placement on its GPUs (the rule
    of :mod:`crane.placement.restore`, as in Kubernetes mode): a container made by hand under a
    replica's name, or one of a finished cargo that Docker started again, never outranks a
    cargo whose containers and row agree."""
    recorded = {p.replica: p for p in row.placements()} if row.phase in HOLDING else {}
    by_replica = dict(recorded)
    for found in live:
        by_replica[found.placement.replica] = found.placement
    if not by_replica:
        return None
    placements = tuple(by_replica[r] for r in sorted(by_replica))
    req = replace(cargo_request(row), replicas=len(placements))
    since = row.placed_at.timestamp() if row.placed_at else 0.0
    agreed = bool(live) and agrees(recorded, by_replica)
    return CargoClaim(req, placements, bool(live), since, agreed)


def _orphan_claim(uid: str, live: list[LiveReplica]) -> CargoClaim:
    """Live containers whose cargo row is gone: held until the reconciler has removed them."""
    first = live[0]
    placements = tuple(sorted((f.placement for f in live), key=lambda p: p.replica))
    req = CargoRequest(
        key=f"{first.tenant}/{first.cargo or uid}@{uid}",
        minicluster=f"{first.tenant}/{first.minicluster}",
        replicas=len(placements),
        gpus_per_replica=max((len(p.gpu_ids) for p in placements), default=0),
        created=0.0,
    )
    return CargoClaim(req, placements, True, 0.0)


def _hold_known(engine: Engine, claim: CargoClaim) -> None:
    """A cargo whose live containers hold GPUs the engine does not have (a host declared with
    fewer GPUs since, or removed) keeps those it has, until the reconciler has stopped it:
    its containers still run on them. Nothing when one of them is someone else's."""
    kept = []
    for p in claim.placements:
        ids = [g for g in p.gpu_ids if engine.has_gpu(p.node, g)]
        if ids:
            kept.append(ReplicaPlacement(replica=p.replica, node=p.node, gpu_ids=ids))
    if not kept:
        return
    try:
        engine.restore_cargo(replace(claim.req, replicas=len(kept)), kept)
    except (ValueError, KeyError) as err:
        log.warning("cargo %s keeps no GPUs: %s", claim.req.key, err)


def restore(
    engine: Engine,
    mcs: list[MiniClusterRow],
    cargos: list[CargoRow],
    live: Mapping[str, list[LiveReplica]] | None = None,
) -> list[RestoreConflict]:
    """Feed the engine (hosts added before) what SQL and the live containers say is placed and
    reserved; returns every conflict resolved (the losing cargos must be repaired)."""
    live = live or {}
    requests = {mc.key: minicluster_request(mc) for mc in mcs}
    claims: list[CargoClaim] = []
    for row in cargos:
        claim = _claim(row, live.get(row.uid, []))
        if claim is not None:
            claims.append(claim)
    known = {row.uid for row in cargos}
    claims += [_orphan_claim(uid, found) for uid, found in live.items() if uid not in known]
    for claim in claims:
        requests.setdefault(claim.req.minicluster, _placeholder(claim.req.minicluster))
    for _, req in sorted(requests.items()):
        engine.submit_minicluster(req)
    result = restore_cargos(engine, claims)
    lost = {c.loser for c in result.conflicts if c.kind == "node"}
    for claim in claims:
        if claim.req.key in lost and claim.grounded:
            _hold_known(engine, claim)
    reservations = [ReservationClaim(mc.key, mc.reserved()) for mc in mcs if mc.admitted]
    conflicts = [*result.conflicts, *restore_reservations(engine, requests, reservations)]
    for conflict in conflicts:
        log.warning("restore conflict (%s): %s", conflict.kind, conflict.reason)
    return conflicts
