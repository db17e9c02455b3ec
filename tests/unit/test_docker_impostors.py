"""Containers wearing Crane's labels that Crane did not make (crane/docker/containers.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crane.docker import labels as L
from crane.docker.containers import busy_gpu_ids, is_own, own_name

REPLICA = {
    L.MANAGED: "true",
    L.TENANT: "t",
    L.MINICLUSTER: "m",
    L.CARGO: "c",
    L.CARGO_UID: "u",
    L.REPLICA: "0",
    L.GPU_IDS: "0,1",
}


@dataclass
class _Container:
    name: str
    labels: dict[str, str]
    gpus: list[str] = field(default_factory=list)
    status: str = "running"

    @property
    def attrs(self) -> dict[str, Any]:
        return {"HostConfig": {"DeviceRequests": [{"DeviceIDs": self.gpus}]}}


@dataclass
class _Containers:
    found: list[_Container]

    def list(self, **_: Any) -> list[_Container]:
        return self.found


@dataclass
class _Client:
    containers: _Containers


def test_a_container_is_crane_s_only_under_the_name_its_labels_give() -> None:
    assert own_name(REPLICA) == "crane.t.c-0"
    assert is_own(_Container("crane.t.c-0", REPLICA))
    assert not is_own(_Container("renamed", REPLICA))
    assert not is_own(_Container("crane.t.c-0", {**REPLICA, L.REPLICA: "00"}))
    assert not is_own(_Container("crane.t.c-0", {}))
    store = {L.MANAGED: "true", L.TENANT: "t", L.MINICLUSTER: "m", L.RENDEZVOUS: "mu"}
    assert is_own(_Container("crane.t.m-rdzv", store))


def test_gpus_of_a_container_passing_for_crane_s_are_busy() -> None:
    """A job started by hand with Crane's labels on real GPUs: its GPUs were not counted busy
    (every container labelled managed was taken for Crane's), so Crane gave them again."""
    client = _Client(
        _Containers(
            [
                _Container("crane.t.c-0", REPLICA, gpus=["0", "1"]),
                _Container("job", REPLICA, gpus=["2", "3"]),
                _Container("plain", {}, gpus=["4"]),
            ]
        )
    )
    assert busy_gpu_ids(client) == {2, 3, 4}  # type: ignore[arg-type]
