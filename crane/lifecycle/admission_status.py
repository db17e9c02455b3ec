"""A MiniCluster's admission status after one admission pass, decided once for both backends.

Each pass, Kubernetes mode (the decision pass, ``crane/lifecycle/decide.py``) and Docker mode
(``crane/docker/reconciler.py``) ask :func:`admission_status` what a live, unheld MiniCluster's
status says now and store the answer each in its own form (the CR's status, the SQL row): the
reservation and its GPU counts, the queue fields, the message, the ``Admitted`` and ``Resizing``
conditions, whether the change is worth an event, and which cargos to preempt for it (each with
its notice). A held MiniCluster's status is :mod:`crane.lifecycle.suspend`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from crane.lifecycle import preemption
from crane.lifecycle.admitted import admitted as admitted_status
from crane.lifecycle.cargo_status import Verdict
from crane.lifecycle.queued import queued
from crane.model.specs import MiniClusterSpec
from crane.placement import Engine
from crane.placement.types import AdmissionDecision


@dataclass(frozen=True)
class Before:
    """What the MiniCluster's stored status said before this pass."""

    admitted: bool
    """Whether its ``Admitted`` condition was True."""
    message: str
    """Its ``status.message``."""


@dataclass(frozen=True)
class AdmissionStatus:
    """What a MiniCluster's status says after an admission pass."""

    admitted: bool
    reservation: dict[str, list[int]]
    """Node -> reserved GPU ids (empty while it waits)."""
    reserved_gpus: int
    in_use_gpus: int | None
    """GPUs its cargos hold; None while it waits (its cargos' stores keep their own count)."""
    borrowed_gpus: int | None
    """GPUs its cargos borrow beyond its reservation; None while it waits."""
    queue_position: int | None
    waits_behind: list[str]
    estimated_start: datetime | None
    message: str
    conditions: tuple[tuple[str, Verdict], ...]
    """``Admitted`` (and ``Resizing`` once admitted), set over the stored conditions."""
    event: tuple[str, str] | None
    """(reason, message) of the event this change is worth, or None (nothing new to say)."""
    victims: tuple[tuple[str, str], ...]
    """(cargo key, why) of each cargo to preempt for it now."""


def admission_status(
    engine: Engine,
    key: str,
    spec: MiniClusterSpec,
    decision: AdmissionDecision | None,
    before: Before,
) -> AdmissionStatus:
    """The status of live, unheld MiniCluster ``key`` (spec ``spec``) after an admission pass
    of ``engine`` that decided ``decision`` for it (None: the pass did not look at it)."""
    if engine.is_admitted(key):
        usage = engine.usage(key)
        said = admitted_status(engine, key, spec)
        return AdmissionStatus(
            admitted=True,
            reservation={n: list(ids) for n, ids in sorted(engine.reservation(key).items())},
            reserved_gpus=usage.reserved_gpus,
            in_use_gpus=usage.in_use_gpus,
            borrowed_gpus=usage.borrowed_gpus,
            queue_position=None,
            waits_behind=[],
            estimated_start=None,
            message=said.message,
            conditions=(("Admitted", said.admitted), ("Resizing", said.resizing)),
            event=None if before.admitted else ("Admitted", said.admitted.message),
            victims=tuple(preemption.victims(engine, key, spec, decision)),
        )
    waiting = queued(engine, key, decision)
    event = None
    if before.message != waiting.message and (before.admitted or not before.message):
        # the first reason it waits (or waits again), not each later change of it
        position = waiting.position
        text = f"position {position}: {waiting.message}" if position else waiting.message
        event = (waiting.reason, text)
    return AdmissionStatus(
        admitted=False,
        reservation={},
        reserved_gpus=0,
        in_use_gpus=None,
        borrowed_gpus=None,
        queue_position=waiting.position,
        waits_behind=waiting.waits_behind,
        estimated_start=waiting.estimated_start,
        message=waiting.message,
        conditions=(("Admitted", Verdict(False, waiting.reason, waiting.message)),),
        event=event,
        victims=tuple(preemption.victims(engine, key, spec, decision)),
    )
