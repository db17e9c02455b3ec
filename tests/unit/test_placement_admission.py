"""Issue 14: impossible requests fail fast, queueing strategies, any GPU product, ordered
gpuType lists, island-aware node choice."""

from __future__ import annotations

from crane.model.inventory import NodeInventory
from crane.placement import Engine, MiniClusterRequest, Outcome, QueueingStrategy
from tests.unit.placement_helpers import H100, cargo, cluster, mc, node, topo


def one_host(gpus: int = 8, product: str = H100, name: str = "local") -> Engine:
    """Docker mode's `crane up` host: one node, no topology labels."""
    e = Engine()
    e.upsert_node(NodeInventory(name=name, gpu_product=product, gpu_count=gpus))
    return e


def test_request_larger_than_the_cluster_is_rejected_and_does_not_block_the_next() -> None:
    e = one_host()
    e.submit_minicluster(mc("t/big", 100, 100, created=1))
    e.submit_minicluster(mc("t/fits", 2, 2, created=2))
    decisions = {d.key: d for d in e.admit()}
    big = decisions["t/big"]
    assert big.outcome is Outcome.REJECTED and big.queue_position is None
    assert big.explanation is not None
    assert "the cluster has 8 H100 GPUs in all" in big.explanation.sentence()
    assert decisions["t/fits"].outcome is Outcome.ADMITTED
    assert [q.key for q in e.queue()] == []


def test_rack_required_request_larger_than_any_rack_does_not_block_a_small_one() -> None:
    e = cluster(racks=2, nodes_per_rack=2)  # racks hold 16
    e.submit_minicluster(mc("t/huge", 32, 32, topology=topo("rack"), created=1))
    e.submit_minicluster(mc("t/small", 8, 8, created=2))
    decisions = {d.key: d for d in e.admit()}
    assert decisions["t/huge"].outcome is Outcome.REJECTED
    assert decisions["t/huge"].explanation is not None
    assert "the largest rack has 16 H100 GPUs in all" in decisions["t/huge"].explanation.detail
    assert decisions["t/small"].outcome is Outcome.ADMITTED


def test_template_replica_larger_than_any_node_is_rejected() -> None:
    e = one_host()
    e.submit_minicluster(mc("t/a", 16, 16, template_gpus_per_replica=16))
    [d] = e.admit()
    assert d.outcome is Outcome.REJECTED
    assert d.explanation is not None and "largest H100 node has 8" in d.explanation.detail


def test_rejected_minicluster_is_admitted_once_the_cluster_grows() -> None:
    e = one_host()
    e.submit_minicluster(mc("t/a", 16, 16))
    assert e.admit()[0].outcome is Outcome.REJECTED
    e.upsert_node(NodeInventory(name="second", gpu_product=H100, gpu_count=8))
    assert e.admit()[0].outcome is Outcome.ADMITTED


def test_unknown_type_is_rejected_naming_the_products_the_cluster_has() -> None:
    e = one_host()
    e.submit_minicluster(MiniClusterRequest(key="t/a", gpu_type="A100", min_gpus=1, max_gpus=1))
    [d] = e.admit()
    assert d.outcome is Outcome.REJECTED and d.queue_position is None
    assert d.explanation is not None
    assert "no node has A100 GPUs; the cluster has NVIDIA-H100-80GB-HBM3 (8 GPUs)" in (
        d.explanation.sentence()
    )


def test_cargo_larger_than_the_cluster_is_rejected_not_pending() -> None:
    e = one_host()
    e.submit_minicluster(mc("t/a", 8, 64))
    e.admit()
    d = e.place_cargo(cargo("t/c", "t/a", 2, 8, topology=topo("node", required=False)))
    assert d.outcome is Outcome.REJECTED
    assert d.explanation is not None and "the cluster has 8 H100 GPUs" in d.explanation.detail


def blocked_head(strategy: QueueingStrategy) -> Engine:
    """Two racks of 2 nodes; a rack-Required head of 16 that cannot fit now (one GPU busy in
    each rack), then a small MiniCluster that would fit."""
    e = Engine(queueing=strategy)
    for rack in ("r0", "r1"):
        for i in range(2):
            busy = frozenset({0}) if i == 0 else frozenset()
            e.upsert_node(node(f"{rack}-n{i}", rack, busy_gpu_ids=busy))
    return e


def test_best_effort_fifo_lets_those_behind_proceed_and_says_whom_they_wait_behind() -> None:
    e = one_host(gpus=8)
    e.submit_minicluster(mc("t/x", 6, 6, created=0))
    e.admit()
    e.submit_minicluster(mc("t/head", 4, 4, created=1))
    e.submit_minicluster(mc("t/next", 2, 2, created=2))
    decisions = {d.key: d for d in e.admit()}
    head, nxt = decisions["t/head"], decisions["t/next"]
    assert head.outcome is Outcome.QUEUED and head.queue_position == 1
    # the only node is claimed by the head: the next one fits there but must not take it
    assert nxt.outcome is Outcome.QUEUED and nxt.queue_position == 2
    assert nxt.waits_behind == ("t/head",)
    assert nxt.explanation is not None
    assert nxt.explanation.sentence().startswith("needs 2 H100")
    assert "waits behind t/head" in nxt.explanation.sentence()


