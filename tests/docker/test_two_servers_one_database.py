"""Two Docker-mode servers on one database (a second ``crane serve`` for availability, or one
started by mistake) never give the same GPU to two cargos: every reconcile pass, whichever
server runs it, works on what the other committed.

Real ``crane serve --backend docker`` processes on one SQLite file or one PostgreSQL database,
two real dockerd hosts.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from crane.api.db import make_engine
from crane.docker import labels as L
from crane.docker.containers import managed_containers
from crane.docker.hosts import HostSpec
from crane.docker.pass_lock import PassLock
from tests.dockerd import IMAGE, DockerServer, serve_docker, serving

ADMIN = "crane_twoserv_" + "a" * 43
HOST_GPUS = 4
CARGOS = 20
SHORT = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "1"]}]}}


@pytest.fixture
def servers(
    database_url: str, host_specs: list[HostSpec], tmp_path: Path
) -> Iterator[list[DockerServer]]:
    """Two servers on one fresh database, serving two 4-GPU hosts."""
    url = database_url
    hosts = host_specs[:2]
    wire = [
        {"name": h.name, "dockerHost": h.url, "gpus": HOST_GPUS, "gpuType": "NVIDIA-H100-80GB-HBM3"}
        for h in hosts
    ]
    with serving(tmp_path, ADMIN, hosts, wire, database_url=url) as first:
        second = serve_docker(tmp_path, ADMIN, [], database_url=url, name="second")
        try:
            yield [first, second]
        finally:
            second.stop()


def _live_gpus(host_specs: list[HostSpec]) -> Counter[tuple[str, str]]:
    """(host, GPU id) of every live Crane replica container, counted."""
    held: Counter[tuple[str, str]] = Counter()
    for spec in host_specs[:2]:
        with closing(docker.DockerClient(base_url=spec.url)) as client:
            for c in managed_containers(client):
                if c.status in ("created", "running", "restarting", "paused"):
                    for gpu in filter(None, c.labels.get(L.GPU_IDS, "").split(",")):
                        held[(spec.name, gpu)] += 1
    return held


def _placed_gpus(cargos: list[dict[str, Any]]) -> Counter[tuple[str, int]]:
    """(host, GPU id) placed to a cargo that holds them (Placed or Running), counted."""
    held: Counter[tuple[str, int]] = Counter()
    for c in cargos:
        if c["status"]["phase"] not in ("Placed", "Running"):
            continue
        for p in c["status"].get("placement") or []:
            for gpu in p["gpuIds"]:
                held[(p["node"], gpu)] += 1
    return held


def test_two_servers_on_one_database_never_give_a_gpu_twice(
    servers: list[DockerServer], host_specs: list[HostSpec]
) -> None:
    apis = [s.client() for s in servers]
    try:
        made = apis[0].post(
            "/v1/miniclusters",
            json={"name": "race", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 64}}},
        )
        assert made.status_code == 201, made.text
        stop = threading.Event()

        def passes(api: httpx.Client) -> None:
            while not stop.is_set():
                api.get("/v1/nodes")  # each read runs a reconcile pass on that server

        hammer = [threading.Thread(target=passes, args=(a,), daemon=True) for a in apis]
        for t in hammer:
            t.start()
        for i in range(CARGOS):
            body = {
                "name": f"c{i}",
                "spec": {
                    "miniCluster": "race",
                    "replicas": 1,
                    "gpusPerReplica": 1,
                    "template": SHORT,
                },
            }
            created = apis[i % 2].post("/v1/cargos", json=body)
            assert created.status_code == 201, created.text
        worst_placed: Counter[tuple[str, int]] = Counter()
        worst_live: Counter[tuple[str, str]] = Counter()
        deadline = time.monotonic() + 120
        while True:
            cargos = apis[1].get("/v1/cargos").json()["items"]
            worst_placed |= _placed_gpus(cargos)
            worst_live |= _live_gpus(host_specs)
            done = sum(c["status"]["phase"] == "Succeeded" for c in cargos)
            if done == CARGOS or time.monotonic() > deadline:
                break
        stop.set()
        for t in hammer:
            t.join(30)
        twice = {k: n for k, n in (worst_placed | worst_live).items() if n > 1}
        assert not twice, f"GPUs given twice: {twice}"
        assert done == CARGOS, [(c["name"], c["status"]) for c in cargos]
    finally:
        for api in apis:
            api.close()


@contextmanager
def _taken(lock: PassLock) -> Iterator[None]:
    """Hold ``lock`` as another server's pass would, once the servers' own passes let it go."""
    deadline = time.monotonic() + 60
    while True:
        with lock.held() as mine:
            if mine:
                yield
                return
        assert time.monotonic() < deadline, "the servers' passes never let the pass lock go"
        time.sleep(0.05)


def test_a_server_places_nothing_while_another_servers_pass_holds_the_database(
    servers: list[DockerServer], database_url: str
) -> None:
    """The deterministic half of the race above: while a pass of another server is deciding
    (it holds the pass lock), neither server places a cargo; once it ends, one does."""
    apis = [s.client() for s in servers]
    other = PassLock(make_engine(database_url))
    try:
        made = apis[0].post(
            "/v1/miniclusters",
            json={"name": "held", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 8}}},
        )
        assert made.status_code == 201, made.text
        with _taken(other):
            body = {
                "name": "waits",
                "spec": {
                    "miniCluster": "held",
                    "replicas": 1,
                    "gpusPerReplica": 1,
                    "template": SHORT,
                },
            }
            assert apis[1].post("/v1/cargos", json=body).status_code == 201
            for _ in range(5):  # reads that run a pass on each server, each finding the lock taken
                for api in apis:
                    assert api.get("/v1/nodes").status_code == 200
            status = apis[0].get("/v1/cargos/waits").json()["status"]
            assert status["phase"] == "Pending" and not status.get("placement"), status
        deadline = time.monotonic() + 60
        while apis[0].get("/v1/cargos/waits").json()["status"]["phase"] == "Pending":
            assert time.monotonic() < deadline, "never placed once the lock was free"
            apis[1].get("/v1/nodes")
    finally:
        for api in apis:
            api.close()


def test_a_grow_waits_for_another_servers_pass_instead_of_denying_free_gpus(
    servers: list[DockerServer], database_url: str
) -> None:
    """A ``:grow`` (no ``allowPending``) decides from the pass it runs. While another server's
    pass holds the database, it waits for it and is then granted the free GPUs: it used to
    skip its pass and deny the cargo, "cannot be placed now", with every GPU free."""
    apis = [s.client() for s in servers]
    other = PassLock(make_engine(database_url))
    long = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["sleep", "600"]}]}}
    answers: list[httpx.Response] = []
    try:
        made = apis[0].post(
            "/v1/miniclusters",
            json={
                "name": "grows",
                "spec": {
                    "gpuType": "H100",
                    "gpus": {"min": 0, "max": 8},
                    "template": {"replicas": 1, "gpusPerReplica": 1, "template": long},
                },
            },
        )
        assert made.status_code == 201, made.text
        with _taken(other):
            grow = threading.Thread(
                target=lambda: answers.append(
                    apis[1].post("/v1/miniclusters/grows:grow", json={"count": 1})
                ),
                daemon=True,
            )
            grow.start()
            deadline = time.monotonic() + 60
            while not answers and (
                apis[0].get("/v1/miniclusters/grows").json()["spec"].get("replicas") != 1
            ):
                assert time.monotonic() < deadline, "the grow stored no decision"
                time.sleep(0.05)
            # the grow has stored its decision (replicas 1) and runs its pass now: while the
            # other pass holds the database, it must not answer (a denial here is the failure)
            grow.join(5)
            assert not answers or answers[0].json()["result"] == "granted", answers[0].text
        grow.join(120)
        assert answers, "the grow never answered once the lock was free"
        body = answers[0].json()
        assert answers[0].status_code == 200 and body["result"] == "granted", body
        cargo = apis[0].get(f"/v1/cargos/{body['cargos'][0]['name']}").json()
        assert cargo["status"]["phase"] in ("Placed", "Running"), cargo["status"]
    finally:
        apis[0].delete("/v1/miniclusters/grows")
        for api in apis:
            api.close()
