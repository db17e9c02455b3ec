from crane.model.inventory import NodeInventory
from crane.model.specs import ReplicaPlacement
from crane.placement import Engine, MiniClusterRequest, Outcome
from tests.unit.placement_helpers import H100, cargo, cluster, mc, node, rack_of, topo


def test_admission_reserves_whole_nodes_within_required_rack() -> None:
    e = cluster()
    e.submit_minicluster(mc("t/a", 16, 32, topology=topo("rack")))
    [d] = e.admit()
    assert d.outcome is Outcome.ADMITTED
    assert e.is_admitted("t/a")
    assert sorted(len(ids) for ids in d.reservation.values()) == [8, 8]
    assert len({rack_of(e, n) for n in d.reservation}) == 1


def test_required_level_larger_than_any_domain_is_rejected_with_numbers() -> None:
    e = cluster(racks=2, nodes_per_rack=2)
    e.submit_minicluster(mc("t/a", 24, 24, topology=topo("rack")))
    [d] = e.admit()
    assert d.outcome is Outcome.REJECTED and d.queue_position is None
    assert d.explanation is not None
    assert d.explanation.best is not None and d.explanation.best.free_gpus == 16
    assert d.explanation.sentence().startswith(
        "needs 24 H100 within one rack; the largest rack has 16 H100 GPUs in all; best rack"
    )


def test_template_reservation_is_whole_slots() -> None:
    e = cluster(racks=1, nodes_per_rack=2)
    e.upsert_node(node("h100-z0-b0-r0-n0", "h100-z0-b0-r0", busy_gpu_ids=frozenset({0})))
    e.submit_minicluster(mc("t/a", 8, 8, template_gpus_per_replica=4))
    [d] = e.admit()
    assert d.outcome is Outcome.ADMITTED
    ids = [g for n, gs in d.reservation.items() for g in gs]
    assert len(ids) == 8
    for gs in d.reservation.values():
        assert tuple(gs) in {(0, 1, 2, 3), (4, 5, 6, 7), (0, 1, 2, 3, 4, 5, 6, 7)}


def test_queue_order_priority_then_creation_and_backfill() -> None:
    e = cluster(racks=2, nodes_per_rack=2)
    e.submit_minicluster(mc("t/big", 24, 24, topology=topo("rack"), priority=5, created=2))
    e.submit_minicluster(mc("t/old", 8, 8, created=1))
    e.submit_minicluster(mc("t/new", 8, 8, created=3))
    decisions = e.admit()
    assert [d.key for d in decisions] == ["t/big", "t/old", "t/new"]
    assert decisions[0].outcome is Outcome.REJECTED
    assert [d.outcome for d in decisions[1:]] == [Outcome.ADMITTED, Outcome.ADMITTED]


def test_backfill_stays_out_of_the_domain_the_head_claims() -> None:
    e = cluster(racks=2, nodes_per_rack=2)
    e.submit_minicluster(mc("t/fill", 8, 8))
    e.admit()
    e.submit_minicluster(mc("t/head", 16, 16, topology=topo("rack"), priority=1))
    e.submit_minicluster(mc("t/late", 8, 8))
    e.place_cargo(cargo("t/blocker", "t/fill", 1, 8))
    decisions = {d.key: d for d in e.admit()}
    assert decisions["t/head"].outcome is Outcome.ADMITTED
    head_reserved_rack = {rack_of(e, n) for n in decisions["t/head"].reservation}
    late = decisions["t/late"]
    assert late.outcome is Outcome.ADMITTED
    assert not head_reserved_rack & {rack_of(e, n) for n in late.reservation}


def test_backfill_refused_inside_claimed_domain() -> None:
    e = cluster(racks=1, nodes_per_rack=2)
    e.submit_minicluster(mc("t/x", 4, 4))
    e.admit()
    e.submit_minicluster(mc("t/head", 16, 16, topology=topo("rack"), priority=1))
    e.submit_minicluster(mc("t/late", 4, 4))
    decisions = {d.key: d for d in e.admit()}
    assert decisions["t/head"].outcome is Outcome.QUEUED
    assert decisions["t/late"].outcome is Outcome.QUEUED
    assert decisions["t/late"].queue_position == 2


