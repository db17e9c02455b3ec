"""Hold and release (``spec.suspend``), decided once for both backends.

A held MiniCluster keeps its object, spec and placement rules but gives back every GPU: its
cargos are deleted (each after its grace period), and once they are gone its reservation is
released and it is not admitted while held. Releasing it (``suspend: false``) puts it back in
the admission queue; once admitted, its template cargos regrow to ``spec.replicas``.
Free-standing cargos (added by ``:grow`` with shapes) are not brought back.
"""

from __future__ import annotations

from crane.model.specs import MiniClusterSpec

HELD_REASON = "Held"
"""Reason of condition ``Admitted=False`` of a held MiniCluster."""


def is_held(spec: MiniClusterSpec) -> bool:
    """Whether the MiniCluster is held (``spec.suspend``)."""
    return spec.suspend


def takes_part(spec: MiniClusterSpec, holding: bool) -> bool:
    """Whether a MiniCluster takes part in placement (the engine, and every what-if snapshot of
    it): a held one only while a cargo of it still ``holding`` GPUs, and then only for what it
    holds (admitted with its recorded reservation, never queued). A held MiniCluster is no
    demand: a dry-run, an explanation or an admission pass never counts it as waiting."""
    return not is_held(spec) or holding


def held_message(name: str, stopping: int) -> str:
    """What a held MiniCluster's status says: its state and how to release it."""
    if stopping:
        doing = f"stopping {stopping} cargo(s), then releasing its GPUs"
    else:
        doing = "its GPUs are released"
    return f"held: {doing}; `crane mc release {name}` queues it again"


def grow_refusal(name: str) -> str:
    """Why a held MiniCluster cannot grow, and what to do."""
    return f"MiniCluster {name!r} is held: release it first with `crane mc release {name}`"


def held_ready(stopping: int) -> str:
    """The message of a held MiniCluster's ``Ready=False`` (reason :data:`HELD_REASON`)."""
    return f"{stopping} cargos stopping"
