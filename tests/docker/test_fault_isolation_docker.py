"""One object whose Docker step fails stops no other: the step is rolled back, the object says
why (``Reconciled`` False, ``ReconcileError``), one log line, and the pass goes on.

Before, a MiniCluster deleted while a container Crane does not own was still on its network
(connected by hand) failed every pass where dockerd refused to remove that network: no other
MiniCluster's cargo was placed again, and the loop logged a traceback each pass."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from sqlmodel import Session

from crane.api.db import make_engine, migrate
from crane.api.schemas import CargoCreate, MiniClusterCreate
from crane.api.settings import ApiSettings, BackendKind
from crane.docker import labels as L
from crane.docker import store
from crane.docker.api_backend import DockerBackend
from crane.docker.hosts import HostSpec
from crane.docker.reconciler import Reconciler
from crane.docker.store import HostRow
from crane.model import CargoPhase, CargoSpec, MiniClusterSpec
from tests.docker.test_docker_backend import IMAGE, _until, run


@pytest.fixture
def backend(
    tmp_path: Path, host_specs: list[HostSpec], clients: dict[str, docker.DockerClient]
) -> Iterator[DockerBackend]:
    url = f"sqlite:///{tmp_path / 'crane.db'}"
    db = make_engine(url)
    migrate(db)
    with Session(db) as s:
        for spec in host_specs:
            s.add(HostRow(name=spec.name, spec=spec.model_dump_json()))
        s.commit()
    b = DockerBackend(ApiSettings(database_url=url, backend=BackendKind.DOCKER), Reconciler(db))
    yield b
    b.reconciler.stop()


def _mc_with_cargo(backend: DockerBackend, name: str) -> None:
    spec = MiniClusterSpec(gpu_type="H100", gpus={"min": 8, "max": 8})
    run(backend.create_minicluster("t1", MiniClusterCreate(name=name, spec=spec)))
    main = {"name": "main", "image": IMAGE, "command": ["sh", "-c", "sleep 300"]}
    cargo = CargoSpec(
        mini_cluster=name, replicas=1, gpus_per_replica=8, template={"spec": {"containers": [main]}}
    )
    run(backend.create_cargo("t1", CargoCreate(name=f"{name}-job", spec=cargo)))
    with Session(backend.db) as s:
        row = store.cargo(s, "t1", f"{name}-job")
        assert row is not None
        row.grace_seconds = 0
        s.add(row)
        s.commit()


def _phase(backend: DockerBackend, name: str) -> str | None:
    with Session(backend.db) as s:
        row = store.cargo(s, "t1", name)
        return row.phase if row is not None else None


def test_a_network_dockerd_will_not_remove_stops_no_other_minicluster(
    backend: DockerBackend,
    clients: dict[str, docker.DockerClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _mc_with_cargo(backend, "gone")

    def running(name: str) -> bool:
        backend.reconciler.reconcile_once()
        return _phase(backend, name) == CargoPhase.RUNNING.value

    _until(lambda: running("gone-job"), 60)
    network = L.network_name("t1", "gone")
    host = next(c for c in clients.values() if c.networks.list(names=[network]))
    foreign = host.containers.run(IMAGE, ["sleep", "300"], detach=True, name="foreign-on-net")
    try:
        host.networks.get(network).connect(foreign)
        run(backend.delete_minicluster("t1", "gone"))
        with caplog.at_level(logging.WARNING, logger="crane.docker"):
            _until(lambda: not running("gone-job") and _phase(backend, "gone-job") is None, 30)
            _mc_with_cargo(backend, "next")
            _until(lambda: running("next-job"), 60)
        with Session(backend.db) as s:
            mc = store.minicluster(s, "t1", "gone")
            assert mc is not None, "dockerd kept the network: the MiniCluster waits for it"
            cond = next(c for c in store.stored_conditions(mc.conditions) if c.type == "Reconciled")
            assert (cond.status.value, cond.reason) == ("False", "ReconcileError")
            assert "network" in cond.message, cond.message
        said = [r.getMessage() for r in caplog.records if "MiniCluster t1/gone" in r.getMessage()]
        assert len(said) == 1, f"logged once, not each pass: {said}"
    finally:
        host.networks.get(network).disconnect(foreign, force=True)
        foreign.remove(force=True)

    def network_gone() -> bool:
        backend.reconciler.reconcile_once()
        return not host.networks.list(names=[network])

    _until(network_gone, 30)
    assert running("next-job")
    with Session(backend.db) as s:
        assert store.minicluster(s, "t1", "gone") is None, "deleted once dockerd lets it"


def test_a_deleted_minicluster_whose_rows_cannot_be_read_leaves_nothing_behind(
    backend: DockerBackend, clients: dict[str, docker.DockerClient]
) -> None:
    """A MiniCluster and its running cargo whose rows were edited by hand into something that
    cannot be read are left as they are, containers and GPUs too; deleting the MiniCluster
    through the API removes both rows, the cargo's containers and the MiniCluster's network,
    and frees its GPUs. Before, the delete answered 409 and everything stayed."""
    _mc_with_cargo(backend, "torn")

    def running(name: str) -> bool:
        backend.reconciler.reconcile_once()
        return _phase(backend, name) == CargoPhase.RUNNING.value

    _until(lambda: running("torn-job"), 60)
    with Session(backend.db) as s:
        cargo = store.cargo(s, "t1", "torn-job")
        mc = store.minicluster(s, "t1", "torn")
        assert cargo is not None and mc is not None
        uid = cargo.uid
        cargo.spec, mc.spec = '{"miniCluster": ', "["
        s.add_all([cargo, mc])
        s.commit()
    network = L.network_name("t1", "torn")

    def left() -> list[str]:
        found = [
            c.name
            for client in clients.values()
            for c in client.containers.list(all=True, filters={"label": f"{L.CARGO_UID}={uid}"})
        ]
        return found + [network for c in clients.values() if c.networks.list(names=[network])]

    backend.reconciler.reconcile_once()
    assert left(), "a row that cannot be read leaves its containers as they are"
    run(backend.delete_minicluster("t1", "torn"))

    def gone() -> bool:
        backend.reconciler.reconcile_once()
        with Session(backend.db) as s:
            rows = store.minicluster(s, "t1", "torn"), store.cargo(s, "t1", "torn-job")
        return rows == (None, None) and not left()

    _until(gone, 60)
    for name in ("next", "other"):  # a whole H100 host each: both only once torn's are free
        _mc_with_cargo(backend, name)
    _until(lambda: running("next-job") and running("other-job"), 60)
