"""A cargo whose MiniCluster is gone (created in the moment the MiniCluster was deleted: the
API checked it, the reconciler deleted it, then the cargo's row landed) goes as the
MiniCluster's cargos went, and never stops a pass nor waits Pending forever."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from crane.api.db import make_engine, migrate
from crane.docker import store
from crane.docker.reconciler import Reconciler
from crane.docker.store import CargoRow, MiniClusterRow
from crane.model.specs import CargoSpec, MiniClusterSpec


def test_a_cargo_left_without_its_minicluster_is_deleted(tmp_path: Path) -> None:
    db = make_engine(f"sqlite:///{tmp_path / 'crane.db'}")
    migrate(db)
    spec = CargoSpec.model_validate(
        {"miniCluster": "gone", "template": {"spec": {"containers": [{"name": "m", "image": "i"}]}}}
    )
    kept = MiniClusterSpec.model_validate({"gpuType": "H100", "gpus": {"min": 0, "max": 4}})
    with Session(db) as s:
        s.add(MiniClusterRow(tenant="t", name="kept", spec=kept.model_dump_json(by_alias=True)))
        for name, mc in (("orphan", "gone"), ("fine", "kept")):
            cargo = spec.model_copy(update={"mini_cluster": mc})
            s.add(
                CargoRow(
                    tenant="t", name=name, minicluster=mc, spec=cargo.model_dump_json(by_alias=True)
                )
            )
        s.commit()
    reconciler = Reconciler(db)
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    with Session(db) as s:
        assert store.cargo(s, "t", "orphan") is None, "the cargo of a deleted MiniCluster stays"
        assert store.cargo(s, "t", "fine") is not None
