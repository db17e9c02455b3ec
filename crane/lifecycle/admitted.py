"""What an admitted MiniCluster's status says, written once for both backends.

Kubernetes mode (the decision pass, ``crane/lifecycle/decide.py``) and Docker mode
(``crane/docker/reconciler.py``) both write, each pass, for every admitted MiniCluster: the
``Admitted`` condition (True, reason ``Admitted``, "4 L20 GPUs reserved"), the ``Resizing``
condition (False, ``Reserved``, "min 4 reserved"; or True, ``WaitingForCapacity``, while a raised
``gpus.min`` is not all reserved yet) and ``status.message`` (empty, or why it waits for the
rest of its min). A waiting one's status is :mod:`crane.lifecycle.queued`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from crane.lifecycle.cargo_status import Verdict
from crane.model.specs import MiniClusterSpec
from crane.placement import Engine

ADMITTED = "Admitted"
"""Reason of the ``Admitted`` condition (True) of an admitted MiniCluster."""
RESERVED = "Reserved"
"""Reason of ``Resizing`` False: its whole ``gpus.min`` is reserved."""
WAITING_FOR_CAPACITY = "WaitingForCapacity"
"""Reason of ``Resizing`` True: a raised ``gpus.min`` is not all reserved yet."""


@dataclass(frozen=True)
class Admitted:
    """The status of an admitted MiniCluster."""

    admitted: Verdict
    """The ``Admitted`` condition: True, how many GPUs are reserved."""
    resizing: Verdict
    """The ``Resizing`` condition: whether it waits for more of its ``gpus.min``."""
    message: str
    """``status.message``: empty, or why the rest of its min is not reserved yet."""


def admitted(engine: Engine, key: str, spec: MiniClusterSpec) -> Admitted:
    """The status of MiniCluster ``key`` (spec ``spec``), admitted by ``engine``."""
    reserved = engine.usage(key).reserved_gpus
    holds = Verdict(True, ADMITTED, f"{reserved} {spec.gpu_type} GPUs reserved")
    if reserved >= spec.gpus.min:
        done = Verdict(False, RESERVED, f"min {spec.gpus.min} reserved")
        return Admitted(holds, done, "")
    why = engine.explain_minicluster(key)
    message = why.sentence() if why else f"waiting for {spec.gpus.min - reserved} more GPUs"
    return Admitted(holds, Verdict(True, WAITING_FOR_CAPACITY, message), message)
