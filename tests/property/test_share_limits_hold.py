"""Tenant shares over random shares and operation sequences: no tenant ever uses more than
``nominal + borrowingLimit`` of a GPU type, and no tenant's unused guarantee is ever lent
beyond its ``lendingLimit`` (the free GPUs always cover every tenant's guard)."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from crane.model.inventory import NodeInventory
from crane.model.shares import ShareTable, TenantShare
from crane.placement import CargoRequest, Engine, MiniClusterRequest, Outcome

H100 = "NVIDIA-H100-80GB-HBM3"
TENANTS = ("a", "b", "c")
NODES, GPUS_PER_NODE = 3, 8


@st.composite
def shares(draw: Any) -> TenantShare:
    nominal = draw(st.integers(0, 12))
    return TenantShare(
        gpu_type="H100",
        nominal=nominal,
        borrowing_limit=draw(st.one_of(st.none(), st.integers(0, 8))),
        lending_limit=draw(st.one_of(st.none(), st.integers(0, nominal))),
        weight=draw(st.sampled_from((0.5, 1.0, 3.0))),
    )


tables = st.dictionaries(st.sampled_from(TENANTS), shares(), min_size=1)
mc_keys = st.sampled_from([f"{t}/m{i}" for t in TENANTS for i in range(3)])
ops = st.one_of(
    st.tuples(st.just("mc"), mc_keys, st.integers(0, 10), st.integers(0, 16), st.integers(0, 2)),
    st.tuples(st.just("admit")),
    st.tuples(st.just("cargo"), mc_keys, st.integers(0, 5), st.integers(1, 3), st.integers(1, 4)),
    st.tuples(st.just("release"), mc_keys, st.integers(0, 5)),
    st.tuples(st.just("remove_mc"), mc_keys),
    st.tuples(st.just("preempt"), mc_keys),
)


def engine_with(table: dict[str, TenantShare]) -> Engine:
    engine = Engine()
    for i in range(NODES):
        engine.upsert_node(
            NodeInventory(
                name=f"n{i}",
                gpu_product=H100,
                gpu_count=GPUS_PER_NODE,
                labels={"crane.io/rack": f"r{i % 2}"},
            )
        )
    engine.set_shares(ShareTable(shares={t: [s] for t, s in table.items()}))
    return engine


def use_of(engine: Engine) -> dict[str, int]:
    """GPUs each tenant reserves or borrows, counted from the GPU map."""
    out = dict.fromkeys(TENANTS, 0)
    for slot in engine.gpu_map():
        owner = slot.reserved_for or slot.minicluster
        if owner is not None:
            out[owner.partition("/")[0]] += 1
    return out


def check(engine: Engine, table: dict[str, TenantShare]) -> None:
    use = use_of(engine)
    for tenant, share in table.items():
        if share.borrowing_limit is not None:
            assert use[tenant] <= share.nominal + share.borrowing_limit, (tenant, use, share)
    free = sum(
        1 for s in engine.gpu_map() if s.reserved_for is None and s.cargo is None and not s.busy
    )
    guards = sum(
        max(0, s.nominal - s.lending_limit - use[t])
        for t, s in table.items()
        if s.lending_limit is not None
    )
    assert free >= guards, (free, guards, use)
    reported = {u.tenant: u.in_use for u in engine.tenant_usage()}
    assert reported == {t: use[t] for t in table}


@given(tables, st.lists(ops, max_size=30))
def test_shares_bound_borrowing_and_lending(
    table: dict[str, TenantShare], steps: list[Any]
) -> None:
    # Guarantees that cannot be lent beyond what the cluster holds cannot all be kept free: such
    # an over-committed table is the admin's to fix, not the engine's to honour.
    assume(
        sum(s.nominal - s.lending_limit for s in table.values() if s.lending_limit is not None)
        <= NODES * GPUS_PER_NODE
    )
    engine = engine_with(table)
    for step in steps:
        kind = step[0]
        if kind == "mc":
            _, key, low, high, priority = step
            engine.submit_minicluster(
                MiniClusterRequest(key, "H100", low, max(low, high), priority=priority)
            )
        elif kind == "admit":
            engine.admit()
        elif kind == "cargo":
            _, owner, index, replicas, gpus = step
            engine.place_cargo(CargoRequest(f"{owner}-c{index}", owner, replicas, gpus))
        elif kind == "release":
            engine.release_cargo(f"{step[1]}-c{step[2]}")
        elif kind == "remove_mc":
            engine.remove_minicluster(step[1])
        else:
            decision = engine.dry_run_minicluster(
                MiniClusterRequest(step[1], "H100", 4, 8, priority=3)
            )
            if decision.outcome is Outcome.QUEUED and decision.preemption is not None:
                for victim in decision.preemption.victims:
                    engine.release_cargo(victim)
        check(engine, table)
