"""Invariants of the placement engine over random clusters and random operation sequences."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from crane.model.inventory import NodeInventory
from crane.model.topology import TopologyMode, TopologySpec
from crane.placement import CargoRequest, Engine, MiniClusterRequest, Outcome

PRODUCTS = ("NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB")
TYPES = ("H100", "A100", "NVIDIA-H100-80GB-HBM3")
LEVELS = ("zone", "block", "rack", "nvlink", "node")


@st.composite
def clusters(draw: Any) -> list[NodeInventory]:
    count = draw(st.integers(1, 12))
    nodes = []
    for i in range(count):
        gpus = draw(st.sampled_from((4, 8)))
        islands = ((0, 1), (2, 3)) if gpus == 4 else ((0, 1, 2, 3), (4, 5, 6, 7))
        rack = draw(st.integers(0, 3))
        nodes.append(
            NodeInventory(
                name=f"n{i}",
                gpu_product=draw(st.sampled_from(PRODUCTS)),
                gpu_count=gpus,
                islands=islands,
                labels={
                    "topology.kubernetes.io/zone": f"z{rack // 2}",
                    "crane.io/block": f"b{rack // 2}",
                    "crane.io/rack": f"r{rack}",
                    "nvidia.com/gpu.clique": f"c{rack}-{i % 2}",
                },
                busy_gpu_ids=frozenset(draw(st.sets(st.integers(0, gpus - 1), max_size=2))),
            )
        )
    return nodes


topologies = st.builds(
    TopologySpec, level=st.sampled_from(LEVELS), mode=st.sampled_from(list(TopologyMode))
)
mc_keys = st.sampled_from(("t/a", "t/b", "t/c"))
cargo_keys = st.sampled_from([f"t/g{i}" for i in range(8)])

ops = st.one_of(
    st.tuples(
        st.just("mc"),
        mc_keys,
        st.sampled_from(TYPES),
        st.integers(0, 24),
        st.integers(0, 40),
        topologies,
        st.integers(0, 3),
        st.sampled_from((None, 2, 4, 8)),
    ),
    st.tuples(st.just("admit")),
    st.tuples(
        st.just("cargo"),
        cargo_keys,
        mc_keys,
        st.integers(1, 4),
        st.sampled_from((1, 2, 4, 8)),
        topologies,
    ),
    st.tuples(st.just("release"), cargo_keys),
    st.tuples(st.just("remove_mc"), mc_keys),
    st.tuples(
        st.just("node"), st.integers(0, 11), st.booleans(), st.sets(st.integers(0, 3), max_size=2)
    ),
    st.tuples(st.just("remove_node"), st.integers(0, 11)),
    st.tuples(st.just("preempt"), mc_keys),
)


def check_invariants(e: Engine, nodes: dict[str, NodeInventory]) -> None:
    seen: dict[tuple[str, int], str] = {}
    per_node: dict[str, int] = {}
    for key, (req, placements, borrowed) in e.dump()["cargos"].items():
        assert len(placements) == req.replicas, "a gang is whole or absent"
        assert all(len(p["gpu_ids"]) == req.gpus_per_replica for p in placements)
        for p in placements:
            for g in p["gpu_ids"]:
                assert (p["node"], g) not in seen, f"GPU {p['node']}:{g} given twice"
                seen[(p["node"], g)] = key
                assert 0 <= g < nodes[p["node"]].gpu_count
            per_node[p["node"]] = per_node.get(p["node"], 0) + len(p["gpu_ids"])
        if req.topology.mode == TopologyMode.REQUIRED and placements:
            level = e.levels.aliases.index(req.topology.level) + 1
            domains = {e.dump()["nodes"][p["node"]][3][level] for p in placements}
            assert len(domains) == 1, f"{key} violates its Required {req.topology.level}"
        mc = e.dump()["miniclusters"][req.minicluster]
        reserved = {(n, g) for n, ids in mc[2].items() for g in ids}
        outside = sum(1 for p in placements for g in p["gpu_ids"] if (p["node"], g) not in reserved)
        assert outside == borrowed
    for name, used in per_node.items():
        assert used <= nodes[name].gpu_count
    for _, _, reservation, cargos, used, borrowed in e.dump()["miniclusters"].values():
        assert used == sum(len(p.gpu_ids) for c in cargos for p in e.cargo_placements(c))
        assert 0 <= borrowed <= used
        for name, ids in reservation.items():
            for g in ids:
                holder = seen.get((name, g))
                assert holder is None or holder in cargos, "reserved GPU used by a stranger"
    for name, (resv, _cargo, _free, _path, nominated) in e.dump()["nodes"].items():
        for g, waiter in nominated:
            assert resv[g] is None, f"GPU {name}:{g} nominated for {waiter} but reserved"
            assert e.dump()["miniclusters"][waiter][1] is False or (
                e.usage(waiter).reserved_gpus < e.dump()["miniclusters"][waiter][0].min_gpus
            ), "a nomination outlived its MiniCluster's wait"
    assert e.rebuilt_index() == e.dump()["index"], "the index drifted from the GPU states"


@given(clusters(), st.lists(ops, max_size=30))
def test_random_sequences_keep_invariants(nodes: list[NodeInventory], steps: list[Any]) -> None:
    e = Engine()
    by_name = {n.name: n for n in nodes}
    for n in nodes:
        e.upsert_node(n)
    for step in steps:
        kind = step[0]
        if kind == "mc":
            _, key, gpu_type, lo, hi, topo, prio, slot = step
            e.submit_minicluster(
                MiniClusterRequest(
                    key=key,
                    gpu_type=gpu_type,
                    min_gpus=min(lo, hi),
                    max_gpus=hi,
                    topology=topo,
                    priority=prio,
                    template_gpus_per_replica=slot,
                )
            )
        elif kind == "admit":
            for d in e.admit():
                if d.outcome is Outcome.ADMITTED:
                    assert e.is_admitted(d.key)
        elif kind == "cargo":
            _, key, mc, replicas, gpus, topo = step
            req = CargoRequest(
                key=key, minicluster=mc, replicas=replicas, gpus_per_replica=gpus, topology=topo
            )
            before = e.dump()
            dry = e.dry_run_cargo(req)
            e.explain_cargo(req)
            assert e.dump() == before, "dry-run or explain changed the state"
            placed = key in before["cargos"]
            d = e.place_cargo(req)
            assert d.outcome == dry.outcome
            if d.outcome is Outcome.PLACED and not placed:
                assert d.placements == dry.placements
            if d.outcome is not Outcome.PLACED:
                assert e.dump() == before
        elif kind == "release":
            e.release_cargo(step[1])
            e.release_cargo(step[1])
        elif kind == "remove_mc":
            e.remove_minicluster(step[1])
        elif kind == "node":
            _, i, schedulable, busy = step
            name = f"n{i}"
            if name in by_name:
                old = by_name[name]
                new = old.model_copy(
                    update={
                        "schedulable": schedulable,
                        "busy_gpu_ids": frozenset(b for b in busy if b < old.gpu_count),
                    }
                )
                e.upsert_node(new)
                by_name[name] = new
        elif kind == "remove_node":
            name = f"n{step[1]}"
            gone = e.remove_node(name)
            assert all(not e.cargo_placements(c) for c in gone)
            by_name.pop(name, None)
        elif kind == "preempt":
            before = e.dump()
            plan = e.plan_preemption(step[1])
            shrink = e.plan_max_shrink(step[1])
            e.explain_minicluster(step[1])
            e.queue()
            assert e.dump() == before, "a plan changed the state"
            if plan.victims and not e.is_admitted(step[1]):
                for victim in plan.victims:
                    e.release_cargo(victim)
                decisions = {d.key: d for d in e.admit()}
                assert step[1] in decisions
            assert shrink.sufficient or not shrink.victims or shrink.freed_gpus > 0
        check_invariants(e, by_name)


@given(clusters(), st.lists(ops, max_size=20))
def test_snapshot_matches_and_release_all_restores_free(
    nodes: list[NodeInventory], steps: list[Any]
) -> None:
    e = Engine()
    for n in nodes:
        e.upsert_node(n)
    empty_index = e.dump()["index"]
    for step in steps:
        if step[0] == "mc":
            _, key, gpu_type, lo, hi, topo, prio, slot = step
            e.submit_minicluster(
                MiniClusterRequest(
                    key=key,
                    gpu_type=gpu_type,
                    min_gpus=min(lo, hi),
                    max_gpus=hi,
                    topology=topo,
                    priority=prio,
                    template_gpus_per_replica=slot,
                )
            )
            e.admit()
        elif step[0] == "cargo":
            _, key, mc, replicas, gpus, topo = step
            e.place_cargo(
                CargoRequest(
                    key=key, minicluster=mc, replicas=replicas, gpus_per_replica=gpus, topology=topo
                )
            )
    assert e.snapshot().dump() == e.dump()
    for key in ("t/a", "t/b", "t/c"):
        e.remove_minicluster(key)
    assert e.dump()["index"] == empty_index
