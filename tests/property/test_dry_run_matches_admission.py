"""A dry-run's verdict is what admission then does (issue 12), on random small states.

Both backends answer dry-runs through ``crane.lifecycle.service`` and admit through the same
engine requests (``service.minicluster_request``), so this holds for Kubernetes and Docker
mode alike: the state is built as either backend builds it, from specs.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from crane.lifecycle import service
from crane.model.inventory import NodeInventory
from crane.model.specs import CargoTemplate, GpuRange, MiniClusterSpec
from crane.model.topology import TopologyMode, TopologySpec
from crane.placement import Engine, Outcome

H100 = "NVIDIA-H100-80GB-HBM3"


@st.composite
def nodes(draw: Any) -> list[NodeInventory]:
    out = []
    for i in range(draw(st.integers(1, 4))):
        gpus = draw(st.sampled_from((4, 5, 8)))
        out.append(
            NodeInventory(
                name=f"n{i}",
                gpu_product=H100,
                gpu_count=gpus,
                labels={"crane.io/rack": f"r{i % 2}", "crane.io/block": "b0"},
                busy_gpu_ids=frozenset(draw(st.sets(st.integers(0, gpus - 1), max_size=3))),
            )
        )
    return out


@st.composite
def specs(draw: Any) -> MiniClusterSpec:
    per = draw(st.sampled_from((None, 1, 2, 4, 8)))
    template = None if per is None else CargoTemplate(replicas=1, gpus_per_replica=per)
    low = draw(st.integers(0, 16))
    if template is not None:
        low -= low % per  # type: ignore[operator]
    return MiniClusterSpec(
        gpu_type="H100",
        gpus=GpuRange(min=low, max=low + draw(st.integers(0, 8))),
        topology=TopologySpec(
            level=draw(st.sampled_from(("rack", "node", "block"))),
            mode=draw(st.sampled_from(list(TopologyMode))),
        ),
        priority=draw(st.integers(0, 2)),
        template=template,
    )


@settings(max_examples=150, deadline=None)
@given(nodes(), st.lists(specs(), max_size=3), specs())
def test_a_dry_run_says_what_admission_then_does(
    cluster: list[NodeInventory], others: list[MiniClusterSpec], spec: MiniClusterSpec
) -> None:
    engine = Engine()
    for node in cluster:
        engine.upsert_node(node)
    for i, other in enumerate(others):
        engine.submit_minicluster(service.minicluster_request(f"t/o{i}", other, float(i)))
    engine.admit()

    dry = service.dry_run_minicluster(engine, "t", spec)

    engine.submit_minicluster(service.minicluster_request("t/new", spec, 1e12))
    decided = {d.key: d for d in engine.admit()}
    admitted = engine.is_admitted("t/new")
    assert (dry.outcome is Outcome.ADMITTED) == admitted, (dry, decided.get("t/new"))
    if admitted:
        assert sum(map(len, dry.reservation.values())) == sum(
            map(len, engine.reservation("t/new").values())
        )