def test_cargo_uses_reserved_first_then_borrows_within_max() -> None:
    e = cluster()
    e.submit_minicluster(mc("t/a", 8, 16))
    e.admit()
    first = e.place_cargo(cargo("t/c1", "t/a", 2, 4))
    assert first.outcome is Outcome.PLACED
    assert not any(p.borrowed for p in first.placements)
    second = e.place_cargo(cargo("t/c2", "t/a", 1, 8))
    assert second.outcome is Outcome.PLACED and second.placements[0].borrowed
    assert e.usage("t/a").borrowed_gpus == 8 and e.usage("t/a").in_use_gpus == 16
    third = e.place_cargo(cargo("t/c3", "t/a", 1, 1))
    assert third.outcome is Outcome.PENDING
    assert third.explanation is not None and "exceed max" in third.explanation.detail


def test_replica_on_one_island() -> None:
    e = cluster(racks=1, nodes_per_rack=1)
    e.submit_minicluster(mc("t/a", 0, 8))
    e.admit()
    a = e.place_cargo(cargo("t/c1", "t/a", 1, 2))
    b = e.place_cargo(cargo("t/c2", "t/a", 1, 4))
    assert a.placements[0].gpu_ids == [0, 1]
    assert b.placements[0].gpu_ids == [4, 5, 6, 7]


def test_cargo_of_queued_minicluster_is_pending_and_unchanged() -> None:
    e = cluster()
    e.submit_minicluster(mc("t/a", 8, 8))
    before = e.dump()
    d = e.place_cargo(cargo("t/c", "t/a", 1, 8))
    assert d.outcome is Outcome.PENDING
    assert d.explanation is not None and "queued" in d.explanation.detail
    assert e.dump() == before


def test_rejections() -> None:
    e = cluster(racks=2, nodes_per_rack=2)
    e.submit_minicluster(mc("t/a", 0, 64))
    e.admit()
    assert e.place_cargo(cargo("t/big", "t/a", 9, 8)).outcome is Outcome.REJECTED
    assert e.place_cargo(cargo("t/wide", "t/a", 1, 9)).outcome is Outcome.REJECTED
    rack = e.place_cargo(cargo("t/rack", "t/a", 3, 8, topology=topo("rack")))
    assert rack.outcome is Outcome.REJECTED
    assert rack.explanation is not None and "largest rack has 16" in rack.explanation.detail
    assert e.place_cargo(cargo("t/pref", "t/a", 3, 8, topology=topo("rack", False))).outcome is (
        Outcome.PLACED
    )


def test_multi_node_gang_stays_in_one_rack_and_best_fit_rack() -> None:
    e = cluster(racks=3, nodes_per_rack=2)
    e.submit_minicluster(mc("t/a", 0, 64))
    e.admit()
    e.place_cargo(cargo("t/small", "t/a", 1, 8))
    small_rack = rack_of(e, e.cargo_placements("t/small")[0].node)
    d = e.place_cargo(cargo("t/g", "t/a", 2, 4, topology=topo("rack")))
    assert d.outcome is Outcome.PLACED
    assert {rack_of(e, p.node) for p in d.placements} == {small_rack}


def test_single_replica_best_fit_node_then_fullest_rack() -> None:
    e = cluster(racks=2, nodes_per_rack=2)
    e.submit_minicluster(mc("t/a", 0, 64))
    e.admit()
    e.restore_cargo(
        cargo("t/full", "t/a", 1, 8),
        [ReplicaPlacement(replica=0, node="h100-z0-b0-r1-n0", gpu_ids=list(range(8)))],
    )
    one = e.place_cargo(cargo("t/one", "t/a", 1, 1))
    assert [p.node for p in one.placements] == ["h100-z0-b0-r1-n1"]
    two = e.place_cargo(cargo("t/two", "t/a", 1, 2))
    assert [p.node for p in two.placements] == ["h100-z0-b0-r1-n1"]
    whole = e.place_cargo(cargo("t/whole", "t/a", 1, 8))
    assert [p.node for p in whole.placements] == ["h100-z0-b0-r0-n0"]
    e.release_cargo("t/full")
    e.release_cargo("t/whole")
    three = e.place_cargo(cargo("t/three", "t/a", 1, 5))
    assert [p.node for p in three.placements] == ["h100-z0-b0-r1-n1"]
    four = e.place_cargo(cargo("t/four", "t/a", 1, 8))
    assert [p.node for p in four.placements] == ["h100-z0-b0-r1-n0"]
    assert e.dump()["index"] == e.rebuilt_index()


