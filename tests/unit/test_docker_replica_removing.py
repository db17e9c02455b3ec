"""A replica of a Running gang removed by hand (``docker rm -f``) while a pass looks at it: the
daemon kills the container, then removes its files (seconds with the vfs driver on a loaded
host), and meanwhile lists it as ``removing``. That pass counted it as there but not running, so
the gang read Placed ("1 of 2 replicas running"), and the next pass, finding the replica's
container gone from a Placed gang, made it again: the gang (restartPolicy Never) ran on with a
new replica instead of failing, for as long as one watched. Seen in a fresh-clone CI run with a
CPU hog beside it (tests/docker/test_docker_hands_on.py, the ``rm`` case, timed out)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from docker.errors import NotFound
from sqlmodel import Session

from crane.api.db import make_engine, migrate
from crane.docker import labels as L
from crane.docker import store
from crane.docker.containers import own_name
from crane.docker.hosts import HostSpec
from crane.docker.reconciler import Reconciler
from crane.docker.store import CargoRow, HostRow, MiniClusterRow
from crane.model import CargoPhase
from crane.model.specs import CargoSpec, MiniClusterSpec


class _Container:
    def __init__(self, replica: int, uid: str, status: str) -> None:
        self.labels = {
            L.MANAGED: "true",
            L.TENANT: "t",
            L.MINICLUSTER: "mc",
            L.CARGO: "job",
            L.CARGO_UID: uid,
            L.REPLICA: str(replica),
            L.ATTEMPT: "0",
            L.GPU_IDS: str(replica),
        }
        self.name = own_name(self.labels)
        self.id = f"id-{replica}"
        self.status = status
        self.attrs: dict[str, Any] = {
            "State": {"ExitCode": 0},
            "HostConfig": {"NetworkMode": "host"},
        }

    def stop(self, timeout: int | None = None) -> None:
        self.status = "exited"
        self.attrs["State"]["ExitCode"] = 137

    def reload(self) -> None:
        pass


class _Containers:
    def __init__(self, found: list[_Container]) -> None:
        self.found = found
        self.made: list[str] = []

    def list(self, **_: Any) -> list[_Container]:
        return list(self.found)

    def get(self, name: str) -> _Container:
        for c in self.found:
            if c.name == name:
                return c
        raise NotFound(f"no container {name}")

    def create(self, **kwargs: Any) -> Any:
        self.made.append(str(kwargs.get("name")))
        raise AssertionError(f"replica made again: {kwargs.get('name')}")

    run = create


class _Making:
    """What a client is asked only when a replica is made: refused."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a replica made again (client.networks.{name})")


class _Client:
    def __init__(self, found: list[_Container]) -> None:
        self.containers = _Containers(found)
        self.images = self
        self.networks = _Making()

    def get(self, name: str) -> object:  # images.get: the image is there
        return object()


def test_a_replica_removed_by_hand_fails_its_running_gang_and_is_not_made_again(
    tmp_path: Path,
) -> None:
    db = make_engine(f"sqlite:///{tmp_path / 'crane.db'}")
    migrate(db)
    template = {"spec": {"containers": [{"name": "m", "image": "i"}]}}
    cargo = CargoSpec.model_validate(
        {"miniCluster": "mc", "replicas": 2, "gpusPerReplica": 1, "template": template}
    )
    mc_spec = MiniClusterSpec.model_validate({"gpuType": "H100", "gpus": {"min": 2, "max": 2}})
    host = HostSpec(name="h0", url="unix:///nonexistent", gpu_product="H100", gpu_count=8)
    with Session(db) as s:
        s.add(HostRow(name="h0", spec=host.model_dump_json()))
        mc = MiniClusterRow(tenant="t", name="mc", spec=mc_spec.model_dump_json(by_alias=True))
        s.add(mc)
        row = CargoRow(
            tenant="t", name="job", minicluster="mc", spec=cargo.model_dump_json(by_alias=True)
        )
        row.phase = CargoPhase.RUNNING.value
        row.placement = (
            '[{"replica": 0, "node": "h0", "gpu_ids": [0], "borrowed": false},'
            ' {"replica": 1, "node": "h0", "gpu_ids": [1], "borrowed": false}]'
        )
        s.add(row)
        s.commit()
        uid = row.uid
    first, second = _Container(0, uid, "running"), _Container(1, uid, "removing")
    client = _Client([first, second])
    reconciler = Reconciler(db)
    clients: dict[str, Any] = {"h0": client}
    with Session(db) as s:
        row, mc = store.cargo(s, "t", "job"), store.minicluster(s, "t", "mc")
        assert row is not None and mc is not None
        reconciler._converge(s, row, mc, clients)  # sees replica 1 being removed
        client.containers.found = [first]  # then gone
        reconciler._converge(s, row, mc, clients)
        assert client.containers.made == []
        assert row.phase != CargoPhase.PLACED.value, row.message
        assert "replica 1 failed: its container is gone" in row.message, row.message
