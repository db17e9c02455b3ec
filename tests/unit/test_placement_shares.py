"""Tenant shares in the engine: guarantee, borrowing and lending limits, fair division of idle
GPUs and reclaim, in numbers (two tenants ``a`` and ``b``; keys are ``tenant/name``)."""

from __future__ import annotations

from crane.lifecycle import preemption
from crane.model.shares import ShareTable, TenantShare
from crane.model.specs import GpuRange, MiniClusterSpec
from crane.placement import Engine, Outcome
from tests.unit.placement_helpers import cargo, cluster, mc


def two_nodes() -> Engine:
    """16 H100: two 8-GPU nodes in one rack."""
    return cluster(racks=1, nodes_per_rack=2)


def table(**shares: TenantShare) -> ShareTable:
    return ShareTable(shares={tenant: [share] for tenant, share in shares.items()})


def share(nominal: int = 0, **kw: object) -> TenantShare:
    return TenantShare(gpu_type="H100", nominal=nominal, **kw)  # type: ignore[arg-type]


def in_use(engine: Engine) -> dict[str, tuple[int, int]]:
    """tenant -> (in use, borrowing) of H100."""
    return {u.tenant: (u.in_use, u.borrowing) for u in engine.tenant_usage()}


def decisions(engine: Engine) -> dict[str, Outcome]:
    return {d.key: d.outcome for d in engine.admit()}


def test_without_shares_priority_orders_across_tenants_as_before() -> None:
    engine = two_nodes()
    engine.submit_minicluster(mc("a/low", 16, 16, created=1.0))
    engine.submit_minicluster(mc("b/high", 16, 16, priority=5, created=2.0))
    assert decisions(engine) == {"b/high": Outcome.ADMITTED, "a/low": Outcome.QUEUED}
    assert engine.tenant_usage() == []


def test_borrowing_limit_caps_reservations_and_borrowing_cargos() -> None:
    engine = two_nodes()
    engine.set_shares(table(a=share(4, borrowing_limit=2)))
    engine.submit_minicluster(mc("a/one", 4, 16, created=1.0))
    engine.submit_minicluster(mc("a/two", 4, 4, created=2.0))
    engine.submit_minicluster(mc("a/three", 2, 2, created=3.0))
    result = {d.key: d for d in engine.admit()}
    assert result["a/one"].outcome is Outcome.ADMITTED
    assert result["a/two"].outcome is Outcome.QUEUED
    assert result["a/two"].explanation is not None
    assert "tenant a would use 8 H100 GPUs, over its guarantee 4 + borrowing limit 2" in (
        result["a/two"].explanation.sentence()
    )
    assert result["a/three"].outcome is Outcome.ADMITTED  # backfill within the limit
    assert in_use(engine) == {"a": (6, 2)}
    pending = engine.place_cargo(cargo("a/big", "a/one", 1, 8))
    assert pending.outcome is Outcome.PENDING
    assert pending.explanation is not None
    assert "over its guarantee 4 + borrowing limit 2" in pending.explanation.sentence()
    assert engine.place_cargo(cargo("a/fits", "a/one", 1, 4)).outcome is Outcome.PLACED
    assert in_use(engine) == {"a": (6, 2)}  # the cargo ran on a/one's idle reserved GPUs


def test_lending_limit_keeps_the_rest_of_an_idle_guarantee_free() -> None:
    engine = two_nodes()
    engine.set_shares(table(b=share(8, lending_limit=2)))
    engine.submit_minicluster(mc("a/greedy", 12, 12, created=1.0))
    engine.submit_minicluster(mc("a/fits", 10, 10, created=2.0))
    result = {d.key: d for d in engine.admit()}
    assert result["a/greedy"].outcome is Outcome.QUEUED
    assert result["a/greedy"].explanation is not None
    assert "6 of the 16 free H100 GPUs are kept for tenants below their guarantee" in (
        result["a/greedy"].explanation.sentence()
    )
    assert result["a/fits"].outcome is Outcome.ADMITTED
    engine.submit_minicluster(mc("b/own", 6, 6, created=3.0))
    assert decisions(engine)["b/own"] is Outcome.ADMITTED
    assert in_use(engine) == {"b": (6, 0)}


def queue_ones(engine: Engine, count: int) -> None:
    """``count`` MiniClusters of min 1 per tenant, all of a's created before b's."""
    for i in range(count):
        engine.submit_minicluster(mc(f"a/m{i}", 1, 1, created=float(i)))
        engine.submit_minicluster(mc(f"b/m{i}", 1, 1, created=100.0 + i))


