"""One elastic world per MiniCluster in Docker mode (issue 13, items 1 and 2), on a real dockerd:
every replica of every cargo gets the MiniCluster's rendezvous env, Crane runs the rendezvous
store container on the MiniCluster's network, and a cargo removed by a shrink or a preemption
finds the notice in ``/crane/notice`` while it still runs, within its grace period."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from docker.models.containers import Container

from crane.docker import labels as L
from crane.docker.containers import managed_containers
from crane.docker.hosts import HostSpec
from tests.dockerd import IMAGE, DockerServer, cli, import_busybox_image, serving

ADMIN = "crane_elastic_" + "w" * 43
STAYS = ["sh", "-c", "trap 'echo term' TERM; while true; do sleep 1; done"]
"""Keeps running after SIGTERM (a training loop writing its checkpoint), until SIGKILL."""
GRACE = 30


@pytest.fixture(scope="module")
def h0(host_specs: list[HostSpec]) -> HostSpec:
    return host_specs[0]


@pytest.fixture(scope="module")
def server(h0: HostSpec, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerServer]:
    """h0 (8 H100) alone."""
    with serving(tmp_path_factory.mktemp("world"), ADMIN, [h0]) as running:
        yield running


def _until(check: Callable[[], Any], what: str, seconds: float = 90) -> Any:
    deadline = time.monotonic() + seconds
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)
    return got


def _world_spec(
    image: str, gpus: tuple[int, int], cargos: int, per_cargo: int, gpus_per_replica: int
) -> dict[str, Any]:
    """A MiniCluster of ``cargos`` template cargos of ``per_cargo`` replicas running
    :data:`STAYS` in ``image``, with ``gpus`` (min, max) H100 GPUs and one elastic world."""
    template = {"spec": {"containers": [{"name": "main", "image": image, "command": STAYS}]}}
    return {
        "gpuType": "H100",
        "gpus": {"min": gpus[0], "max": gpus[1]},
        "replicas": cargos,
        "template": {
            "replicas": per_cargo,
            "gpusPerReplica": gpus_per_replica,
            "template": template,
        },
        "rendezvous": {"enabled": True},
    }


def _env(container: Container) -> dict[str, str]:
    container.reload()
    pairs = (item.partition("=") for item in container.attrs["Config"]["Env"])
    return {k: v for k, _, v in pairs}


def test_one_world_across_cargos_with_its_store_and_a_notice_before_a_shrink(
    server: DockerServer, h0: HostSpec
) -> None:
    engine = docker.DockerClient(base_url=h0.url)
    spec = _world_spec(IMAGE, gpus=(4, 8), cargos=2, per_cargo=2, gpus_per_replica=2)
    with server.client() as api:
        created = api.post("/v1/miniclusters", json={"name": "world", "spec": spec})
        assert created.status_code == 201, created.text
        try:
            _check(api, engine)
        finally:
            api.delete("/v1/miniclusters/world")
        _until(
            lambda: not [c for c in managed_containers(engine) if "world" in str(c.name)],
            "the MiniCluster's containers, the store's too, gone with it",
            seconds=GRACE + 90,
        )


def _replicas(engine: docker.DockerClient) -> dict[str, Container]:
    return {
        str(c.name): c
        for c in managed_containers(engine)
        if c.labels.get(L.MINICLUSTER) == "world" and c.labels.get(L.CARGO)
    }


def _check(api: httpx.Client, engine: docker.DockerClient) -> None:
    def running() -> dict[str, Container] | None:
        found = _replicas(engine)
        return (
            found
            if len(found) == 4 and all(c.status == "running" for c in found.values())
            else None
        )

    four: dict[str, Container] = _until(running, "4 replicas of 2 cargos running")
    envs = {name: _env(c) for name, c in four.items()}
    uid = next(iter(four.values())).labels[L.MINICLUSTER_UID]
    for name, got in envs.items():
        assert got["CRANE_RDZV_ENDPOINT"] == "world-rdzv:29400", name
        assert got["CRANE_RDZV_ID"] == uid, name
        assert got["CRANE_RDZV_BACKEND"] == "c10d", name
        assert got["CRANE_NNODES"] == "2:4", name  # 1 to 2 cargos of 2 replicas
        assert got["CRANE_NOTICE_FILE"] == "/crane/notice", name
        assert got["MASTER_ADDR"] == f"{got['CRANE_CARGO']}-0", "the gang-local world stays"
    assert {e["CRANE_CARGO"] for e in envs.values()} == {"world-0", "world-1"}

    [store] = _until(
        lambda: [c for c in managed_containers(engine) if c.labels.get(L.RENDEZVOUS) == uid],
        "the rendezvous store's container",
    )
    store.reload()
    assert store.labels[L.MINICLUSTER] == "world"
    assert store.attrs["Config"]["Image"] == IMAGE
    command = store.attrs["Config"]["Cmd"]
    assert command[:2] == ["python3", "-c"] and "TCPStore('0.0.0.0', 29400" in command[2]
    networks = store.attrs["NetworkSettings"]["Networks"]
    [network] = [n for n in networks if n.endswith(".world")]
    assert "world-rdzv" in (networks[network].get("Aliases") or [])
    assert store.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"

    shrunk = api.post("/v1/miniclusters/world:shrink", json={"count": 1, "gracePeriodSeconds": 30})
    assert shrunk.status_code == 200, shrunk.text
    assert shrunk.json()["removed"] == ["world-1"]
    asked = datetime.now(UTC)
    leaving = [c for name, c in four.items() if envs[name]["CRANE_CARGO"] == "world-1"]

    def notice(container: Container) -> dict[str, Any] | None:
        code, out = container.exec_run(["cat", "/crane/notice"])
        return json.loads(out) if code == 0 and out.strip() else None

    for container in leaving:
        seen = _until(lambda c=container: notice(c), f"the notice in {container.name}")
        container.reload()
        assert container.status == "running", "the notice comes before the container goes"
        assert seen["reason"] == "Removed" and "world-1" in seen["message"]
        deadline = datetime.fromisoformat(seen["deadline"])
        assert asked < deadline <= datetime.now(UTC) + timedelta(seconds=GRACE)
    staying = [c for name, c in four.items() if envs[name]["CRANE_CARGO"] == "world-0"]
    for container in staying:
        code, _ = container.exec_run(["test", "-e", "/crane/notice"])
        assert code != 0, "a cargo that stays gets no notice"
    _until(lambda: set(_replicas(engine)) == {c.name for c in staying}, "world-1 removed", 120)


def test_a_preempted_cargo_finds_the_notice_while_it_still_runs(
    server: DockerServer, h0: HostSpec
) -> None:
    engine = docker.DockerClient(base_url=h0.url)

    def mc(name: str, gpus: int, replicas: int, per_replica: int, priority: int) -> None:
        template = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": STAYS}]}}
        spec = {
            "gpuType": "H100",
            "gpus": {"min": 4, "max": gpus},
            "priority": priority,
            "replicas": replicas,
            "template": {"replicas": 1, "gpusPerReplica": per_replica, "template": template},
        }
        created = api.post("/v1/miniclusters", json={"name": name, "spec": spec})
        assert created.status_code == 201, created.text

    def of(name: str) -> dict[str, Container]:
        return {
            str(c.name): c
            for c in managed_containers(engine)
            if c.labels.get(L.MINICLUSTER) == name and c.status == "running"
        }

    with server.client() as api:
        try:
            mc("low", 8, 2, 4, 0)  # 4 GPUs reserved, 4 borrowed
            two: dict[str, Container] = _until(
                lambda: (found := of("low")) and len(found) == 2 and found, "2 low cargos"
            )
            mc("high", 4, 1, 4, 10)
            seen: dict[str, dict[str, Any]] = {}

            def noticed() -> bool:
                for name, c in two.items():
                    code, out = c.exec_run(["cat", "/crane/notice"])
                    if code == 0 and out.strip():
                        seen[name] = json.loads(out)
                return bool(seen)

            _until(noticed, "the notice in the borrowed cargo")
            [(name, notice)] = seen.items()
            assert notice["reason"] == "Preempted" and "preempted" in notice["message"]
            _until(lambda: len(of("high")) == 1, "the preemptor running", seconds=120)
            assert name not in of("low"), "the preempted cargo's container is gone"
        finally:
            api.delete("/v1/miniclusters/high")
            api.delete("/v1/miniclusters/low")
    _until(lambda: not of("low") and not of("high"), "both gone", seconds=120)


def test_cli_creates_a_minicluster_with_one_world(
    server: DockerServer, h0: HostSpec, tmp_path: Path
) -> None:
    crane = cli(server.url, ADMIN, tmp_path)

    refused = crane("mc", "create", "nope", "--gpu-type", "H100", "--min", "4", "--rendezvous")
    assert refused.returncode != 0 and "rendezvous needs a template" in refused.stderr
    made = crane(
        *("mc", "create", "cliw", "--gpu-type", "H100", "--min", "4", "--max", "8"),
        *("--replicas", "1", "--cargo-replicas", "2", "--gpus-per-replica", "2"),
        *("--image", IMAGE, "--rendezvous", "--", "sleep", "600"),
    )
    assert made.returncode == 0, made.stderr
    try:
        got = json.loads(crane("mc", "get", "cliw", "-o", "json").stdout)
        assert got["spec"]["rendezvous"] == {"enabled": True, "port": 29400}
        engine = docker.DockerClient(base_url=h0.url)

        def worlds() -> set[str] | None:
            found = [
                _env(c)
                for c in managed_containers(engine)
                if c.labels.get(L.MINICLUSTER) == "cliw" and c.labels.get(L.CARGO)
            ]
            return {e["CRANE_NNODES"] for e in found} if len(found) == 2 else None

        assert _until(worlds, "cliw's 2 replicas") == {"2:4"}
    finally:
        crane("mc", "delete", "cliw", "--yes")


NO_TORCH = b"#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n"
"""A python3 without torch, as the rendezvous store's program meets it."""


