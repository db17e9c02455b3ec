"""The restart-policy rule, written once for both backends (no I/O).

When a replica of a running gang fails (a container or pod exits non-zero, disappears, or its
node is lost; :func:`gone_replicas` says which disappeared), both backends describe what
happened with :func:`replica_failed` (or their own sentence for a lost node), then ask
:func:`after_failure` whether the gang restarts or the cargo fails, with which phase, restart
count and message. Kubernetes mode (the decision pass, ``crane/lifecycle/cargo_lifecycle.py``)
and Docker mode (``crane/docker/reconciler.py``) carry the answer out on pods or containers; the
user reads the same ``status.phase``, ``status.restarts`` and ``status.message`` on either
backend: a restarting gang is ``Pending`` (its placement kept) until its old pods or containers
are gone, then placed again, elsewhere if needed, and ``Placed`` once more with the message
cleared.

While the gang restarts, both backends show the same ``Placed`` condition (False, reason
:data:`RESTARTING`, the restart message), recognising a restart with :func:`is_restarting`;
once it runs again, ``status.startedAt`` is still its first start (:func:`first_start`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from crane.model.specs import CargoPhase, RestartPolicy

BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
"""Condition reason of a cargo failed because its ``OnFailure`` restarts were used up."""
RESTARTING = "Restarting"
"""Reason of the ``Placed`` condition (False, the restart message) while the gang restarts, and
of Kubernetes mode's Warning event when it starts to."""


@dataclass(frozen=True)
class AfterFailure:
    """What a failed gang does next."""

    restart: bool
    """True: the gang is recreated whole (same or new GPUs); False: the cargo is Failed."""
    phase: CargoPhase
    """``status.phase`` from now on: Pending while the gang restarts (until its old replicas
    are gone and it is placed again), else Failed."""
    restarts: int
    """``status.restarts`` from now on (one more than before when it restarts)."""
    message: str
    """``status.message``: what happened, and what Crane does about it."""
    limit_reached: bool
    """The cargo fails because ``OnFailure`` restarts reached ``backoffLimit`` (condition
    reason :data:`BACKOFF_LIMIT_EXCEEDED`), not because its policy is ``Never``."""


def replica_failed(replica: int | None, exit_code: int | None, detail: str = "") -> str:
    """What happened to a replica, in the same words on both backends: "replica 1 exited with
    code 3" when its exit code is known, else "replica 1 failed: <detail>" (a pod's status
    message, "its container disappeared")."""
    who = "a replica" if replica is None else f"replica {replica}"
    if exit_code is not None:
        return f"{who} exited with code {exit_code}"
    return f"{who} failed: {detail}" if detail else f"{who} failed"


def gone_replicas(
    phase: CargoPhase, placed: Iterable[int], present: Collection[int | None]
) -> list[int]:
    """Replicas of a running gang whose pod or container is gone (deleted or removed by hand, or
    by the platform), in order: each is a replica failure, so the gang restarts whole or fails
    by its restart policy on both backends; a gang is never left running with one replica made
    again alone beside the others (its world, formed with the old one, would hang).

    Only a ``Running`` gang has lost replicas: every replica of its ``placed`` ones ran, so one
    not ``present`` went away. A gang not running yet (placed, growing, restarting) is made
    up to its placement instead."""
    if phase is not CargoPhase.RUNNING:
        return []
    return sorted(r for r in set(placed) if r not in present)


def after_failure(
    policy: RestartPolicy, restarts: int, backoff_limit: int, what: str
) -> AfterFailure:
    """Restart or fail a gang one of whose replicas failed (``what`` says how).

    ``OnFailure`` with fewer than ``backoff_limit`` restarts so far: restart the whole gang,
    counting one more restart ("...; restarting the gang (restart 1 of 3)"), the cargo Pending
    meanwhile. ``OnFailure`` at the limit: fail ("...; backoffLimit 3 reached"). ``Never``:
    fail, the message being ``what`` alone. The restart count never changes when the cargo
    fails (phase Failed).
    """
    if policy is RestartPolicy.ON_FAILURE and restarts < backoff_limit:
        n = restarts + 1
        return AfterFailure(
            restart=True,
            phase=CargoPhase.PENDING,
            restarts=n,
            message=f"{what}; restarting the gang (restart {n} of {backoff_limit})",
            limit_reached=False,
        )
    if policy is RestartPolicy.ON_FAILURE:
        return AfterFailure(
            restart=False,
            phase=CargoPhase.FAILED,
            restarts=restarts,
            message=f"{what}; backoffLimit {backoff_limit} reached",
            limit_reached=True,
        )
    return AfterFailure(
        restart=False,
        phase=CargoPhase.FAILED,
        restarts=restarts,
        message=what,
        limit_reached=False,
    )


def failed_reason(reason: str, then: AfterFailure) -> str:
    """The ``Failed`` condition's reason of a gang that failed for ``reason`` (``ReplicaFailed``,
    ``NodeLost``): :data:`BACKOFF_LIMIT_EXCEEDED` when ``then`` reached the limit. Both
    backends store this reason when the cargo fails; neither reads it back from the message."""
    return BACKOFF_LIMIT_EXCEEDED if then.limit_reached else reason


def is_restarting(phase: CargoPhase, placed: bool) -> bool:
    """Whether a cargo is in a gang restart, as both backends store one: ``Pending`` with its
    placement kept (``placed``) until its old pods or containers are gone. Every other way
    back to ``Pending`` (preemption, lost GPUs, a restore conflict) clears the placement."""
    return phase is CargoPhase.PENDING and placed


def first_start(started_at: datetime | None, now: datetime) -> datetime:
    """``status.startedAt`` of a cargo whose replicas all run ``now``: its first start, kept
    across gang restarts, preemptions and resizes (as a Kubernetes Job keeps ``startTime``),
    so it agrees with the cargo's accounting row (``crane usage --cargos``, which bills every
    attempt from the first placement); ``status.placedAt`` is the current attempt's placement.
    ``now`` only when it never ran before."""
    return started_at or now