def test_idle_gpus_are_divided_by_weighted_fair_share() -> None:
    engine = two_nodes()
    engine.set_shares(table(a=share(), b=share()))
    queue_ones(engine, 16)
    engine.admit()
    assert in_use(engine) == {"a": (8, 8), "b": (8, 8)}

    weighted = two_nodes()
    weighted.set_shares(table(a=share(weight=3), b=share(weight=1)))
    queue_ones(weighted, 16)
    weighted.admit()
    assert in_use(weighted) == {"a": (12, 12), "b": (4, 4)}


def test_the_queue_shows_the_fair_order() -> None:
    engine = two_nodes()
    engine.set_shares(table(a=share(), b=share()))
    engine.submit_minicluster(mc("a/full", 16, 16, created=0.0))
    engine.admit()
    for i in range(2):
        engine.submit_minicluster(mc(f"a/m{i}", 1, 1, created=1.0 + i))
    engine.submit_minicluster(mc("b/m0", 1, 1, created=9.0))
    assert [d.key for d in engine.queue()] == ["b/m0", "a/m0", "a/m1"]  # a borrows 16 already


def test_without_shares_the_first_tenant_takes_everything_idle() -> None:
    engine = two_nodes()
    queue_ones(engine, 16)
    admitted = [d.key for d in engine.admit() if d.outcome is Outcome.ADMITTED]
    assert sorted(admitted) == sorted(f"a/m{i}" for i in range(16))


def test_guarantees_come_before_fair_division_and_priority_orders_within_a_tenant() -> None:
    engine = two_nodes()
    engine.set_shares(table(a=share(2), b=share(6)))
    for i in range(16):
        engine.submit_minicluster(mc(f"a/m{i}", 1, 1, created=float(i)))
        engine.submit_minicluster(mc(f"b/m{i}", 1, 1, created=100.0 + i))
    engine.submit_minicluster(mc("a/urgent", 1, 1, priority=9, created=500.0))
    result = decisions(engine)
    assert in_use(engine) == {"a": (6, 4), "b": (10, 4)}  # 2 + 6 guaranteed, 8 split evenly
    assert result["a/urgent"] is Outcome.ADMITTED  # first of a's, though created last
    assert [result[f"a/m{i}"] for i in (4, 5)] == [Outcome.ADMITTED, Outcome.QUEUED]


def borrowed_everything(engine: Engine) -> None:
    """Tenant a (priority 100) runs 4 cargos of 4 GPUs on borrowed GPUs: all 16."""
    engine.submit_minicluster(mc("a/study", 0, 16, priority=100, created=1.0))
    engine.admit()
    for i in range(4):
        placed = engine.place_cargo(cargo(f"a/c{i}", "a/study", 1, 4, created=float(i)))
        assert placed.outcome is Outcome.PLACED


def test_a_tenant_below_its_guarantee_reclaims_it_from_a_borrower_with_notice() -> None:
    engine = two_nodes()
    engine.set_shares(table(a=share(8), b=share(8)))
    borrowed_everything(engine)
    assert in_use(engine) == {"a": (16, 8), "b": (0, 0)}
    engine.submit_minicluster(mc("b/train", 8, 8, created=10.0))
    decision = {d.key: d for d in engine.admit()}["b/train"]
    assert decision.outcome is Outcome.QUEUED
    assert decision.preemption is not None
    assert decision.preemption.victims == ("a/c3", "a/c2")  # newest first, only as needed
    spec = MiniClusterSpec(gpu_type="H100", gpus=GpuRange(min=8, max=8))
    notices = preemption.victims(engine, "b/train", spec, decision)
    assert [v for v, _ in notices] == ["a/c3", "a/c2"]
    assert all(
        n.startswith("reclaimed for a tenant below its guaranteed share") for _, n in notices
    )
    assert all("b/train" not in n for _, n in notices)  # never names another tenant's object
    for victim, _ in notices:
        engine.release_cargo(victim)
    assert decisions(engine)["b/train"] is Outcome.ADMITTED
    assert in_use(engine) == {"a": (8, 0), "b": (8, 0)}


def test_no_reclaim_beyond_the_guarantee_or_without_a_share() -> None:
    engine = two_nodes()
    engine.set_shares(table(a=share(8), b=share(4)))
    borrowed_everything(engine)
    engine.submit_minicluster(mc("b/train", 8, 8, created=10.0))
    decision = {d.key: d for d in engine.admit()}["b/train"]
    assert decision.preemption is None  # 8 is more than b's guarantee of 4

    plain = two_nodes()
    borrowed_everything(plain)
    plain.submit_minicluster(mc("b/train", 8, 8, created=10.0))
    assert {d.key: d for d in plain.admit()}["b/train"].preemption is None  # a's priority wins
