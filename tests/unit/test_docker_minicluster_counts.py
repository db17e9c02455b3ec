"""A Docker MiniCluster's status counts as the Kubernetes one does: a cargo being deleted is no
longer one of its cargos, while the GPUs its stopping containers hold stay in ``inUseGpus``
(Docker mode dropped them at once: ``inUseGpus`` 4 while 8 were held)."""

from __future__ import annotations

import json

from sqlmodel import Session

from crane.api.db import make_engine, migrate
from crane.docker.api_views import minicluster_out
from crane.docker.store import CargoRow, MiniClusterRow
from crane.model import CargoSpec, MiniClusterSpec


def _cargo(name: str, gpu: int, deleting: bool) -> CargoRow:
    spec = CargoSpec.model_validate(
        {
            "miniCluster": "mc",
            "gpusPerReplica": 4,
            "template": {"spec": {"containers": [{"name": "m", "image": "busybox"}]}},
        }
    )
    placement = [{"replica": 0, "node": "h0", "gpuIds": list(range(gpu, gpu + 4))}]
    return CargoRow(
        tenant="t",
        name=name,
        minicluster="mc",
        spec=spec.model_dump_json(by_alias=True),
        phase="Running",
        placement=json.dumps(placement),
        deleting=deleting,
    )


def test_a_cargo_being_deleted_leaves_the_counts_but_not_the_gpus_in_use() -> None:
    db = make_engine("sqlite://")
    migrate(db)
    spec = MiniClusterSpec.model_validate({"gpuType": "H100", "gpus": {"min": 0, "max": 8}})
    with Session(db) as s:
        mc = MiniClusterRow(tenant="t", name="mc", spec=spec.model_dump_json(by_alias=True))
        s.add(mc)
        s.add(_cargo("keep", 0, deleting=False))
        s.add(_cargo("going", 4, deleting=True))
        s.commit()
        status = minicluster_out(s, mc).status
    assert (status.cargos, status.ready_cargos, status.in_use_gpus) == (1, 1, 8), status
