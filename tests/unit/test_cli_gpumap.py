"""The GPU map: one row per node, one symbol per GPU by state, a legend with counts."""

from __future__ import annotations

from crane.cli.gpumap import SYMBOLS, colours, gpu_map, gpu_state
from crane.cli.render import render_text
from crane.client import GpuSlotOut, NodeOut

NODES = [
    NodeOut(
        name="n1",
        gpu_product="NVIDIA-H100-80GB-HBM3",
        gpu_count=4,
        gpus=[
            GpuSlotOut(id=0, reserved_for="a", mini_cluster="a", cargo="a-0"),
            GpuSlotOut(id=1, reserved_for="a"),
            GpuSlotOut(id=2, mini_cluster="b", cargo="b-0"),
            GpuSlotOut(id=3, busy=True),
        ],
    ),
    NodeOut(
        name="n2",
        gpu_product="NVIDIA-H100-80GB-HBM3",
        gpu_count=2,
        ready=False,
        gpus=[GpuSlotOut(id=1), GpuSlotOut(id=0, reserved_for="b")],
    ),
]


def test_states() -> None:
    assert [gpu_state(g) for g in NODES[0].gpus] == ["in-use", "reserved", "borrowed", "busy"]
    assert gpu_state(NODES[1].gpus[0]) == "free"


def test_map_rows_cells_in_gpu_order_and_legend() -> None:
    text = render_text(gpu_map(NODES))
    lines = text.splitlines()
    assert lines[0].split() == ["NODE", "GPU", "GPUS", "FREE", "STATE"]
    assert lines[1].split() == ["n1", "H100-80GB-HBM3", "A■", "A□", "B▲", "✕", "0/4", "ready"]
    assert lines[2].split() == ["n2", "H100-80GB-HBM3", "B□", "·", "1/2", "NotReady"]
    assert all(f"{sym} {state}" in text for state, sym in SYMBOLS.items())
    assert "A = a: 2 reserved, 1 in use, 0 borrowed" in text
    assert "B = b: 1 reserved, 0 in use, 1 borrowed" in text


def test_each_minicluster_gets_its_own_colour() -> None:
    palette = colours(NODES)
    assert list(palette) == ["a", "b"]
    assert palette["a"] != palette["b"]


def test_map_and_top_read_without_colour_at_80_columns() -> None:
    """Piped (no colour), each MiniCluster still has its own letter; long names stay whole."""
    from datetime import UTC, datetime

    from crane.cli.gpumap import top_table
    from crane.client import MiniCluster
    from crane.model.specs import MiniClusterSpec

    text = render_text(gpu_map(NODES), width=80)
    legend = [line for line in text.splitlines() if " = " in line]
    assert [line.split()[0] for line in legend] == ["A", "B"]
    assert max(len(line) for line in text.splitlines()) <= 80
    spec = MiniClusterSpec.model_validate({"gpuType": "H100", "gpus": {"min": 16, "max": 32}})
    mcs = [
        MiniCluster(name=name, tenant="t", uid=name, spec=spec, created_at=datetime.now(UTC))
        for name in ("llm-pretrain-large", "optuna-study-7")
    ]
    top = render_text(top_table(mcs), width=80)
    assert "llm-pretrain-large" in top and "optuna-study-7" in top
    assert max(len(line) for line in top.splitlines()) <= 80
    assert "█ in-use" in top and "▒ borrowed" in top
