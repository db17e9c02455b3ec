"""What a cargo's status says, written once for both backends (no I/O).

Kubernetes mode (``crane/lifecycle/cargo_lifecycle.py``) and Docker mode
(``crane/docker/reconciler.py``, ``crane/docker/conditions.py``) both build from here:

- why a cargo is ``Pending`` (the ``Placed`` condition's reason and the message):
  :func:`waiting` before the engine is asked, :func:`unplaced` for the engine's answer;
  how it was placed once it is (the ``Placed`` condition, True): :func:`placed`;
- its ``Ready`` condition: :func:`replicas_ready`, :data:`FINISHED`, :func:`not_ready`;
- the messages of its API events: :func:`phase_event`;
- its expected end, which the estimated start of a queued MiniCluster reads:
  :func:`expected_end`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from crane.model import CargoPhase
from crane.placement.types import CargoDecision, Outcome


@dataclass(frozen=True)
class Verdict:
    """One condition's ``status`` (``ok``), ``reason`` and ``message``."""

    ok: bool
    reason: str
    message: str


MINICLUSTER_NOT_FOUND = "MiniClusterNotFound"
"""``Placed`` reason: the cargo's MiniCluster does not exist."""
MINICLUSTER_NOT_ADMITTED = "MiniClusterNotAdmitted"
"""``Placed`` reason: the cargo's MiniCluster waits in the admission queue."""
SCALED_TO_ZERO = "ScaledToZero"
"""``Placed`` reason: ``replicas`` is 0."""
UNSCHEDULABLE = "Unschedulable"
"""``Placed`` reason: the gang does not fit now."""
UNPLACEABLE = "Unplaceable"
"""``Placed`` reason: the gang can never fit the cluster as it is."""

STARTING = "Starting"
"""``Ready`` reason: placed, not every replica runs yet."""
ALL_REPLICAS_RUNNING = "AllReplicasRunning"
"""``Ready`` reason (True): every replica runs."""
ALL_REPLICAS_SUCCEEDED = "AllReplicasSucceeded"
"""``Succeeded`` reason of a cargo whose every replica exited 0."""
NODE_LOST = "NodeLost"
"""``Failed`` (and ``Ready``) reason of a cargo that failed because its node or host went."""
REPLICA_FAILED = "ReplicaFailed"
"""``Ready`` reason: a replica failed (the gang restarts, or the cargo failed)."""
PREEMPTED = "Preempted"
"""``Ready`` reason: the cargo was preempted."""
FINISHED = Verdict(False, "Finished", "all replicas finished")
"""``Ready`` of a cargo whose replicas all succeeded."""


def waiting(
    tenant: str,
    minicluster: str,
    exists: bool,
    admitted: bool,
    why_not_admitted: str,
    replicas: int,
) -> Verdict | None:
    """Why a cargo waits before the engine is asked to place it, or None when it may be asked:
    its MiniCluster in ``tenant`` is missing, not admitted yet (``why_not_admitted`` is the
    MiniCluster's message, if any), or the cargo has 0 replicas."""
    if not exists:
        message = f"MiniCluster {minicluster} not found in namespace {tenant}: create it"
        return Verdict(False, MINICLUSTER_NOT_FOUND, message)
    if not admitted:
        why = why_not_admitted or "waiting in the admission queue"
        message = f"MiniCluster {minicluster} is not admitted: {why}"
        return Verdict(False, MINICLUSTER_NOT_ADMITTED, message)
    if replicas == 0:
        return Verdict(False, SCALED_TO_ZERO, "replicas is 0: scale the cargo up to run it")
    return None


def unplaced(decision: CargoDecision) -> Verdict:
    """Why the engine did not place a cargo: ``Unplaceable`` (can never fit) or
    ``Unschedulable`` (not now), with the explanation's sentence."""
    why = decision.explanation.sentence() if decision.explanation else str(decision.outcome)
    reason = UNPLACEABLE if decision.outcome == Outcome.REJECTED else UNSCHEDULABLE
    return Verdict(False, reason, why)


PLACED = "Placed"
"""``Placed`` reason (True): the engine placed the gang."""


