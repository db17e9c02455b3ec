"""Restoring an engine from any set of claims (records and pods that may contradict each other):
never raises, never double-books a GPU, and gives the same result whatever the input order."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crane.model.inventory import NodeInventory
from crane.model.specs import ReplicaPlacement
from crane.placement import CargoRequest, Engine, MiniClusterRequest
from crane.placement.restore import (
    CargoClaim,
    ReservationClaim,
    restore_cargos,
    restore_reservations,
)

NODES = ("n0", "n1", "n2")
MCS = ("t/a", "t/b", "t/c")


def fresh() -> Engine:
    engine = Engine()
    for i, name in enumerate(NODES):
        engine.upsert_node(
            NodeInventory(
                name=name,
                gpu_product="NVIDIA-H100-80GB-HBM3",
                gpu_count=4,
                labels={"crane.io/rack": f"r{i % 2}"},
                busy_gpu_ids=frozenset({3}) if name == "n2" else frozenset(),
            )
        )
    return engine


gpu_sets = st.lists(st.integers(0, 5), min_size=1, max_size=3, unique=True)
replicas = st.tuples(st.sampled_from((*NODES, "gone")), gpu_sets)


@st.composite
def cargo_claims(draw: Any) -> list[CargoClaim]:
    out = []
    for i in range(draw(st.integers(0, 8))):
        placed = draw(st.lists(replicas, min_size=1, max_size=3))
        placements = tuple(
            ReplicaPlacement(replica=r, node=n, gpu_ids=ids) for r, (n, ids) in enumerate(placed)
        )
        req = CargoRequest(
            key=f"t/c{i}",
            minicluster=draw(st.sampled_from(MCS)),
            replicas=len(placements),
            gpus_per_replica=max(len(p.gpu_ids) for p in placements),
            created=float(draw(st.integers(0, 3))),
        )
        out.append(CargoClaim(req, placements, draw(st.booleans()), float(draw(st.integers(0, 3)))))
    return out


@st.composite
def reservation_claims(draw: Any) -> list[ReservationClaim]:
    return [
        ReservationClaim(key, {n: draw(gpu_sets) for n in draw(st.sets(st.sampled_from(NODES)))})
        for key in draw(st.sets(st.sampled_from(MCS)))
    ]


def restore_all(
    claims: list[CargoClaim], reservations: list[ReservationClaim], mins: list[int]
) -> tuple[Engine, list[Any]]:
    engine = fresh()
    requests = {
        key: MiniClusterRequest(key, "H100", lo, 12, priority=lo % 2)
        for key, lo in zip(MCS, mins, strict=True)
    }
    for req in requests.values():
        engine.submit_minicluster(req)
    result = restore_cargos(engine, claims)
    conflicts = [*result.conflicts, *restore_reservations(engine, requests, reservations)]
    return engine, conflicts


@given(
    cargo_claims(),
    reservation_claims(),
    st.lists(st.integers(0, 6), min_size=3, max_size=3),
    st.randoms(use_true_random=False),
)
def test_restore_never_double_books_and_is_deterministic(
    claims: list[CargoClaim], reservations: list[ReservationClaim], mins: list[int], rnd: Any
) -> None:
    engine, conflicts = restore_all(claims, reservations, mins)
    shuffled, res_shuffled = list(claims), list(reservations)
    rnd.shuffle(shuffled)
    rnd.shuffle(res_shuffled)
    again, conflicts_again = restore_all(shuffled, res_shuffled, mins)
    assert engine.dump() == again.dump()
    assert conflicts == conflicts_again
    # No GPU used by two cargos, none reserved for two MiniClusters, index exact.
    holders: dict[tuple[str, int], str] = {}
    restored = {c.req.key for c in claims} - {c.loser for c in conflicts if c.kind != "reservation"}
    for key in sorted(restored):
        for p in engine.cargo_placements(key):
            for g in p.gpu_ids:
                assert (p.node, g) not in holders, f"{key} and {holders[(p.node, g)]} share it"
                holders[(p.node, g)] = key
    for slot in engine.gpu_map():
        if slot.cargo is not None and slot.reserved_for is not None:
            assert slot.reserved_for == slot.minicluster, (
                "a GPU reserved for one MC, used by another"
            )
    assert engine.dump()["index"] == engine.rebuilt_index()
    # A claim loses only to a claim that really holds one of its GPUs (or an unknown node).
    for c in conflicts:
        if c.kind == "cargo":
            assert c.gpus
