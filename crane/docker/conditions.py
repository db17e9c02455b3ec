"""Docker mode's conditions, computed from the rows and stored with them (so a condition's
``lastTransitionTime`` is when it changed, not when it was read)."""

from __future__ import annotations

from sqlmodel import Session

from crane.docker import store
from crane.docker.store import ACTIVE, CargoRow, MiniClusterRow
from crane.lifecycle import cargo_status, preemption
from crane.lifecycle.admitted import ADMITTED
from crane.lifecycle.cargo_status import Verdict
from crane.lifecycle.restart import RESTARTING, is_restarting
from crane.lifecycle.suspend import HELD_REASON, held_ready, is_held
from crane.model import CargoPhase, Condition, ConditionStatus
from crane.model.conditions import find_condition

IMAGE_PULL_FAILED = "ImagePullFailed"
"""Reason (and message prefix) of a cargo whose image could not be pulled."""
PULLING = "Pulling"
"""Reason (and message prefix) of a cargo whose image is being pulled."""
RECONCILED = "Reconciled"
"""Condition type of a row whose last pass failed on it (False) or, after that, went well."""
RECONCILE_ERROR = "ReconcileError"
"""Reason of a row whose step of the pass raised (a Docker daemon's odd answer, a row the
database refused): the step is rolled back and tried again next pass; the others go on."""


def _cond(type_: str, ok: bool, reason: str, message: str = "") -> Condition:
    status = ConditionStatus.TRUE if ok else ConditionStatus.FALSE
    return Condition(type=type_, status=status, reason=reason, message=message)


def admission_reason(row: MiniClusterRow) -> str:
    """Admitted, Held, Queued (with a position) or Unschedulable (can never fit as the cluster
    is)."""
    if is_held(row.mc_spec()):
        return HELD_REASON
    if row.admitted:
        return ADMITTED
    return "Queued" if row.queue_position is not None or not row.message else "Unschedulable"


def minicluster_conditions(s: Session, row: MiniClusterRow) -> list[Condition]:
    """The MiniCluster's conditions now, over the stored ones (transition times kept)."""
    every = store.cargos(s, row.tenant, row.name)
    cargos = [c for c in every if not c.deleting]
    ended = (CargoPhase.SUCCEEDED.value, CargoPhase.FAILED.value)
    active = [c for c in cargos if c.phase not in ended]  # as Kubernetes mode counts them
    running = [c for c in cargos if c.phase == CargoPhase.RUNNING.value]
    held = is_held(row.mc_spec())
    stored = store.stored_conditions(row.conditions)
    current = []
    said = next((c for c in stored if c.type == "Admitted"), None)
    if held or said is None or (said.status == ConditionStatus.TRUE) != row.admitted:
        # stored by the reconciler once it decided (crane/lifecycle/admission_status.py)
        current.append(_cond("Admitted", row.admitted, admission_reason(row), row.message))
    if held:
        current.append(_cond("Ready", False, HELD_REASON, held_ready(len(every))))
    else:
        ready = cargo_status.minicluster_ready(row.admitted, len(running), len(active))
        current.append(_cond("Ready", ready.ok, ready.reason, ready.message))
    merged = store.merged_conditions(row.conditions, current)
    # a held one is resized by nothing, as in Kubernetes mode
    return [c for c in merged if not (held and c.type == "Resizing")]


def record(row: CargoRow | MiniClusterRow, type_: str, verdict: Verdict) -> None:
    """Store ``verdict`` as the row's ``type_`` condition, as the reconciler decides it (why a
    cargo waits, how many replicas run, why one failed; what an admitted MiniCluster reserved);
    its transition time is kept while its status does not change. :func:`cargo_conditions` and
    :func:`minicluster_conditions` keep it."""
    cond = _cond(type_, verdict.ok, verdict.reason, verdict.message)
    row.conditions = store.dump_conditions(store.merged_conditions(row.conditions, [cond]))


def _stored(stored: list[Condition], type_: str, *reasons: str) -> bool:
    """Whether the stored ``type_`` condition is False with one of ``reasons``."""
    cond = find_condition(stored, type_)
    return cond is not None and cond.status is ConditionStatus.FALSE and cond.reason in reasons


def _true(stored: list[Condition], type_: str) -> bool:
    """Whether the stored ``type_`` condition is True (as the reconciler stored it)."""
    cond = find_condition(stored, type_)
    return cond is not None and cond.status is ConditionStatus.TRUE


_WAITING = (
    cargo_status.MINICLUSTER_NOT_FOUND,
    cargo_status.MINICLUSTER_NOT_ADMITTED,
    cargo_status.SCALED_TO_ZERO,
    cargo_status.UNSCHEDULABLE,
    cargo_status.UNPLACEABLE,
)
"""``Placed`` reasons of a waiting cargo, which the reconciler stores (:func:`record`)."""


