"""A node without GPUs (a CPU-only Docker host, a Kubernetes node with no device plugin) is
part of the inventory without breaking the engine: it holds nothing and places nothing."""

from __future__ import annotations

from crane.model.inventory import NodeInventory
from crane.placement import CargoRequest, Engine, Outcome
from tests.unit.placement_helpers import mc, node


def test_a_node_without_gpus_neither_crashes_nor_takes_work() -> None:
    engine = Engine()
    engine.upsert_node(NodeInventory(name="cpu0", gpu_product="", gpu_count=0))
    engine.upsert_node(node("h0", "r1"))
    engine.upsert_node(NodeInventory(name="cpu0", gpu_product="", gpu_count=0, ready=False))
    engine.submit_minicluster(mc("t/a", 4, 8))
    assert [d.outcome for d in engine.admit()] == [Outcome.ADMITTED]
    placed = engine.place_cargo(CargoRequest("t/a-0", "t/a", 2, 2))
    assert placed.outcome is Outcome.PLACED
    assert {p.node for p in placed.placements} == {"h0"}
    assert {s.node for s in engine.gpu_map()} == {"h0"}
    engine.remove_node("cpu0")
    assert engine.explain_minicluster("t/a") is None
