"""Fault isolation: one cargo that cannot be realised fails alone; the pass goes on.

Whatever a cargo's reconcile raises (a template the checks missed, a builder bug), the cargo
gets condition Failed (reason InvalidSpec) and a Warning event naming the error, its GPUs are
released, nothing it planned this pass is written, and every other object keeps being
scheduled.
"""

from __future__ import annotations

import logging
from typing import Any

from crane.lifecycle.cargo_lifecycle import CargoLifecycle
from crane.lifecycle.plan import Plan
from crane.model.specs import MiniClusterSpec

log = logging.getLogger(__name__)


def isolate_cargo(
    lifecycle: CargoLifecycle,
    plan: Plan,
    key: str,
    body: dict[str, Any],
    mc: tuple[dict[str, Any], MiniClusterSpec] | None,
) -> None:
    """Reconcile one cargo; on any error, fail it alone (see the module's docstring)."""
    try:
        lifecycle.reconcile(key, body, mc)
    except Exception as err:
        log.exception("cargo %s cannot be realised; failing it alone", key)
        plan.pods[:] = [(k, pod) for k, pod in plan.pods if k != key]
        lifecycle.unsent(key)
        plan.services[:] = [(k, svc) for k, svc in plan.services if k != key]
        try:
            why = f"cannot make the cargo's pods: {type(err).__name__}: {err}"
            lifecycle.refuse(key, body, "InvalidSpec", why)
        except Exception:
            log.exception("cannot mark cargo %s Failed", key)
