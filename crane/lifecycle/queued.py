"""What a waiting MiniCluster's status says, written once for both backends (no I/O).

Kubernetes mode (the decision pass, ``crane/lifecycle/decide.py``) and Docker mode
(``crane/docker/reconciler.py``) both turn the admission pass's decision for a MiniCluster
that is not admitted into the same status fields with :func:`queued`: ``queuePosition``,
``waitsBehind``, ``estimatedStart``, the message and the ``Admitted`` condition's reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crane.model.keys import owner
from crane.placement import Engine
from crane.placement.admission import unschedulable_reason
from crane.placement.insight import start_time
from crane.placement.types import AdmissionDecision

OTHER_TENANT = "(another tenant)"
"""What ``waitsBehind`` says for a MiniCluster of a tenant other than the waiting one's."""


@dataclass(frozen=True)
class Queued:
    """The status of a MiniCluster that waits for admission (or can never be admitted)."""

    position: int | None
    """``queuePosition``: 1 for the first in line; None when it holds no position."""
    waits_behind: list[str]
    """``waitsBehind``: the MiniClusters (``tenant/name``) it waits for; one of another tenant
    reads ``OTHER_TENANT`` (the status is its own tenant's to read)."""
    estimated_start: datetime | None
    """``estimatedStart``, when running cargos' ends are known."""
    message: str
    """``status.message`` and the ``Admitted`` condition's message."""
    reason: str
    """The ``Admitted`` condition's reason: ``Queued`` or ``Unschedulable``."""


def queued(engine: Engine, key: str, decision: AdmissionDecision | None) -> Queued:
    """The status of waiting MiniCluster ``key`` after an admission pass that decided
    ``decision`` for it (None: the pass did not look at it; the engine explains it)."""
    why = decision.explanation if decision else engine.explain_minicluster(key)
    message = why.sentence() if why else "waiting in the admission queue"
    held = sum(len(ids) for ids in engine.nominated(key).values())
    if held:
        message += f"; {held} GPUs held for it while the preempted cargos stop"
    return Queued(
        position=decision.queue_position if decision else None,
        waits_behind=[
            k if owner(k) == owner(key) else OTHER_TENANT
            for k in (decision.waits_behind if decision else ())
        ],
        estimated_start=start_time(decision),
        message=message,
        reason=unschedulable_reason(decision) or "Queued",
    )
