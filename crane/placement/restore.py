"""Rebuild an engine from the claims a backend reads back after a restart; total, never raising.

A backend (Kubernetes: statuses and pods; Docker: SQL rows and containers) hands over what each
MiniCluster says it reserves and what each cargo holds. Claims are restored in a fixed order
and every clash is resolved, never skipped silently and never raised:

Cargos first, in precedence order (the rule is the same for every backend):

1. a claim grounded in what runs (live pods / containers hold those GPUs) and that its record
   (status / SQL row) agrees with beats one grounded in what runs alone, which beats one read
   from a record alone (on Kubernetes a tenant may write a pod with Crane's labels by hand, but
   not a status: a hand-made pod never wins over a cargo whose pods and status agree);
2. then the claim placed earlier (``since``: when it was placed, else its creation time);
3. then the cargo key, so the result never depends on input order.

A cargo is restored whole or not at all: a claim that clashes with one restored before it (a GPU
used by that cargo) loses, and the backend repairs it (its record goes back to waiting, its
pods or containers are stopped). Claims on nodes the engine does not know are reported too.

Reservations next, in admission order (priority desc, created asc, key). A GPU used by another
MiniCluster's cargo or reserved for a MiniCluster earlier in that order is dropped from the
claim; so are GPUs beyond the MiniCluster's ``min`` that none of its cargos uses (a stale map
after ``min`` was lowered). The engine's next ``admit`` grows a shortened reservation back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from crane.model.keys import named_for
from crane.model.specs import ReplicaPlacement
from crane.placement.engine import Engine
from crane.placement.types import CargoRequest, MiniClusterRequest

Gpu = tuple[str, int]
"""(node, GPU id)."""


@dataclass(frozen=True)
class CargoClaim:
    """What one cargo holds, as read back after a restart."""

    req: CargoRequest
    placements: tuple[ReplicaPlacement, ...]
    grounded: bool = False
    """True when live pods / containers hold these GPUs (not only a record says so)."""
    since: float = 0.0
    """When the cargo was placed (seconds since the epoch); earlier wins a clash."""
    agreed: bool = False
    """True when it is grounded and its record says the same placement for every replica."""


@dataclass(frozen=True)
class ReservationClaim:
    """What one admitted MiniCluster's record says it reserves."""

    minicluster: str
    reservation: Mapping[str, Sequence[int]]


@dataclass(frozen=True)
class RestoreConflict:
    """One claim (or part of one) that could not be restored, and why."""

    kind: str
    """``cargo`` (the whole cargo lost), ``reservation`` (GPUs dropped from a reservation) or
    ``node`` (the cargo sits on a node the engine does not know)."""
    loser: str
    """Key of the cargo or MiniCluster whose claim lost."""
    winner: str | None
    """Key of the cargo or MiniCluster that keeps the GPUs (None when none does)."""
    gpus: tuple[Gpu, ...]
    reason: str
    """One sentence for an event or a log line, stored on the loser's object: an object of
    another tenant than the loser's is not named (``winner`` names it)."""


@dataclass
class RestoreResult:
    """What restoring cargo claims into the engine did: the cargos restored and the conflicts."""

    restored: list[str] = field(default_factory=list)
    """Cargo keys restored, in precedence order."""
    conflicts: list[RestoreConflict] = field(default_factory=list)

    def lost_cargos(self) -> dict[str, RestoreConflict]:
        """Cargo key -> the conflict that kept it out of the engine."""
        return {c.loser: c for c in self.conflicts if c.kind in ("cargo", "node")}


def _order(claim: CargoClaim) -> tuple[int, float, str]:
    rank = (0 if claim.agreed else 1) if claim.grounded else 2
    return (rank, claim.since or claim.req.created, claim.req.key)


def _gpus(placements: Iterable[ReplicaPlacement]) -> list[Gpu]:
    return [(p.node, g) for p in placements for g in p.gpu_ids]


def restore_cargos(engine: Engine, claims: Iterable[CargoClaim]) -> RestoreResult:
    """Restore cargo claims into ``engine`` (their MiniClusters submitted before); never raises.

    Deterministic: the same claims in any order give the same engine state and conflicts. No GPU
    ends up used by two cargos.
    """
    result = RestoreResult()
    users: dict[Gpu, str] = {}
    for claim in sorted(claims, key=_order):
        key = claim.req.key
        gpus = _gpus(claim.placements)
        unknown = sorted({n for n, g in gpus if not engine.has_gpu(n, g)})
        if unknown:
            result.conflicts.append(
                RestoreConflict(
                    "node",
                    key,
                    None,
                    tuple((n, g) for n, g in gpus if n in unknown),
                    f"cargo {key} holds GPUs on {', '.join(unknown)}, which Crane does not "
                    "manage now",
                )
            )
            continue
        mc = claim.req.minicluster
        taken = {
            g: engine.gpu_user(*g) or engine.gpu_reserver(*g)
            for g in gpus
            if engine.gpu_user(*g) not in (None, key) or engine.gpu_reserver(*g) not in (None, mc)
        }
        taken.update({g: users[g] for g in gpus if g in users})
        clash = sorted(set(taken) | _duplicates(gpus))
        if clash:
            winner = taken.get(clash[0])
            them = named_for(winner, key, "cargo") if winner else f"cargo {key}"
            result.conflicts.append(
                RestoreConflict(
                    "cargo",
                    key,
                    winner,
                    tuple(clash),
                    f"cargo {key} and {them} both claim GPU "
                    f"{clash[0][0]}:{clash[0][1]}; {them if winner else 'neither'} keeps it "
                    f"({_why(claim)})",
                )
            )
            continue
        if not engine.has_minicluster(claim.req.minicluster):
            result.conflicts.append(
                RestoreConflict(
                    "cargo",
                    key,
                    None,
                    tuple(gpus),
                    f"MiniCluster {claim.req.minicluster} of cargo {key} is not known",
                )
            )
            continue
        engine.restore_cargo(claim.req, claim.placements)
        users.update(dict.fromkeys(gpus, key))
        result.restored.append(key)
    return result