def test_best_effort_fifo_backfills_outside_the_claimed_domain() -> None:
    e = blocked_head(QueueingStrategy.BEST_EFFORT_FIFO)
    e.submit_minicluster(mc("t/head", 16, 16, topology=topo("rack"), created=1))
    e.submit_minicluster(mc("t/small", 4, 4, created=2))
    decisions = {d.key: d for d in e.admit()}
    assert decisions["t/head"].outcome is Outcome.QUEUED
    assert decisions["t/small"].outcome is Outcome.ADMITTED


def test_strict_fifo_holds_those_behind_the_head() -> None:
    e = blocked_head(QueueingStrategy.STRICT_FIFO)
    e.submit_minicluster(mc("t/head", 16, 16, topology=topo("rack"), created=1))
    e.submit_minicluster(mc("t/small", 4, 4, created=2))
    decisions = {d.key: d for d in e.admit()}
    assert decisions["t/head"].outcome is Outcome.QUEUED
    small = decisions["t/small"]
    assert small.outcome is Outcome.QUEUED and small.queue_position == 2
    assert small.waits_behind == ("t/head",)
    assert small.explanation is not None
    assert "waits behind t/head (StrictFIFO queue)" in small.explanation.sentence()


def test_strict_fifo_is_per_queue() -> None:
    e = blocked_head(QueueingStrategy.STRICT_FIFO)
    e.submit_minicluster(mc("t/head", 16, 16, topology=topo("rack"), created=1, queue="a"))
    e.submit_minicluster(mc("u/small", 4, 4, created=2, queue="b"))
    decisions = {d.key: d for d in e.admit()}
    assert decisions["u/small"].outcome is Outcome.ADMITTED


def test_preferred_head_claims_a_domain_that_can_hold_it() -> None:
    """A Preferred MiniCluster at node level needing two nodes claims a rack, not one node, so
    backfill cannot nibble every node it needs."""
    e = cluster(racks=2, nodes_per_rack=2)
    e.submit_minicluster(mc("t/x", 4, 4, created=0))
    e.submit_minicluster(mc("t/y", 4, 4, created=0.5))
    e.admit()
    e.place_cargo(cargo("t/x-0", "t/x", 1, 4))
    e.submit_minicluster(mc("t/head", 28, 28, topology=topo("node", required=False), created=1))
    e.submit_minicluster(mc("t/late", 8, 8, created=2))
    decisions = {d.key: d for d in e.admit()}
    assert decisions["t/head"].outcome is Outcome.QUEUED
    assert decisions["t/late"].outcome is Outcome.QUEUED
    assert decisions["t/late"].waits_behind == ("t/head",)


def test_any_product_a_node_advertises_can_be_reserved() -> None:
    for product, asked in [
        ("Tesla-P40", "P40"),
        ("NVIDIA-RTX-A6000", "NVIDIA-RTX-A6000"),
        ("NVIDIA-GeForce-RTX-4090", "RTX-4090"),
        ("Tesla-K80", "Tesla-K80"),
        ("AMD-Instinct-MI300X", "MI300X"),
    ]:
        e = one_host(product=product)
        e.submit_minicluster(MiniClusterRequest(key="t/a", gpu_type=asked, min_gpus=4, max_gpus=8))
        [d] = e.admit()
        assert d.outcome is Outcome.ADMITTED, (product, d)


def two_types() -> Engine:
    e = Engine()
    e.upsert_node(NodeInventory(name="h0", gpu_product=H100, gpu_count=8))
    for i in range(2):
        e.upsert_node(NodeInventory(name=f"a{i}", gpu_product="NVIDIA-A100-SXM4-80GB", gpu_count=8))
    return e


def test_ordered_gpu_type_list_takes_the_first_type_that_fits_and_stays_on_it() -> None:
    e = two_types()
    e.submit_minicluster(mc("t/first", 8, 8))
    e.admit()
    e.submit_minicluster(
        MiniClusterRequest(key="t/a", gpu_type="H100,A100", min_gpus=8, max_gpus=24)
    )
    [d] = e.admit()
    assert d.outcome is Outcome.ADMITTED
    assert set(d.reservation) <= {"a0", "a1"}
    grown = e.place_cargo(cargo("t/a-0", "t/a", 2, 8))
    assert grown.outcome is Outcome.PLACED
    assert {p.node for p in grown.placements} == {"a0", "a1"}