def placed(replicas: int, gpus_per_replica: int, decision: CargoDecision) -> Verdict:
    """The ``Placed`` condition of a gang of ``replicas`` x ``gpus_per_replica`` GPUs that the
    engine placed as ``decision`` says, in the same words on both backends (and the message of
    Kubernetes mode's ``Placed`` event): "2 replicas x 1 GPUs on 1 node in n0, 2 GPUs borrowed
    (preemptible)"."""
    borrowed = sum(len(p.gpu_ids) for p in decision.placements if p.borrowed)
    nodes = len({p.node for p in decision.placements})
    message = (
        f"{_count(replicas, 'replica')} x {gpus_per_replica} GPUs on {_count(nodes, 'node')}"
        f"{' in ' + decision.domain if decision.domain else ''}"
        f"{f', {borrowed} GPUs borrowed (preemptible)' if borrowed else ''}"
    )
    return Verdict(True, PLACED, message)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def replicas_ready(running: int, replicas: int) -> Verdict:
    """``Ready`` of a placed cargo: True (``AllReplicasRunning``) once each of its ``replicas``
    runs, else False (``Starting``); the message counts them."""
    message = f"{running} of {replicas} replicas running"
    if replicas and running == replicas:
        return Verdict(True, ALL_REPLICAS_RUNNING, message)
    return Verdict(False, STARTING, message)


def placed_progress(running: int, replicas: int) -> tuple[CargoPhase, Verdict]:
    """The phase and ``Ready`` of a placed cargo of which ``running`` replicas run now: only a
    replica that runs counts (a pod ``Running`` and ready; a container ``running``), never one
    that exited, so a gang whose replica finished early reads ``Placed``, "1 of 2 replicas
    running", on both backends."""
    ready = replicas_ready(running, replicas)
    return (CargoPhase.RUNNING if ready.ok else CargoPhase.PLACED), ready


ALL_CARGOS_RUNNING = "AllCargosRunning"
"""A MiniCluster's ``Ready`` reason (True): admitted, and every active cargo runs."""
NOT_READY = "NotReady"
"""A MiniCluster's ``Ready`` reason (False): not admitted, or a cargo does not run."""


def minicluster_ready(admitted: bool, running: int, active: int) -> Verdict:
    """A MiniCluster's ``Ready`` condition: True once it is admitted and each of its ``active``
    cargos (not finished) runs; the message counts them ("1 of 2 cargos running")."""
    ok = admitted and running == active
    return Verdict(
        ok, ALL_CARGOS_RUNNING if ok else NOT_READY, f"{running} of {active} cargos running"
    )


def succeeded(replicas: int) -> Verdict:
    """The ``Succeeded`` condition of a cargo whose ``replicas`` all exited 0 (its status
    message is then empty)."""
    return Verdict(True, ALL_REPLICAS_SUCCEEDED, f"{replicas} replicas succeeded")


def succeeded_event(replicas: int) -> str:
    """The message of the ``Succeeded`` event of a cargo whose ``replicas`` all exited 0."""
    return f"all {replicas} replicas succeeded"


RUNNING_EVENT = "every replica runs"
"""The message of a cargo's ``Running`` event."""


def phase_event(phase: CargoPhase, placed: str, replicas: int, message: str) -> str:
    """The message of a cargo's API event (``/v1/events``, ``crane events``) as it enters
    ``phase``, in the same words on both backends: ``Placed``, how it was placed (``placed``,
    its ``Placed`` condition's message, :func:`placed`); ``Running``, :data:`RUNNING_EVENT`;
    ``Succeeded``, that its ``replicas`` all succeeded; otherwise (``Failed``, ``Preempted``)
    why, its status ``message``."""
    if phase is CargoPhase.PLACED:
        return placed
    if phase is CargoPhase.RUNNING:
        return RUNNING_EVENT
    if phase is CargoPhase.SUCCEEDED:
        return succeeded_event(replicas)
    return message


def not_ready(reason: str, message: str) -> Verdict:
    """``Ready`` False for ``reason`` (a failure, a preemption), saying ``message``."""
    return Verdict(False, reason, message)


def expected_end(
    duration_seconds: int | None,
    created: float,
    placed: float | None = None,
    started: float | None = None,
) -> float | None:
    """When a cargo is expected to end (epoch seconds): ``expectedDurationSeconds`` after it
    started running, or else after it was placed, or else after it was created; None when it
    declares no duration."""
    if not duration_seconds:
        return None
    since = started if started is not None else placed if placed is not None else created
    return since + duration_seconds


def timestamp(when: datetime | None) -> float | None:
    """``when`` as epoch seconds (a time without a zone is UTC), or None."""
    if when is None:
        return None
    return when.timestamp() if when.tzinfo else when.replace(tzinfo=UTC).timestamp()
