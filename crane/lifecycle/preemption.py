"""Which cargos to preempt, and why: decided once for both backends.

A queued MiniCluster that cannot reach its ``min`` takes borrowed cargos of lower priority
(whole, newest first, only as many as needed), and, when its tenant is below its guaranteed
share, borrowed cargos of tenants above theirs (the notice says the share is reclaimed); an
admitted one using more than its ``max`` gives back its own borrowed cargos. Posting the
notice and honouring the grace period is the backend's actuator's job.
"""

from __future__ import annotations

from crane.model.keys import named_for
from crane.model.specs import MiniClusterSpec
from crane.placement import Engine
from crane.placement.types import AdmissionDecision

NOTICE_EVENTS = ("Preempting", "Preempted")
"""The API events (``/v1/events`` types) of a cargo at its preemption notice, in this order, on
both backends: ``Preempting`` (the notice, before the grace period), then ``Preempted``."""
RECLAIM = "reclaimed for a tenant below its guaranteed share"
"""How a notice of a reclaim starts (after the backend's ``preempted:`` prefix)."""


def notice(why: str, replicas: str) -> str:
    """A preempted cargo's ``status.message`` and the message of its ``Preempted`` condition and
    events: why, and that its ``replicas`` (pods, containers) may checkpoint meanwhile."""
    return f"preempted: {why}; {replicas} get their termination grace period to checkpoint"


def condition_reason(notice: str) -> str:
    """The reason of a preempted cargo's ``Preempted`` condition: ``ReclaimedForShare`` when
    a tenant reclaimed its guarantee, else ``PreemptedByPriority``."""
    return "ReclaimedForShare" if RECLAIM in notice else "PreemptedByPriority"


def victims(
    engine: Engine, key: str, spec: MiniClusterSpec, decision: AdmissionDecision | None
) -> list[tuple[str, str]]:
    """(cargo key, why) of the cargos to preempt for MiniCluster ``key`` after ``admit()``."""
    if engine.is_admitted(key):
        if engine.usage(key).in_use_gpus <= spec.gpus.max:
            return []
        why = f"MiniCluster {key} uses more than its max of {spec.gpus.max} GPUs"
        return [(victim, why) for victim in engine.plan_max_shrink(key).victims]
    if decision is None or decision.preemption is None or not decision.preemption.sufficient:
        return []
    need = f"(priority {spec.priority}) needs its min of {spec.gpus.min} GPUs"
    tenant = engine.shares.tenant_of(key)
    out = []
    for victim in decision.preemption.victims:
        notice = f"{named_for(key, victim, 'MiniCluster')} {need}"
        if engine.shares and engine.shares.tenant_of(victim) != tenant:
            notice = f"{RECLAIM}: {notice}"
        out.append((victim, notice))
    return out
