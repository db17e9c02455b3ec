"""Docker hosts that reach each other (issue 13, item 3): each dockerd in a network namespace of
its own with its own address (hack/dockerd-netns), declared as the host's ``address``. The
containers of one MiniCluster on different hosts run with host networking: a replica reaches
``MASTER_ADDR:MASTER_PORT`` on another host and the rendezvous store at ``CRANE_RDZV_ENDPOINT``,
and two MiniClusters sharing hosts get ports of their own there.

The store runs the template's image; this one has no torch, so its ``python3`` stands in for the
store: it serves the port Crane gave the store over HTTP (tests/docker/test_torchrun_docker.py
runs the real store and torchrun)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from crane.docker import labels as L
from crane.docker.containers import managed_containers
from tests.dockerd import DockerServer, NetnsHost, clean, import_busybox_image, serve_docker

ADMIN = "crane_netns_" + "n" * 44
IMAGE = "crane-test:netns"
STORE_STANDIN = """#!/bin/sh
# stands in for the rendezvous store's python3: serves the store's port over HTTP
port=$(echo "$2" | sed -n "s/.*TCPStore('0.0.0.0', \\([0-9]*\\),.*/\\1/p")
mkdir -p /tmp/store && echo "store:$port" > /tmp/store/index.html
echo "crane rendezvous store listening on port $port"
exec httpd -f -p "$port" -h /tmp/store
"""
REPLICA = """mkdir -p /tmp/www && echo "replica-$RANK of $CRANE_CARGO" > /tmp/www/index.html
if [ "$RANK" = 0 ]; then httpd -p "$MASTER_PORT" -h /tmp/www; fi
until m=$(wget -qO- "http://$MASTER_ADDR:$MASTER_PORT/"); do sleep 0.2; done
echo "master says $m"
until r=$(wget -qO- "http://$CRANE_RDZV_ENDPOINT/"); do sleep 0.2; done
echo "store says $r"
exec sleep 100000
"""
APPLETS = ("sh", "sleep", "echo", "sed", "httpd", "wget", "mkdir", "cat")


@pytest.fixture(scope="module")
def hosts(separate_hosts: list[NetnsHost]) -> list[NetnsHost]:
    """Two of the separate hosts, with the test image."""
    chosen = separate_hosts[:2]
    import_busybox_image(
        [h.url for h in chosen],
        "crane-test",
        "netns",
        APPLETS,
        files={"bin/python3": STORE_STANDIN.encode()},
    )
    return chosen


@pytest.fixture(scope="module")
def server(
    hosts: list[NetnsHost], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerServer]:
    """Hosts n0 and n1, 12 H100 each, declaring their addresses."""
    urls = [h.url for h in hosts]
    clean(urls)
    wire = [
        {
            "name": f"n{i}",
            "dockerHost": h.url,
            "gpus": 12,
            "gpuType": "NVIDIA-H100-80GB-HBM3",
            "address": h.address,
        }
        for i, h in enumerate(hosts)
    ]
    running = serve_docker(tmp_path_factory.mktemp("netns"), ADMIN, wire)
    yield running
    running.stop()
    clean(urls)


def _until(
    check: Callable[[], Any], what: str, seconds: float = 120, seen: Callable[[], str] = str
) -> Any:
    deadline = time.monotonic() + seconds
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; {seen()}"
        time.sleep(0.3)
    return got


def _seen(engines: dict[str, docker.DockerClient]) -> str:
    """What the hosts run, with the logs' ends: the message of a failed wait."""
    return "; ".join(
        f"{host}/{c.name} {c.status}: {c.logs(tail=5).decode()!r}"
        for host, engine in engines.items()
        for c in managed_containers(engine)
    )


