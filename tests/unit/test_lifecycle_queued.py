"""A waiting MiniCluster's status, said once for both backends (crane/lifecycle/queued.py)."""

from __future__ import annotations

from crane.lifecycle.queued import queued
from crane.placement.types import Outcome
from tests.unit.placement_helpers import mc, topo, two_nodes


def test_a_minicluster_behind_a_claim_says_whom_it_waits_for() -> None:
    engine = two_nodes()
    for key in ("t/a", "t/b"):
        engine.submit_minicluster(mc(key, 3, 3, topology=topo("node"), created=0.0))
    engine.admit()
    engine.submit_minicluster(mc("t/big", 4, 4, topology=topo("node"), created=1.0))
    engine.submit_minicluster(mc("t/small", 1, 1, topology=topo("node"), created=2.0))
    engine.submit_minicluster(mc("t/small2", 1, 1, topology=topo("node"), created=3.0))
    decisions = {d.key: d for d in engine.admit()}
    assert decisions["t/small"].outcome is Outcome.ADMITTED

    big = queued(engine, "t/big", decisions["t/big"])
    assert (big.position, big.waits_behind, big.reason) == (1, [], "Queued")
    small2 = queued(engine, "t/small2", decisions["t/small2"])
    assert (small2.position, small2.waits_behind) == (2, ["t/big"])
    assert "waits behind t/big (they claim the domains where it would fit)" in small2.message
    assert small2.estimated_start is None and small2.reason == "Queued"


def test_one_that_can_never_fit_is_unschedulable_with_no_position() -> None:
    engine = two_nodes()
    engine.submit_minicluster(mc("t/wide", 6, 6, topology=topo("node"), created=0.0))
    [decision] = engine.admit()
    said = queued(engine, "t/wide", decision)
    assert (said.position, said.waits_behind, said.reason) == (None, [], "Unschedulable")
    assert decision.explanation is not None
    assert said.message == decision.explanation.sentence()


def test_without_a_decision_the_engine_explains_it() -> None:
    engine = two_nodes()
    engine.submit_minicluster(mc("t/a", 4, 4, topology=topo("node"), created=0.0))
    engine.submit_minicluster(mc("t/b", 4, 4, topology=topo("node"), created=1.0))
    engine.submit_minicluster(mc("t/c", 4, 4, topology=topo("node"), created=2.0))
    engine.admit()
    said = queued(engine, "t/c", None)
    assert said.position is None and said.waits_behind == [] and said.reason == "Queued"
    explained = engine.explain_minicluster("t/c")
    assert explained is not None and said.message == explained.sentence()


def test_a_minicluster_behind_another_tenants_never_learns_its_name() -> None:
    """Every MiniCluster is in the cluster's one queue, so one tenant's may wait behind
    another's: its status (message, ``waitsBehind``) and its explanation count that one and
    never name it, as the rest of the API does; its own tenant's are still named."""
    engine = two_nodes()
    for key in ("secret/a", "t/b"):
        engine.submit_minicluster(mc(key, 3, 3, topology=topo("node"), created=0.0))
    engine.admit()
    engine.submit_minicluster(mc("secret/big-launch", 4, 4, topology=topo("node"), created=1.0))
    engine.submit_minicluster(mc("t/small", 1, 1, topology=topo("node"), created=2.0))
    engine.submit_minicluster(mc("t/small2", 1, 1, topology=topo("node"), created=3.0))
    decisions = {d.key: d for d in engine.admit()}
    assert decisions["t/small2"].waits_behind == ("secret/big-launch",)  # the engine knows

    said = queued(engine, "t/small2", decisions["t/small2"])
    explained = engine.explain_minicluster("t/small2")
    assert explained is not None
    for text in (said.message, explained.sentence(), str(said.waits_behind)):
        assert "secret" not in text and "big-launch" not in text, text
    assert said.waits_behind == ["(another tenant)"]
    assert "waits behind a MiniCluster of another tenant (" in said.message