def test_exchange_idle_reserved_for_a_fitting_shape() -> None:
    e = cluster(racks=1, nodes_per_rack=2)
    e.submit_minicluster(mc("t/a", 8, 8))
    split = {"h100-z0-b0-r0-n0": [0, 1, 2, 3], "h100-z0-b0-r0-n1": [0, 1, 2, 3]}
    e.restore_reservation("t/a", split)
    d = e.place_cargo(cargo("t/c", "t/a", 1, 8))
    assert d.outcome is Outcome.PLACED
    assert not d.placements[0].borrowed
    assert e.usage("t/a").reserved_gpus == 8
    assert e.reservation("t/a") == {d.placements[0].node: tuple(range(8))}


def test_release_is_idempotent_and_restores_everything() -> None:
    e = cluster()
    e.submit_minicluster(mc("t/a", 8, 32))
    e.admit()
    before = e.dump()
    e.place_cargo(cargo("t/c", "t/a", 3, 8))
    e.release_cargo("t/c")
    e.release_cargo("t/c")
    assert e.dump() == before


def test_lower_min_releases_idle_and_raise_min_resizes() -> None:
    e = cluster()
    e.submit_minicluster(mc("t/a", 16, 32, topology=topo("rack")))
    e.admit()
    e.place_cargo(cargo("t/c", "t/a", 1, 4))
    e.submit_minicluster(mc("t/a", 4, 32, topology=topo("rack")))
    assert e.usage("t/a").reserved_gpus == 4
    e.submit_minicluster(mc("t/a", 24, 32, topology=topo("rack")))
    [d] = e.admit()
    assert d.outcome is Outcome.ADMITTED
    assert e.usage("t/a").reserved_gpus == 24
    assert len({rack_of(e, n) for n in e.reservation("t/a")}) == 1


def test_preemption_plan_newest_lower_priority_borrowed_only_as_needed() -> None:
    e = cluster(racks=1, nodes_per_rack=2)
    e.submit_minicluster(mc("t/low", 0, 16))
    e.admit()
    for i in range(4):
        assert e.place_cargo(cargo(f"t/c{i}", "t/low", 1, 4, created=i)).outcome is Outcome.PLACED
    e.submit_minicluster(mc("t/high", 8, 8, priority=10))
    before = e.dump()
    plan = e.plan_preemption("t/high")
    assert e.dump() == before
    assert plan.sufficient and plan.freed_gpus == 8
    assert plan.victims == ("t/c3", "t/c2")
    [d] = e.admit()
    assert d.outcome is Outcome.QUEUED and d.preemption == plan
    assert d.explanation is not None
    assert "preempting 2 borrowed cargos would free 8" in d.explanation.sentence()
    for victim in plan.victims:
        e.release_cargo(victim)
    assert e.admit()[0].outcome is Outcome.ADMITTED


def test_no_preemption_of_equal_priority() -> None:
    e = cluster(racks=1, nodes_per_rack=1)
    e.submit_minicluster(mc("t/low", 0, 8))
    e.admit()
    e.place_cargo(cargo("t/c", "t/low", 1, 8))
    e.submit_minicluster(mc("t/peer", 8, 8))
    plan = e.plan_preemption("t/peer")
    assert not plan.sufficient and plan.victims == ()