def _spec(replicas: int, per_replica: int, cargos: int, gpus: int) -> dict[str, Any]:
    container = {"name": "main", "image": IMAGE, "command": ["sh", "-c", REPLICA]}
    return {
        "gpuType": "H100",
        "gpus": {"min": gpus, "max": gpus},
        "replicas": cargos,
        "template": {
            "replicas": replicas,
            "gpusPerReplica": per_replica,
            "template": {"spec": {"containers": [container]}},
        },
        "rendezvous": {"enabled": True},
    }


def _env(container: Container) -> dict[str, str]:
    pairs = (item.partition("=") for item in container.attrs["Config"]["Env"])
    return {k: v for k, _, v in pairs}


def test_replicas_on_two_hosts_reach_each_other_and_the_store(
    server: DockerServer, hosts: list[NetnsHost], tmp_path: Path
) -> None:
    engines = {f"n{i}": docker.DockerClient(base_url=h.url) for i, h in enumerate(hosts)}
    address = {f"n{i}": h.address for i, h in enumerate(hosts)}
    with server.client() as api:
        # a gang of 2 x 8 GPUs cannot fit one 12-GPU host: one replica on each
        wide = api.post("/v1/miniclusters", json={"name": "wide", "spec": _spec(2, 8, 1, 16)})
        assert wide.status_code == 201, wide.text
        # two 1 x 4 cargos in the GPUs left: they share both hosts with `wide`
        small = api.post("/v1/miniclusters", json={"name": "small", "spec": _spec(1, 4, 2, 8)})
        assert small.status_code == 201, small.text
        try:
            _check(engines, address)
        finally:
            for name in ("wide", "small"):
                api.delete(f"/v1/miniclusters/{name}")
        _until(
            lambda: not any(managed_containers(e) for e in engines.values()),
            "every container gone with its MiniCluster",
        )
    for engine in engines.values():
        engine.close()


def _check(engines: dict[str, docker.DockerClient], address: dict[str, str]) -> None:
    def replicas() -> dict[str, tuple[str, Container]] | None:
        found = {
            str(c.name): (host, c)
            for host, engine in engines.items()
            for c in managed_containers(engine)
            if c.labels.get(L.CARGO)
        }
        said = {name: c.logs().decode() for name, (_, c) in found.items()}
        done = len(found) == 4 and all("store says" in text for text in said.values())
        return found if done else None

    found: dict[str, tuple[str, Container]] = _until(
        replicas,
        "4 replicas that reached their master and their store",
        seen=lambda: _seen(engines),
    )
    wide = {c.labels[L.REPLICA]: (host, c) for host, c in found.values() if "wide" in str(c.name)}
    assert {host for host, _ in wide.values()} == {"n0", "n1"}, "the gang spans both hosts"
    master_host = wide["0"][0]
    stores = {
        c.labels[L.MINICLUSTER]: (host, c)
        for host, engine in engines.items()
        for c in managed_containers(engine)
        if c.labels.get(L.RENDEZVOUS)
    }
    for host, c in found.values():
        mc = c.labels[L.MINICLUSTER]
        env = _env(c)
        assert c.attrs["HostConfig"]["NetworkMode"] == "host", c.name
        assert "NET_RAW" in (c.attrs["HostConfig"]["CapDrop"] or []), c.name
        store_host, store = stores[mc]
        endpoint = f"{address[store_host]}:{store.labels[L.PORT]}"
        assert env["CRANE_RDZV_ENDPOINT"] == endpoint, c.name
        logs = c.logs().decode()
        assert f"store says store:{store.labels[L.PORT]}" in logs, (c.name, logs)
        assert f"master says replica-0 of {c.labels[L.CARGO]}" in logs, (c.name, logs)
        assert env["MASTER_ADDR"] == address[master_host if mc == "wide" else host], c.name
    # ports Crane gave on a host are its own: no two cargos or stores share one there
    for host, engine in engines.items():
        holders: dict[str, str] = {}
        for c in managed_containers(engine):
            owner = c.labels.get(L.CARGO_UID) or c.labels[L.RENDEZVOUS]
            assert holders.setdefault(c.labels[L.PORT], owner) == owner, (host, c.name)