def _placed(row: CargoRow, phase: CargoPhase, stored: list[Condition]) -> Condition | None:
    """The ``Placed`` condition now; None when the stored one (why it waits) stays."""
    if is_restarting(phase, bool(row.placements())):
        return _cond("Placed", False, RESTARTING, row.message)
    if phase is not CargoPhase.PENDING:
        # how it was placed, stored by the reconciler as it placed it (a row placed by an
        # older version has none: its message stands in)
        if _true(stored, "Placed"):
            return None
        return _cond("Placed", True, cargo_status.PLACED, row.message)
    if _stored(stored, "Placed", *_WAITING):
        return None
    return _cond("Placed", False, phase.value, row.message)


def _ready(row: CargoRow, phase: CargoPhase, stored: list[Condition]) -> Verdict | None:
    """The ``Ready`` condition now (as Kubernetes mode sets it); None when the stored one stays
    (the running count while Placed, a failure's reason, or a Pending cargo's last)."""
    replicas = len(row.placements()) or row.cargo_spec().replicas
    if phase is CargoPhase.RUNNING:
        return cargo_status.replicas_ready(replicas, replicas)
    if phase is CargoPhase.PLACED:
        starting = _stored(stored, "Ready", cargo_status.STARTING)
        return None if starting else cargo_status.replicas_ready(0, replicas)
    if phase is CargoPhase.SUCCEEDED:
        return cargo_status.FINISHED
    if phase is CargoPhase.PREEMPTED:
        return cargo_status.not_ready(cargo_status.PREEMPTED, row.message)
    # a failed cargo's Ready is stored by the reconciler as it fails (with the reason it decided)
    restarting = is_restarting(phase, bool(row.placements()))
    if restarting and not _stored(stored, "Ready", cargo_status.REPLICA_FAILED):
        return cargo_status.not_ready(cargo_status.REPLICA_FAILED, row.message)
    return None


def cargo_conditions(row: CargoRow) -> list[Condition]:
    """The cargo's conditions now, over the stored ones (transition times kept)."""
    phase = CargoPhase(row.phase)
    stored = store.stored_conditions(row.conditions)
    current = [c for c in (_placed(row, phase, stored),) if c is not None]
    ready = _ready(row, phase, stored)
    if ready is not None:
        current.append(_cond("Ready", ready.ok, ready.reason, ready.message))
    if phase is CargoPhase.PLACED and row.message.startswith(PULLING):
        current.append(_cond("Pulling", True, PULLING, row.message))
    elif any(c.type == "Pulling" for c in stored):
        current.append(_cond("Pulling", False, "Pulled", "images are on their hosts"))
    if phase is CargoPhase.PREEMPTED:
        reason = preemption.condition_reason(row.message)
        current.append(_cond("Preempted", True, reason, row.message))
    elif phase.value in ACTIVE and any(
        c.type == "Preempted" and c.status is ConditionStatus.TRUE for c in stored
    ):
        current.append(_cond("Preempted", False, "PlacedAgain", "placed again after preemption"))
    return store.merged_conditions(row.conditions, current)


def mark(row: CargoRow | MiniClusterRow, reason: str, message: str) -> None:
    """Store why the pass could not handle the row (``Reconciled`` False); conditions that do
    not parse are replaced by this one."""
    verdict = Verdict(False, reason, message)
    try:
        record(row, RECONCILED, verdict)
    except ValueError:
        row.conditions = store.dump_conditions([_cond(RECONCILED, False, reason, message)])


def unmark(row: CargoRow | MiniClusterRow) -> bool:
    """Say that the pass handled the row again (``Reconciled`` True) after it had failed on
    it; whether anything changed."""
    if f'"{RECONCILED}"' not in row.conditions:
        return False
    if _true(store.stored_conditions(row.conditions), RECONCILED):
        return False
    record(row, RECONCILED, Verdict(True, RECONCILED, "the pass handles it again"))
    return True


def store_conditions(s: Session, skip: frozenset[str] = frozenset()) -> None:
    """Write every row's current conditions but those of the rows whose uid is in ``skip``
    (the reconciler calls this once per pass)."""
    for mc in store.miniclusters(s):
        if mc.uid in skip:
            continue
        text = store.dump_conditions(minicluster_conditions(s, mc))
        if text != mc.conditions:
            mc.conditions = text
            s.add(mc)
    for cargo in store.cargos(s):
        if cargo.uid in skip:
            continue
        text = store.dump_conditions(cargo_conditions(cargo))
        if text != cargo.conditions:
            cargo.conditions = text
            s.add(cargo)