@pytest.mark.parametrize(
    ("tag", "image", "says"),
    [
        ("nopython", "crane-test:nopython", 'exec: "python3": executable file not found'),
        (
            "notorch",
            "crane-test:notorch",
            "it exited with code 1: ModuleNotFoundError: No module named 'torch'",
        ),
        ("nosuch", "crane-test:nosuchimage", "it could not be made on h0: pulling image"),
    ],
    ids=["no-python3", "no-torch", "no-image"],
)
def test_replicas_wait_for_a_store_that_cannot_serve_and_their_cargo_says_why(
    server: DockerServer, h0: HostSpec, tag: str, image: str, says: str
) -> None:
    """The store runs the template's image: one without python3, or without torch, cannot run
    it, and one that cannot be pulled makes no store at all. The replicas were made anyway, in
    a world without a store (torchrun times out on ``<mc>-rdzv``), or waited without a word,
    while only the server's log said why. Now they wait, placed, and their cargo's message
    says what is wrong with the store."""
    if tag != "nosuch":
        files = {"bin/python3": NO_TORCH} if tag == "notorch" else None
        import_busybox_image([h0.url], "crane-test", tag, ("sh", "sleep", "echo"), files=files)
    engine = docker.DockerClient(base_url=h0.url)
    spec = _world_spec(image, gpus=(1, 1), cargos=1, per_cargo=1, gpus_per_replica=1)
    with server.client() as api:
        created = api.post("/v1/miniclusters", json={"name": tag, "spec": spec})
        assert created.status_code == 201, created.text
        try:

            def told() -> dict[str, Any] | None:
                got = api.get(f"/v1/cargos/{tag}-0")
                status = (got.json().get("status") or {}) if got.status_code == 200 else {}
                return status if says in status.get("message", "") else None

            status = _until(told, f"{tag}-0 saying why its store does not serve")
            message = status["message"]
            assert message.startswith(f"waiting for the rendezvous store of MiniCluster {tag}")
            assert "needs python3 with torch" in message, message
            assert status["phase"] == "Placed", status
            replicas = [
                c.name
                for c in managed_containers(engine)
                if c.labels.get(L.MINICLUSTER) == tag and c.labels.get(L.CARGO)
            ]
            assert replicas == [], "no replica is made for a world without a store"
        finally:
            api.delete(f"/v1/miniclusters/{tag}")
    _until(
        lambda: not [c for c in managed_containers(engine) if c.labels.get(L.MINICLUSTER) == tag],
        f"{tag}'s store gone with it",
    )