def test_plan_max_shrink() -> None:
    e = cluster()
    e.submit_minicluster(mc("t/a", 8, 32))
    e.admit()
    e.place_cargo(cargo("t/r", "t/a", 1, 8, created=0))
    e.place_cargo(cargo("t/b1", "t/a", 1, 8, created=1))
    e.place_cargo(cargo("t/b2", "t/a", 1, 4, created=2))
    e.submit_minicluster(mc("t/a", 8, 14))
    plan = e.plan_max_shrink("t/a")
    assert plan.victims == ("t/b2", "t/b1") and plan.sufficient and plan.freed_gpus == 12
    e.submit_minicluster(mc("t/a", 8, 16))
    assert e.plan_max_shrink("t/a").victims == ("t/b2",)


def test_busy_and_unschedulable_nodes_take_nothing() -> None:
    e = cluster(racks=1, nodes_per_rack=2)
    e.upsert_node(node("h100-z0-b0-r0-n0", "h100-z0-b0-r0", busy_gpu_ids=frozenset(range(6))))
    e.upsert_node(node("h100-z0-b0-r0-n1", "h100-z0-b0-r0", schedulable=False))
    e.submit_minicluster(mc("t/a", 0, 8))
    e.admit()
    assert e.place_cargo(cargo("t/c", "t/a", 1, 2)).placements[0].gpu_ids == [6, 7]
    assert e.place_cargo(cargo("t/d", "t/a", 1, 1)).outcome is Outcome.PENDING
    assert e.rebuilt_index() == e.dump()["index"]


def test_remove_node_returns_its_cargos_and_frees_them() -> None:
    e = cluster(racks=1, nodes_per_rack=2)
    e.submit_minicluster(mc("t/a", 8, 16))
    e.admit()
    d = e.place_cargo(cargo("t/c", "t/a", 2, 8))
    gone = d.placements[0].node
    assert e.remove_node(gone) == ["t/c"]
    assert e.cargo_placements("t/c") == ()
    assert e.usage("t/a").in_use_gpus == 0
    assert gone not in e.node_names()
    assert e.rebuilt_index() == e.dump()["index"]


def test_remove_minicluster_releases_all() -> None:
    e = cluster()
    empty = e.dump()
    e.submit_minicluster(mc("t/a", 8, 16))
    e.admit()
    e.place_cargo(cargo("t/c", "t/a", 2, 8))
    assert e.remove_minicluster("t/a") == ["t/c"]
    assert e.dump() == empty


def test_dry_runs_and_explain_change_nothing() -> None:
    e = cluster()
    e.submit_minicluster(mc("t/a", 8, 16))
    e.admit()
    e.place_cargo(cargo("t/c", "t/a", 1, 8))
    before = e.dump()
    hyp = mc("t/h", 16, 16, topology=topo("rack"))
    assert e.dry_run_minicluster(hyp).outcome is Outcome.ADMITTED
    assert e.dry_run_cargo(cargo("t/x", "t/h", 2, 8), hyp).outcome is Outcome.PLACED
    assert e.dry_run_cargo(cargo("t/y", "t/a", 1, 8)).outcome is Outcome.PLACED
    assert "fits now" in e.explain_cargo(cargo("t/y", "t/a", 1, 8)).detail
    assert e.explain_minicluster("t/a") is None
    e.queue()
    assert e.dump() == before


def test_restore_roundtrip_and_conflicts() -> None:
    e = cluster()
    e.submit_minicluster(mc("t/a", 8, 16))
    e.admit()
    d = e.place_cargo(cargo("t/c", "t/a", 2, 8))
    fresh = cluster()
    fresh.submit_minicluster(mc("t/a", 8, 16))
    fresh.restore_reservation("t/a", e.reservation("t/a"))
    fresh.restore_cargo(cargo("t/c", "t/a", 2, 8), d.placements)
    assert fresh.dump() == e.dump()
    fresh.submit_minicluster(mc("t/b", 0, 8))
    try:
        fresh.restore_cargo(
            cargo("t/z", "t/b", 1, 1),
            [ReplicaPlacement(replica=0, node=d.placements[0].node, gpu_ids=[0])],
        )
    except ValueError as err:
        assert "used by t/c" in str(err)
    else:
        raise AssertionError("a GPU given twice was accepted")


