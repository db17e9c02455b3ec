"""Queue insight: when a waiting MiniCluster is expected to be admitted (like Slurm's
``squeue --start``).

The estimate replays the future inside a trial that is rolled back: running cargos whose
expected end is known (``CargoRequest.expected_end``: from an expected duration or a
deadline) are released in order of their ends, and after each release one admission pass
runs (so the MiniClusters ahead are admitted first, with the queue's own rules). The first end
after which the MiniCluster is admitted is its estimated start. None when no known end
suffices (cargos without an expected end are assumed to run forever) or it can never fit.
Cost: at most :data:`MAX_RELEASES` releases, each followed by one admission pass.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crane.model.keys import named_for
from crane.placement import admission
from crane.placement.types import AdmissionDecision, Outcome

if TYPE_CHECKING:
    from crane.placement.admitting import Admitting

MAX_RELEASES = 64
"""Most cargo ends one estimate replays."""


def estimated_start(engine: Admitting, key: str) -> tuple[float, str] | None:
    """(time, cargo whose end lets ``key`` in) for a waiting MiniCluster, or None. Never
    mutates the engine."""
    mc = engine._mcs.get(key)
    if mc is None or not mc.waiting or admission.impossible(engine, mc) is not None:
        return None
    ends = sorted(
        (c.req.expected_end, c.req.key)
        for c in engine._cargos.values()
        if c.req.expected_end is not None
    )[:MAX_RELEASES]
    with engine._trial():
        for end, cargo in ends:
            engine.release_cargo(cargo)
            engine.admit()
            if not engine._mcs[key].waiting:
                return end, cargo
    return None


def start_sentence(estimate: tuple[float, str] | None, reader: str) -> str:
    """``expected to start by 2026-11-30T15:00:00Z, when cargo t/c ends`` or ``""``, said to
    the owner of the ``reader`` key: a cargo of another tenant is not named (the sentence is
    stored on the reader's object)."""
    if estimate is None:
        return ""
    when = datetime.fromtimestamp(estimate[0], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"expected to start by {when}, when {named_for(estimate[1], reader, 'cargo')} ends"


MAX_ESTIMATED = 8
"""Queued MiniClusters (first in queue order) that get an estimate in one admission pass."""


def with_estimates(
    engine: Admitting, decisions: list[AdmissionDecision]
) -> list[AdmissionDecision]:
    """The decisions with ``estimated_start`` (and a sentence in the explanation) for the
    first :data:`MAX_ESTIMATED` queued MiniClusters. Never mutates the engine."""
    out: list[AdmissionDecision] = []
    done = 0
    engine._estimating = True
    try:
        for d in decisions:
            if d.outcome is not Outcome.QUEUED or done >= MAX_ESTIMATED:
                out.append(d)
                continue
            done += 1
            found = estimated_start(engine, d.key)
            if found is None:
                out.append(d)
                continue
            explanation = d.explanation
            if explanation is not None:
                said = start_sentence(found, d.key)
                detail = "; ".join(p for p in (explanation.detail, said) if p)
                explanation = replace(explanation, detail=detail)
            out.append(replace(d, estimated_start=found[0], explanation=explanation))
    finally:
        engine._estimating = False
    return out


def start_time(decision: AdmissionDecision | None) -> datetime | None:
    """A decision's estimated start as an aware UTC datetime, for a status."""
    if decision is None or decision.estimated_start is None:
        return None
    return datetime.fromtimestamp(decision.estimated_start, UTC)