def agrees(
    recorded: Mapping[int, ReplicaPlacement], claimed: Mapping[int, ReplicaPlacement]
) -> bool:
    """Whether every replica of a cargo's ``claimed`` placement (its live replicas' GPUs over its
    record's) is one its record (``recorded``, replica -> placement) has, on the same node and
    GPUs: a grounded claim that agrees ranks first (:class:`CargoClaim`, ``agreed``). A replica
    made by hand under a cargo's name, or naming GPUs its record does not, disagrees."""
    return all(r in recorded and _where(p) == _where(recorded[r]) for r, p in claimed.items())


def _where(p: ReplicaPlacement) -> tuple[str, tuple[int, ...]]:
    return p.node, tuple(sorted(p.gpu_ids))


def _duplicates(gpus: Sequence[Gpu]) -> set[Gpu]:
    seen: set[Gpu] = set()
    dup: set[Gpu] = set()
    for g in gpus:
        (dup if g in seen else seen).add(g)
    return dup


def _why(loser: CargoClaim) -> str:
    if loser.grounded and not loser.agreed:
        return "its pods and its record do not agree; one they agree on, or placed earlier, wins"
    if loser.grounded:
        return "its pods started earlier, or tie-broken by key"
    return "the other's pods hold it; this claim is only in a record"


def restore_reservations(
    engine: Engine,
    requests: Mapping[str, MiniClusterRequest],
    claims: Iterable[ReservationClaim],
) -> list[RestoreConflict]:
    """Restore reservation claims (after :func:`restore_cargos`); never raises.

    ``requests`` are the MiniClusters' requests (already submitted), for the order and ``min``.
    Returns the GPUs dropped from each claim that clashed with another record.
    """
    conflicts: list[RestoreConflict] = []
    by_key = {c.minicluster: c for c in claims if c.minicluster in requests}
    order = sorted(by_key, key=lambda k: (-requests[k].priority, requests[k].created, k))
    reserver: dict[Gpu, str] = {}
    for key in order:
        req = requests[key]
        own: list[Gpu] = []
        other: list[Gpu] = []
        clashes: dict[str, list[Gpu]] = {}
        nouns: dict[str, str] = {}
        for node, ids in sorted(by_key[key].reservation.items()):
            for g in sorted(set(ids)):
                gpu = (node, g)
                if not engine.has_gpu(node, g):
                    continue
                holder, noun = reserver.get(gpu), "MiniCluster"
                if holder is None:
                    holder, noun = _other_user(engine, gpu, key), "cargo"
                if holder is not None:
                    clashes.setdefault(holder, []).append(gpu)
                    nouns[holder] = noun
                elif engine.gpu_user_minicluster(node, g) == key:
                    own.append(gpu)
                else:
                    other.append(gpu)
        keep = own + other[: max(0, req.min_gpus - len(own))]
        stale = other[max(0, req.min_gpus - len(own)) :]
        for holder, gpus in sorted(clashes.items()):
            them = named_for(holder, key, nouns[holder])
            conflicts.append(
                RestoreConflict(
                    "reservation",
                    key,
                    holder,
                    tuple(gpus),
                    f"MiniCluster {key}'s reservation and {them} both claim "
                    f"{_count(len(gpus))} ({_first(gpus)}); {them} keeps them",
                )
            )
        if stale:
            conflicts.append(
                RestoreConflict(
                    "reservation",
                    key,
                    None,
                    tuple(stale),
                    f"MiniCluster {key}'s reservation listed {_count(len(stale))} beyond its "
                    f"min of {req.min_gpus} ({_first(stale)}); released",
                )
            )
        grouped: dict[str, list[int]] = {}
        for node, g in keep:
            grouped.setdefault(node, []).append(g)
        engine.restore_reservation(key, grouped)
        reserver.update(dict.fromkeys(keep, key))
    return conflicts


def _other_user(engine: Engine, gpu: Gpu, key: str) -> str | None:
    """The cargo of another MiniCluster that uses ``gpu``, if any."""
    owner = engine.gpu_user_minicluster(*gpu)
    if owner is None or owner == key:
        return None
    return engine.gpu_user(*gpu)


def _count(n: int) -> str:
    return f"{n} GPU{'' if n == 1 else 's'}"


def _first(gpus: Sequence[Gpu]) -> str:
    node, g = gpus[0]
    more = f" and {len(gpus) - 1} more" if len(gpus) > 1 else ""
    return f"{node}:{g}{more}"
