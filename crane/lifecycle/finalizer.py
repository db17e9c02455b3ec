"""Crane's finalizer on MiniClusters and Cargos: their GPUs are released before they go.

Added to every live object; removed once a deleted cargo's pods are gone and its GPUs released,
or once a deleted MiniCluster's cargos are gone and its reservation released. So a restart
never loses track of GPUs that a deleted object's pods still hold.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from crane.kube.names import FINALIZER
from crane.lifecycle.plan import Plan
from crane.lifecycle.state import LoopState


def hold(plan: Plan, plural: str, meta: MutableMapping[str, Any]) -> None:
    """Add Crane's finalizer to a live object that lacks it."""
    finalizers = list(meta.get("finalizers") or [])
    if FINALIZER in finalizers:
        return
    meta["finalizers"] = [*finalizers, FINALIZER]
    plan.patch_metadata(
        (plural, meta["namespace"], meta["name"]), {"finalizers": meta["finalizers"]}
    )


def finalize(plan: Plan, state: LoopState, plural: str, meta: MutableMapping[str, Any]) -> None:
    """Remove Crane's finalizer from a deleted object (asked again after a while if it stays)."""
    finalizers = list(meta.get("finalizers") or [])
    if FINALIZER not in finalizers:
        return
    if state.may_request(f"finalize:{meta['uid']}", time.monotonic()):
        plan.finalizer_removals.append(
            (plural, meta["namespace"], meta["name"], finalizers.index(FINALIZER))
        )
