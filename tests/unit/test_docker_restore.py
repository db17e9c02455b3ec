"""Docker mode's restore from SQL never crashes the pass on two rows claiming one GPU."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from crane.docker.scheduling import restore
from crane.docker.store import CargoRow, MiniClusterRow
from crane.placement import Engine
from tests.unit.placement_helpers import node


def cargo_row(name: str, ids: list[int], second: int) -> CargoRow:
    spec = {
        "miniCluster": "mc",
        "replicas": 1,
        "gpusPerReplica": len(ids),
        "template": {"spec": {"containers": [{"name": "m", "image": "busybox"}]}},
    }
    row = CargoRow(
        tenant="t",
        name=name,
        minicluster="mc",
        spec=json.dumps(spec),
        phase="Running",
        created_at=datetime(2026, 1, 1, 0, 0, second, tzinfo=UTC),
    )
    row.placement = json.dumps([{"replica": 0, "node": "n0", "gpuIds": ids}])
    return row


def test_two_rows_claiming_one_gpu_restore_the_earlier_and_do_not_raise() -> None:
    engine = Engine()
    engine.upsert_node(node("n0", "r0"))
    mc = MiniClusterRow(
        tenant="t", name="mc", spec=json.dumps({"gpuType": "H100", "gpus": {"min": 0, "max": 8}})
    )
    restore(engine, [mc], [cargo_row("b", [1, 2], 5), cargo_row("a", [0, 1], 1)])
    assert [p.gpu_ids for p in engine.cargo_placements("t/a")] == [[0, 1]]
    assert engine.cargo_placements("t/b") == ()
