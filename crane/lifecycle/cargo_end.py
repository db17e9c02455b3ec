"""How one attempt of a cargo's gang ends, decided once for both backends (no I/O).

A backend watches its replicas (pods or containers) and says what it saw: a replica failed or
its node was lost (:func:`failure`), every replica exited 0 (:func:`success`), or a replica can
never be made (:func:`refusal`: the template breaks the Pod Security level, its image cannot be
pulled, the spec is invalid). Each answer is a :class:`CargoEnd`: the status fields to store,
the conditions to record and the event to post. Kubernetes mode
(``crane/lifecycle/cargo_lifecycle.py``) writes it to the Cargo's status, Docker mode
(``crane/docker/reconciler.py``) to the cargo's row; the user reads the same phase, restart
count, message, conditions and event on either backend.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from crane.lifecycle import cargo_status
from crane.lifecycle.cargo_status import Verdict
from crane.lifecycle.restart import RESTARTING, after_failure, failed_reason
from crane.model.specs import CargoPhase, CargoSpec

FAILED_EVENT = "Failed"
"""Reason of the Warning event of a cargo that failed (a refusal posts its own reason)."""
SUCCEEDED_EVENT = "Succeeded"
"""Reason of the event of a cargo whose replicas all succeeded."""


@dataclass(frozen=True)
class CargoEnd:
    """The end of one attempt of a cargo's gang, as both backends store it."""

    phase: CargoPhase
    """``status.phase`` from now on: Pending (the gang restarts), Failed or Succeeded."""
    restarts: int
    """``status.restarts`` from now on."""
    message: str
    """``status.message``: what happened, and what Crane does about it."""
    conditions: tuple[tuple[str, Verdict], ...]
    """The conditions to record, by type, in order."""
    event: str
    """The event's reason: :data:`~crane.lifecycle.restart.RESTARTING`, :data:`FAILED_EVENT`,
    :data:`SUCCEEDED_EVENT`, or a refusal's reason."""
    event_message: str
    """What the event says."""
    exit_code: int | None = None
    """``status.exitCode`` of a finished cargo, where known."""

    @property
    def restart(self) -> bool:
        """Whether the gang restarts whole (Pending, its placement kept until its replicas are
        gone) rather than the cargo finishing."""
        return self.phase is CargoPhase.PENDING

    @property
    def warning(self) -> bool:
        """Whether the event is a Warning (every end but success)."""
        return self.phase is not CargoPhase.SUCCEEDED

    @property
    def ready(self) -> Verdict:
        """The ``Ready`` condition this end records (every end records one)."""
        return next(v for t, v in self.conditions if t == "Ready")

    def saying(self, message: str) -> CargoEnd:
        """This end told with ``message`` instead (Docker mode keeps the words of the failure
        that made it stop a gang's other replicas, once they have stopped): the status message,
        the event and every condition that said the old message say ``message``."""
        said = tuple(
            (t, dataclasses.replace(v, message=message) if v.message == self.message else v)
            for t, v in self.conditions
        )
        return dataclasses.replace(self, message=message, conditions=said, event_message=message)


def failure(
    spec: CargoSpec, restarts: int, reason: str, why: str, exit_code: int | None = None
) -> CargoEnd:
    """A replica failed, or its node was lost (``reason``: ``ReplicaFailed`` or ``NodeLost``;
    ``why``: what happened, :func:`~crane.lifecycle.restart.replica_failed`): the gang restarts
    (``Placed`` False, reason ``Restarting``) or the cargo fails (``Failed`` True, its reason
    ``BackoffLimitExceeded`` when the restarts are used up), by the cargo's restart policy
    (:func:`~crane.lifecycle.restart.after_failure`); ``Ready`` is False for ``reason``, saying
    ``why``, either way. ``exit_code`` is the failed replica's, where known."""
    then = after_failure(spec.restart_policy, restarts, spec.backoff_limit, why)
    ready = cargo_status.not_ready(reason, why)
    if then.restart:
        return CargoEnd(
            phase=then.phase,
            restarts=then.restarts,
            message=then.message,
            conditions=(("Placed", Verdict(False, RESTARTING, then.message)), ("Ready", ready)),
            event=RESTARTING,
            event_message=then.message,
        )
    failed = Verdict(True, failed_reason(reason, then), then.message)
    return CargoEnd(
        phase=CargoPhase.FAILED,
        restarts=then.restarts,
        message=then.message,
        conditions=((CargoPhase.FAILED.value, failed), ("Ready", ready)),
        event=FAILED_EVENT,
        event_message=then.message,
        exit_code=exit_code,
    )


def refusal(restarts: int, reason: str, message: str) -> CargoEnd:
    """A replica can never be made (``reason``: ``PodSecurity``, ``ImagePullFailed``,
    ``InvalidSpec``...): the cargo fails whatever its restart policy, ``Failed`` True and
    ``Ready`` False for ``reason``, saying ``message``; the Warning event is that reason."""
    return CargoEnd(
        phase=CargoPhase.FAILED,
        restarts=restarts,
        message=message,
        conditions=(
            (CargoPhase.FAILED.value, Verdict(True, reason, message)),
            ("Ready", cargo_status.not_ready(reason, message)),
        ),
        event=reason,
        event_message=message,
    )


def success(restarts: int, replicas: int) -> CargoEnd:
    """Every one of the gang's ``replicas`` exited 0: the cargo succeeded (``Succeeded``
    True, ``Ready`` False as finished, the message cleared, exit code 0)."""
    return CargoEnd(
        phase=CargoPhase.SUCCEEDED,
        restarts=restarts,
        message="",
        conditions=(
            (CargoPhase.SUCCEEDED.value, cargo_status.succeeded(replicas)),
            ("Ready", cargo_status.FINISHED),
        ),
        event=SUCCEEDED_EVENT,
        event_message=cargo_status.succeeded_event(replicas),
        exit_code=0,
    )
