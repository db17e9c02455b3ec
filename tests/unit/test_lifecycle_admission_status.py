"""A MiniCluster's admission status, decided once for both backends
(crane/lifecycle/admission_status.py): what each pass stores, and when it is worth an event."""

from __future__ import annotations

from crane.lifecycle.admission_status import Before, admission_status
from crane.model.specs import MiniClusterSpec
from crane.placement.types import Outcome
from tests.unit.placement_helpers import cargo, mc, topo, two_nodes


def _spec(lo: int, hi: int, priority: int = 0) -> MiniClusterSpec:
    return MiniClusterSpec.model_validate(
        {"gpuType": "H100", "gpus": {"min": lo, "max": hi}, "priority": priority}
    )


def test_admission_is_said_once_with_the_gpus_it_reserved() -> None:
    engine = two_nodes()
    engine.submit_minicluster(mc("t/a", 4, 8, topology=topo("node"), created=0.0))
    [decision] = engine.admit()
    first = admission_status(engine, "t/a", _spec(4, 8), decision, Before(False, ""))
    assert first.admitted and first.reserved_gpus == 4 and first.queue_position is None
    assert sum(len(ids) for ids in first.reservation.values()) == 4
    assert first.event == ("Admitted", "4 H100 GPUs reserved")
    assert [(t, v.ok, v.reason) for t, v in first.conditions] == [
        ("Admitted", True, "Admitted"),
        ("Resizing", False, "Reserved"),
    ]
    again = admission_status(engine, "t/a", _spec(4, 8), None, Before(True, first.message))
    assert again.event is None and again.admitted


def test_a_waiting_minicluster_says_its_first_reason_once_not_each_change() -> None:
    engine = two_nodes()
    engine.submit_minicluster(mc("t/a", 8, 8, topology=topo("node", False), created=0.0))
    engine.admit()
    engine.submit_minicluster(mc("t/b", 4, 4, topology=topo("node"), created=1.0))
    decisions = {d.key: d for d in engine.admit()}
    first = admission_status(engine, "t/b", _spec(4, 4), decisions["t/b"], Before(False, ""))
    assert not first.admitted and first.reservation == {} and first.reserved_gpus == 0
    assert first.in_use_gpus is None and first.queue_position == 1
    assert first.event is not None and first.event[0] == "Queued"
    assert first.event[1] == f"position 1: {first.message}"
    [(kind, verdict)] = first.conditions
    assert (kind, verdict.ok, verdict.reason, verdict.message) == (
        "Admitted",
        False,
        "Queued",
        first.message,
    )
    same = admission_status(engine, "t/b", _spec(4, 4), decisions["t/b"], Before(False, "x"))
    assert same.event is None, "a later change of the reason is its status, not an event"


def test_losing_admission_is_worth_an_event() -> None:
    engine = two_nodes()
    engine.submit_minicluster(mc("t/wide", 9, 9, topology=topo("node", False), created=0.0))
    [decision] = engine.admit()
    said = admission_status(engine, "t/wide", _spec(9, 9), decision, Before(True, ""))
    assert said.event is not None and said.event[0] == "Unschedulable"
    assert said.queue_position is None and said.victims == ()


def test_a_higher_priority_minicluster_names_the_borrowed_cargo_it_preempts() -> None:
    engine = two_nodes()
    engine.submit_minicluster(mc("t/low", 4, 8, topology=topo("node", False), created=0.0))
    engine.admit()
    for i in range(2):
        placed = engine.place_cargo(cargo(f"t/low-{i}", "t/low", 1, 4))
        assert placed.outcome is Outcome.PLACED
    assert engine.usage("t/low").borrowed_gpus == 4
    engine.submit_minicluster(mc("t/high", 4, 4, topology=topo("node"), priority=100, created=1.0))
    decisions = {d.key: d for d in engine.admit()}
    said = admission_status(
        engine, "t/high", _spec(4, 4, priority=100), decisions["t/high"], Before(False, "")
    )
    assert not said.admitted
    assert [victim for victim, _ in said.victims] == ["t/low-1"]  # the newest, whole
    assert "MiniCluster t/high (priority 100) needs its min of 4 GPUs" in said.victims[0][1]
