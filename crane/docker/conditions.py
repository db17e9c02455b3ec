"""Docker mode's conditions, computed from the rows and stored with them (so a condition's
``lastTransitionTime`` is when it changed, not when it was read)."""

from __future__ import annotations

from sqlmodel import Session

from crane.docker import store
from crane.docker.store import ACTIVE, CargoRow, MiniClusterRow
from crane.lifecycle import preemption
from crane.lifecycle.restart import RESTARTING, is_restarting
from crane.lifecycle.suspend import HELD_REASON, is_held
from crane.model import CargoPhase, Condition, ConditionStatus

IMAGE_PULL_FAILED = "ImagePullFailed"
"""Reason (and message prefix) of a cargo whose image could not be pulled."""
PULLING = "Pulling"
"""Reason (and message prefix) of a cargo whose image is being pulled."""


def _cond(type_: str, ok: bool, reason: str, message: str = "") -> Condition:
    status = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
    return Condition(type=type_, status=status, reason=reason, message=message)


def admission_reason(row: MiniClusterRow) -> str:
    """Reserved, Held, Queued (with a position) or Unschedulable (can never fit as the cluster
    is)."""
    if is_held(row.mc_spec()):
        return HELD_REASON
    if row.admitted:
        return "Reserved"
    return "Queued" if row.queue_position is not None or not row.message else "Unschedulable"


def minicluster_conditions(s: Session, row: MiniClusterRow) -> list[Condition]:
    """The MiniCluster's conditions now, over the stored ones (transition times kept)."""
    cargos = [c for c in store.cargos(s, row.tenant, row.name) if not c.deleting]
    active = [c for c in cargos if c.phase in ACTIVE]
    running = [c for c in cargos if c.phase == CargoPhase.RUNNING.value]
    current = [
        _cond("Admitted", row.admitted, admission_reason(row), row.message),
        _cond("Ready", row.admitted and len(running) == len(active), "CargosRunning"),
    ]
    return store.merged_conditions(row.conditions, current)


def cargo_conditions(row: CargoRow) -> list[Condition]:
    """The cargo's conditions now, over the stored ones (transition times kept)."""
    phase = CargoPhase(row.phase)
    placed = RESTARTING if is_restarting(phase, bool(row.placements())) else phase.value
    current = [_cond("Placed", phase is not CargoPhase.PENDING, placed, row.message)]
    if phase in (CargoPhase.SUCCEEDED, CargoPhase.FAILED):
        reason = row.message.partition(":")[0]
        why = reason if reason in (IMAGE_PULL_FAILED,) else "ContainersExited"
        current.append(_cond(phase.value, True, why, row.message))
    if phase is CargoPhase.PLACED and row.message.startswith(PULLING):
        current.append(_cond("Pulling", True, PULLING, row.message))
    elif any(c.type == "Pulling" for c in store.stored_conditions(row.conditions)):
        current.append(_cond("Pulling", False, "Pulled", "images are on their hosts"))
    if phase is CargoPhase.PREEMPTED:
        reason = preemption.condition_reason(row.message)
        current.append(_cond("Preempted", True, reason, row.message))
    elif phase.value in ACTIVE:
        stored = store.stored_conditions(row.conditions)
        if any(c.type == "Preempted" and c.status is ConditionStatus.TRUE for c in stored):
            current.append(
                _cond("Preempted", False, "PlacedAgain", "placed again after preemption")
            )
    return store.merged_conditions(row.conditions, current)


def store_conditions(s: Session) -> None:
    """Write every row's current conditions (the reconciler calls this once per pass)."""
    for mc in store.miniclusters(s):
        text = store.dump_conditions(minicluster_conditions(s, mc))
        if text != mc.conditions:
            mc.conditions = text
            s.add(mc)
    for cargo in store.cargos(s):
        text = store.dump_conditions(cargo_conditions(cargo))
        if text != cargo.conditions:
            cargo.conditions = text
            s.add(cargo)
