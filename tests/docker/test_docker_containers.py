"""The container layer against real dockerd: names, env, labels and the MiniCluster network."""

from __future__ import annotations

import time

import docker

from crane.docker import labels as L
from crane.docker.containers import ContainerTemplate, ReplicaSpec, run_replica

IMAGE = "crane-test:busybox"


def _replica(replica: int, command: list[str], gpu_ids: tuple[int, ...] = (0,)) -> ReplicaSpec:
    return ReplicaSpec(
        tenant="t1",
        minicluster="mc",
        minicluster_uid="u-mc",
        cargo="mc-0",
        cargo_uid="u-c",
        replica=replica,
        replicas=2,
        gpu_ids=gpu_ids,
        simulated=True,
        template=ContainerTemplate(IMAGE, command),
        restart_policy="Never",
    )


def _wait_exit(container: docker.models.containers.Container, seconds: float = 20) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        container.reload()
        if container.status == "exited":
            return int(container.attrs["State"]["ExitCode"])
        time.sleep(0.2)
    raise AssertionError(f"{container.name} still {container.status} after {seconds}s")


def test_replica_one_reaches_replica_zero_by_name(clients: dict[str, docker.DockerClient]) -> None:
    client = clients["h0"]
    server = (
        "mkdir -p /w && echo rank-$RANK-of-$WORLD_SIZE > /w/index.html"
        " && httpd -f -p $MASTER_PORT -h /w"
    )
    r0 = run_replica(client, _replica(0, ["sh", "-c", server]))
    client_loop = (
        "for i in $(seq 50); do wget -qO- http://$MASTER_ADDR:$MASTER_PORT/ && exit 0;"
        " sleep 0.2; done; exit 1"
    )
    r1 = run_replica(client, _replica(1, ["sh", "-c", client_loop], (1,)))
    assert _wait_exit(r1) == 0
    assert r1.logs().decode().strip() == "rank-0-of-2"
    assert r0.status == "running"
    assert r0.name == "crane.t1.mc-0-0"
    assert set(r0.attrs["NetworkSettings"]["Networks"]) == {L.network_name("t1", "mc")}


def test_replica_env_and_labels_carry_placement(clients: dict[str, docker.DockerClient]) -> None:
    client = clients["h1"]
    c = run_replica(client, _replica(1, ["sh", "-c", "env"], gpu_ids=(4, 5)))
    assert _wait_exit(c) == 0
    env = dict(line.split("=", 1) for line in c.logs().decode().splitlines() if "=" in line)
    assert env["CUDA_VISIBLE_DEVICES"] == "4,5"
    assert env["CRANE_GPU_IDS"] == "4,5"
    assert (env["RANK"], env["WORLD_SIZE"], env["MASTER_ADDR"]) == ("1", "2", "mc-0-0")
    assert c.labels[L.GPU_IDS] == "4,5"
    assert c.labels[L.CARGO] == "mc-0"
    assert c.attrs["HostConfig"]["DeviceRequests"] is None


def test_running_a_replica_twice_adopts_the_first_container(
    clients: dict[str, docker.DockerClient],
) -> None:
    client = clients["h2"]
    first = run_replica(client, _replica(0, ["sleep", "60"]))
    second = run_replica(client, _replica(0, ["sleep", "60"]))
    assert first.id == second.id
    assert len(client.containers.list(filters={"label": f"{L.CARGO_UID}=u-c"})) == 1
