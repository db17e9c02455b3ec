"""What the operator rebuilds on start: claims read from pods and statuses, fed to the engine.

Total and grounded in what holds GPUs: every cargo with a placement or with live pods is
claimed, whatever the state of its MiniCluster (a MiniCluster being deleted, not admitted, with
an invalid spec or gone is submitted so its cargos' GPUs stay held). A cargo's GPU ids come from
its live pods (annotation ``crane.io/gpu-ids``) where they exist, from ``status.placement``
otherwise. A pod names GPU ids that count only when it really asks for that many GPUs
(:func:`held_ids`): a tenant may write a pod with Crane's labels and annotation by hand. Clashes
are resolved by :mod:`crane.placement.restore` (same rule for every backend: a cargo whose pods
and status agree comes first); the losers are returned for the pass to repair, with an event and
a metric.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from crane.kube import resources
from crane.kube.dra import ClaimView
from crane.kube.names import key_of
from crane.lifecycle import records
from crane.lifecycle.state import LoopState
from crane.lifecycle.view import ClusterView as ClusterCache
from crane.lifecycle.view import PodView
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


def parse_gpu_ids(text: str) -> list[int] | None:
    """GPU ids of a pod's ``crane.io/gpu-ids`` annotation (``0,1``); None when unreadable."""
    try:
        return [int(part) for part in text.split(",") if part.strip()] if text else None
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def gpu_ids_of(text: str) -> tuple[int, ...]:
    """:func:`parse_gpu_ids`, cached (every pass reads every pod's annotation); () if unreadable."""
    return tuple(parse_gpu_ids(text) or ())


def held_ids(pod: PodView, claims: Mapping[str, ClaimView]) -> tuple[int, ...]:
    """The GPU ids a live replica holds: those its ``crane.io/gpu-ids`` annotation names, when it
    really asks for that many GPUs, through ``nvidia.com/gpu`` (``gpus``) or through its own
    allocated ResourceClaim (``claims``: ``namespace/name`` -> claim); () otherwise.

    Crane's replicas always ask for the GPUs they name. A pod a tenant writes by hand with
    Crane's labels and annotation but no GPU of its own holds nothing: the ids it names are
    neither kept from others nor restored to a cargo."""
    ids = gpu_ids_of(pod.gpu_ids)
    if not ids or not pod.holds_gpus or not pod.node:
        return ()
    if pod.gpus >= len(ids):
        return ids
    claim = claims.get(key_of(pod.namespace, pod.claim)) if pod.claim else None
    if claim is not None and claim.owner_uid in (None, pod.uid) and len(claim.devices) >= len(ids):
        return ids
    return ()


def cargo_claim(
    body: Mapping[str, Any], pods: list[PodView], claims: Mapping[str, ClaimView] | None = None
) -> tuple[CargoClaim, CargoRequest] | None:
    """The claim of one cargo: its live pods' GPUs first (those they hold, :func:`held_ids`;
    ``claims`` are the ResourceClaims), its status placement for the rest."""
    meta = body["metadata"]
    status = resources.cargo_status(body)
    recorded = {p.replica: p for p in status.placement}
    by_replica = dict(recorded)
    grounded = False
    for pod in sorted(pods, key=lambda p: (p.replica is None, p.replica or 0, p.name)):
        ids = held_ids(pod, claims or {})
        if pod.replica is None or not ids:
            continue
        grounded = True
        by_replica[pod.replica] = ReplicaPlacement(
            replica=pod.replica, node=pod.node, gpu_ids=list(ids)
        )
    if not by_replica:
        return None
    agreed = grounded and agrees(recorded, by_replica)
    placements = tuple(by_replica[r] for r in sorted(by_replica))
    spec = body.get("spec") or {}
    try:
        parsed = resources.parse_cargo_spec(body)
        req = records.cargo_request(meta, parsed, status)
    except ValidationError:
        req = CargoRequest(
            key=key_of(meta["namespace"], meta["name"]),
            minicluster=key_of(meta["namespace"], str(spec.get("miniCluster") or "")),
            replicas=len(placements),
            gpus_per_replica=max((len(p.gpu_ids) for p in placements), default=0),
            created=resources.created_at(meta),
        )
    req = dataclasses.replace(req, replicas=len(placements))
    since = status.placed_at.timestamp() if status.placed_at else 0.0
    return CargoClaim(req, placements, grounded, since, agreed), req


def _placeholder(key: str) -> MiniClusterRequest:
    """A MiniCluster whose object is gone or invalid, held only so its cargos keep their GPUs."""
    return MiniClusterRequest(key=key, gpu_type="", min_gpus=0, max_gpus=2**31)


def restore(engine: Engine, state: LoopState, cache: ClusterCache) -> list[RestoreConflict]:
    """Feed ``engine`` (nodes synced before) the claims of ``cache``; record what it holds in
    ``state``. Returns every conflict resolved (losing cargos must be repaired by the pass)."""
    pods = cache.pods_by_cargo()
    requests: dict[str, MiniClusterRequest] = {}
    reservations: list[ReservationClaim] = []
    for key, body in sorted(cache.miniclusters.items()):
        try:
            spec = resources.parse_minicluster_spec(body)
        except ValidationError:
            continue
        requests[key] = records.minicluster_request(body["metadata"], spec)
        status = resources.minicluster_status(body)
        if resources.is_true(status.conditions, "Admitted") and not body["metadata"].get(
            "deletionTimestamp"
        ):
            reservations.append(ReservationClaim(key, status.reservation))
    claims: list[CargoClaim] = []
    cargo_reqs: dict[str, CargoRequest] = {}
    for key, body in sorted(cache.cargos.items()):
        found = cargo_claim(body, pods.get(key, []), cache.claims)
        if found is None:
            continue
        claim, req = found
        claims.append(claim)
        cargo_reqs[key] = req
        requests.setdefault(req.minicluster, _placeholder(req.minicluster))
    for key, mc_req in sorted(requests.items()):
        engine.submit_minicluster(mc_req)
        state.miniclusters[key] = mc_req
    result = restore_cargos(engine, claims)
    for key in result.restored:
        state.cargos[key] = cargo_reqs[key]
        state.placements[key] = engine.cargo_placements(key)
    conflicts = [
        *result.conflicts,
        *restore_reservations(engine, requests, reservations),
    ]
    for conflict in conflicts:
        log.warning(
            "restore conflict (%s): %s (kept by %s)",
            conflict.kind,
            conflict.reason,
            conflict.winner,
        )
        if conflict.kind in ("cargo", "node"):
            state.repairs[conflict.loser] = conflict.reason
    state.restored = True
    log.info(
        "restored %d MiniClusters and %d cargo placements; %d conflicts repaired",
        len(requests),
        len(result.restored),
        len(conflicts),
    )
    return conflicts
