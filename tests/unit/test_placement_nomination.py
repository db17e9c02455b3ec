"""Preemption converges: the GPUs freed for a preemptor are held (nominated) for it until it is
admitted; a victim never returns onto them; no cargo is preempted twice for the same waiter."""

from __future__ import annotations

from crane.placement import Engine, Outcome
from tests.unit.placement_helpers import cargo, mc, node, topo


def two_racks() -> Engine:
    engine = Engine()
    for name, rack in (("a0", "r0"), ("a1", "r0")):
        engine.upsert_node(node(name, rack))
    return engine


def borrowers(engine: Engine) -> None:
    """Borrowed cargos t/b0 on a0 and t/b1 on a1 (rack r0); then node b0 (rack r1) joins."""
    engine.submit_minicluster(mc("t/low", 0, 32))
    engine.admit()
    for i in range(2):
        decision = engine.place_cargo(cargo(f"t/b{i}", "t/low", 1, 8, created=float(i)))
        assert decision.outcome is Outcome.PLACED
    assert engine.cargo_placements("t/b0")[0].node != engine.cargo_placements("t/b1")[0].node
    engine.upsert_node(node("b0", "r1"))


def test_freed_gpus_are_held_for_the_preemptor_and_victims_never_return_onto_them() -> None:
    engine = two_racks()
    borrowers(engine)
    # Fill b0 too, so the victims have nowhere else to go.
    engine.submit_minicluster(mc("t/other", 8, 8, priority=5))
    engine.admit()
    engine.submit_minicluster(mc("t/high", 16, 16, priority=10, topology=topo("rack")))
    decision = next(d for d in engine.admit() if d.key == "t/high")
    assert decision.outcome is Outcome.QUEUED and decision.preemption is not None
    assert set(decision.preemption.victims) == {"t/b0", "t/b1"}
    assert engine.nominated("t/high") == {"a0": tuple(range(8)), "a1": tuple(range(8))}
    # b1 drains first and asks to be placed again: the nominated GPUs are not free for it.
    engine.release_cargo("t/b1")
    engine.admit()
    again = engine.place_cargo(cargo("t/b1", "t/low", 1, 8, created=1.0))
    assert again.outcome is Outcome.PENDING
    assert engine.nominated("t/high")["a1"] == tuple(range(8))
    # b0 drains: the preemptor is admitted on the GPUs held for it; its nominations end.
    engine.release_cargo("t/b0")
    admitted = {d.key: d for d in engine.admit()}
    assert (engine.is_admitted("t/high") and "t/high" not in admitted) or (
        admitted["t/high"].outcome is Outcome.ADMITTED
    )
    assert engine.reservation("t/high") == {"a0": tuple(range(8)), "a1": tuple(range(8))}
    assert engine.nominated("t/high") == {}


def test_a_victim_goes_back_only_to_capacity_the_preemptor_does_not_need() -> None:
    engine = two_racks()
    borrowers(engine)
    engine.submit_minicluster(mc("t/high", 16, 16, priority=10, topology=topo("rack")))
    engine.admit()
    held = engine.nominated("t/high")
    assert set(held) == {"a0", "a1"}
    engine.release_cargo("t/b1")
    engine.admit()
    again = engine.place_cargo(cargo("t/b1", "t/low", 1, 8, created=1.0))
    assert again.outcome is Outcome.PLACED and again.placements[0].node == "b0"
    # b1 is not chosen again for the same waiter; b0's drain still admits high.
    plan = engine.plan_preemption("t/high")
    assert "t/b1" not in plan.victims
    engine.release_cargo("t/b0")
    engine.admit()
    assert engine.is_admitted("t/high")
    assert engine.cargo_placements("t/b1")[0].node == "b0"


def test_nominations_end_when_the_preemptor_stops_waiting() -> None:
    engine = two_racks()
    borrowers(engine)
    engine.submit_minicluster(mc("t/high", 16, 16, priority=10, topology=topo("rack")))
    engine.admit()
    assert engine.nominated("t/high")
    engine.release_cargo("t/b1")
    engine.submit_minicluster(mc("t/high", 0, 16, priority=10, topology=topo("rack")))
    engine.admit()
    assert engine.nominated("t/high") == {}
    again = engine.place_cargo(cargo("t/b1", "t/low", 1, 8, created=1.0))
    assert again.outcome is Outcome.PLACED


def test_nominations_are_rolled_back_by_dry_runs_and_removed_with_the_minicluster() -> None:
    engine = two_racks()
    borrowers(engine)
    before = engine.dump()
    engine.dry_run_minicluster(mc("t/high", 16, 16, priority=10, topology=topo("rack")))
    assert engine.dump() == before
    engine.submit_minicluster(mc("t/high", 16, 16, priority=10, topology=topo("rack")))
    engine.admit()
    assert engine.snapshot().dump() == engine.dump()
    engine.remove_minicluster("t/high")
    assert engine.nominated("t/high") == {}
    assert engine.rebuilt_index() == engine.dump()["index"]