def test_snapshot_is_independent() -> None:
    e = cluster()
    e.submit_minicluster(mc("t/a", 8, 16))
    e.admit()
    e.place_cargo(cargo("t/c", "t/a", 1, 4))
    snap = e.snapshot()
    assert snap.dump() == e.dump()
    snap.place_cargo(cargo("t/d", "t/a", 1, 4))
    assert e.cargo_placements("t/d") == ()


def test_gpu_map_and_family_matching() -> None:
    e = cluster(racks=1, nodes_per_rack=1)
    e.submit_minicluster(mc("t/a", 8, 8))
    e.submit_minicluster(MiniClusterRequest(key="t/b", gpu_type="A100", min_gpus=8, max_gpus=8))
    decisions = {d.key: d for d in e.admit()}
    assert decisions["t/a"].outcome is Outcome.ADMITTED
    assert decisions["t/b"].outcome is Outcome.REJECTED
    assert {s.reserved_for for s in e.gpu_map()} == {"t/a"}


def test_gpu_counts_add_up_the_gpu_map_with_borrowed_gpus() -> None:
    """The metrics' per-node counts say what the GPU map says: a cargo of ``t/b`` (no
    reservation) runs on GPUs ``t/a`` reserves and does not use, so those are borrowed."""
    e = cluster(racks=1, nodes_per_rack=2)
    e.submit_minicluster(mc("t/a", 8, 8))
    e.submit_minicluster(mc("t/b", 0, 16))
    e.admit()
    e.place_cargo(cargo("t/own", "t/a", 1, 2))
    e.place_cargo(cargo("t/lent", "t/b", 2, 4))
    counts = e.gpu_counts()
    slots = e.gpu_map()
    for name, c in counts.items():
        mine = [s for s in slots if s.node == name]
        assert c.total == len(mine) == 8
        assert c.reserved == sum(s.reserved_for is not None for s in mine)
        assert c.in_use == sum(s.cargo is not None for s in mine)
        assert c.borrowed == sum(
            s.cargo is not None and s.reserved_for != s.minicluster for s in mine
        )
    assert sum(c.in_use for c in counts.values()) == 10
    assert sum(c.borrowed for c in counts.values()) == 8


def _racked(engine_racks: dict[str, dict[str, int]]) -> Engine:
    """Nodes of 8 GPUs: block -> rack -> node count."""
    e = Engine()
    for block, racks in engine_racks.items():
        for rack, count in racks.items():
            for i in range(count):
                e.upsert_node(
                    NodeInventory(
                        name=f"{rack}-n{i}",
                        gpu_product=H100,
                        gpu_count=8,
                        labels={"crane.io/block": block, "crane.io/rack": rack},
                    )
                )
    return e


def test_gang_spilling_over_racks_touches_as_few_racks_as_possible() -> None:
    # block "a" has 8 racks of 2 nodes, block "b" 2 racks of 8: a 16 x 8 gang that prefers a
    # rack (no rack holds it) goes to "b" in 2 racks, not to "a" (first by name) in 8
    e = _racked(
        {"a": {f"a{i}": 2 for i in range(8)}, "b": {"b0": 8, "b1": 8}},
    )
    e.submit_minicluster(mc("t/a", 0, 512))
    e.admit()
    d = e.place_cargo(cargo("t/g", "t/a", 16, 8, topology=topo("rack", required=False)))
    assert d.outcome is Outcome.PLACED
    assert sorted({rack_of(e, p.node) for p in d.placements}) == ["b0", "b1"]


def test_within_one_block_the_gang_fills_the_largest_racks_first() -> None:
    # one block: a rack of 8 nodes and eight racks of 2: a 10 x 8 gang uses the big rack and
    # one small one (2 racks), never spread over the small racks
    racks = {"zbig": 8} | {f"s{i}": 2 for i in range(8)}
    e = _racked({"only": racks})
    e.submit_minicluster(mc("t/a", 0, 512))
    e.admit()
    d = e.place_cargo(cargo("t/g", "t/a", 10, 8, topology=topo("rack", required=False)))
    assert d.outcome is Outcome.PLACED
    used = {rack_of(e, p.node) for p in d.placements}
    assert len(used) == 2 and "zbig" in used, used