def test_ordered_list_prefers_the_first_type() -> None:
    e = two_types()
    e.submit_minicluster(
        MiniClusterRequest(key="t/a", gpu_type="H100,A100", min_gpus=8, max_gpus=8)
    )
    [d] = e.admit()
    assert set(d.reservation) == {"h0"}


def test_a_reservation_does_not_mix_types() -> None:
    e = two_types()
    e.submit_minicluster(mc("t/x", 4, 4))
    e.admit()
    e.submit_minicluster(
        MiniClusterRequest(key="t/a", gpu_type="H100,A100", min_gpus=8, max_gpus=8)
    )
    [d] = e.admit()
    assert d.outcome is Outcome.ADMITTED
    assert set(d.reservation) <= {"a0", "a1"}


def island_nodes() -> Engine:
    e = Engine()
    for name, busy in (("node-a", {0, 1, 4, 5}), ("node-b", {0, 1, 2, 3})):
        e.upsert_node(
            NodeInventory(
                name=name,
                gpu_product=H100,
                gpu_count=8,
                islands=((0, 1, 2, 3), (4, 5, 6, 7)),
                busy_gpu_ids=frozenset(busy),
            )
        )
    return e


def test_replica_goes_where_it_stays_inside_one_island() -> None:
    e = island_nodes()
    e.submit_minicluster(mc("t/a", 0, 8))
    e.admit()
    d = e.place_cargo(cargo("t/c", "t/a", 1, 4))
    assert d.outcome is Outcome.PLACED
    [p] = d.placements
    assert (p.node, p.gpu_ids) == ("node-b", [4, 5, 6, 7])


def test_gang_replicas_prefer_whole_islands_among_equal_nodes() -> None:
    e = island_nodes()
    e.upsert_node(
        NodeInventory(
            name="node-0",
            gpu_product=H100,
            gpu_count=8,
            islands=((0, 1, 2, 3), (4, 5, 6, 7)),
            busy_gpu_ids=frozenset({0, 4, 1, 5}),
        )
    )
    e.submit_minicluster(mc("t/a", 0, 8))
    e.admit()
    d = e.place_cargo(cargo("t/c", "t/a", 2, 2))
    assert d.outcome is Outcome.PLACED
    for p in d.placements:
        island = {g // 4 for g in p.gpu_ids}
        assert len(island) == 1, p


def test_reservation_of_a_queued_minicluster_keeps_islands_whole() -> None:
    e = island_nodes()
    e.submit_minicluster(mc("t/a", 4, 4))
    [d] = e.admit()
    assert d.reservation == {"node-b": (4, 5, 6, 7)}


def test_queued_minicluster_gets_an_estimated_start_from_expected_ends() -> None:
    e = one_host()
    e.submit_minicluster(mc("t/run", 0, 8))
    e.admit()
    e.place_cargo(cargo("t/short", "t/run", 1, 4, expected_end=100.0))
    e.place_cargo(cargo("t/long", "t/run", 1, 4, expected_end=400.0))
    e.submit_minicluster(mc("t/wait", 4, 4, created=1))
    e.submit_minicluster(mc("t/next", 4, 4, created=2))
    decisions = {d.key: d for d in e.admit()}
    wait, nxt = decisions["t/wait"], decisions["t/next"]
    assert wait.outcome is Outcome.QUEUED and wait.estimated_start == 100.0
    assert wait.explanation is not None
    assert "expected to start by 1970-01-01T00:01:40Z, when cargo t/short ends" in (
        wait.explanation.sentence()
    )
    # the one behind starts only once the one ahead has its GPUs
    assert nxt.estimated_start == 400.0
    before = e.dump()
    assert e.estimated_start("t/next") == 400.0
    assert e.dump() == before


def test_an_estimated_start_names_no_cargo_of_another_tenant() -> None:
    e = one_host()
    e.submit_minicluster(mc("other/run", 0, 8))
    e.admit()
    e.place_cargo(cargo("other/secret", "other/run", 1, 8, expected_end=100.0))
    e.submit_minicluster(mc("t/wait", 4, 4, created=1))
    wait = {d.key: d for d in e.admit()}["t/wait"]
    assert wait.estimated_start == 100.0 and wait.explanation is not None
    said = wait.explanation.sentence()
    assert "expected to start by 1970-01-01T00:01:40Z, when a cargo of another tenant ends" in said
    assert "other/" not in said
    explained = e.explain_minicluster("t/wait")
    assert explained is not None and "other/" not in explained.sentence()


def test_no_estimate_without_known_ends() -> None:
    e = one_host()
    e.submit_minicluster(mc("t/run", 0, 8))
    e.admit()
    e.place_cargo(cargo("t/forever", "t/run", 1, 8))
    e.submit_minicluster(mc("t/wait", 4, 4, created=1))
    [d] = e.admit()
    assert d.outcome is Outcome.QUEUED and d.estimated_start is None
    assert e.estimated_start("t/wait") is None
