"""``spec.replicas`` promises its template cargos their GPUs before a decision pass makes them:
a cargo created, or a grow, right after a scale-up (on this server or another one of the
database, whose pass may run later) cannot take that room past ``gpus.max``, and a scale-up
cannot promise room the MiniCluster's other cargos hold.

Servers without hosts: every cargo waits Pending, which needs no Docker daemon.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from crane.docker.pass_lock import PassLock
from tests.dockerd import DockerServer

MAX = 8
TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}
MC = {
    "name": "p",
    "spec": {
        "gpuType": "H100",
        "gpus": {"min": 0, "max": MAX},
        "template": {"gpusPerReplica": 1, "template": TEMPLATE},
        "replicas": 0,
    },
}
BIG = {"name": "big", "spec": {"miniCluster": "p", "gpusPerReplica": 6, "template": TEMPLATE}}


def _asked(api: httpx.Client | TestClient) -> tuple[list[str], int]:
    """The MiniCluster's cargos and the GPUs they ask for in all."""
    items: list[dict[str, Any]] = api.get("/v1/cargos", params={"miniCluster": "p"}).json()["items"]
    gpus = sum(c["spec"]["replicas"] * c["spec"]["gpusPerReplica"] for c in items)
    return sorted(c["name"] for c in items), gpus


def test_room_promised_by_a_scale_up_is_not_given_before_its_cargos_exist(
    two_servers: list[DockerServer], database_url: str
) -> None:
    """While another server's pass runs (here: the test holds the pass lock), a scale-up to
    gpus.max on one server, then a grow by 4 and a 6-GPU cargo on the other: the grow is
    denied (it was a 500: the replicas it raised failed the spec's own check) and the cargo
    refused (422; it was created, and the MiniCluster asked for 14 GPUs of its 8)."""
    first, second = (s.client() for s in two_servers)
    with first, second:
        assert first.post("/v1/miniclusters", json=MC).status_code == 201
        with PassLock(create_engine(database_url)).held() as mine:
            assert mine
            scaled = first.patch("/v1/miniclusters/p", json={"replicas": MAX})
            assert scaled.status_code == 200, scaled.text
            grown = second.post("/v1/miniclusters/p:grow", json={"count": 4, "allowPending": True})
            assert grown.status_code == 200, grown.text
            assert grown.json()["result"] == "denied", grown.text
            made = second.post("/v1/cargos", json=BIG)
            assert made.status_code == 422, made.text
            assert "over gpus.max" in made.json()["detail"]
        wanted = [f"p-{i}" for i in range(MAX)]
        deadline = time.monotonic() + 60
        while (seen := _asked(first))[0] != sorted(wanted):
            assert time.monotonic() < deadline, seen
            time.sleep(0.2)
        assert seen[1] == MAX
        assert second.get("/v1/miniclusters/p").json()["spec"]["replicas"] == MAX


def test_a_scale_up_past_gpus_max_with_the_other_cargos_is_422_and_changes_nothing(
    local_api: TestClient,
) -> None:
    """A 6-GPU cargo, then replicas 8 of a 1-GPU template under gpus.max 8: 422 naming
    replicas (it was a 200, and 14 GPUs asked for, 6 of them never to be placed), and the
    spec keeps its replicas; replicas 2 still fits."""
    assert local_api.post("/v1/miniclusters", json=MC).status_code == 201
    assert local_api.post("/v1/cargos", json=BIG).status_code == 201
    refused = local_api.patch("/v1/miniclusters/p", json={"replicas": MAX})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["loc"] == ["body", "replicas"]
    assert "14 GPUs" in refused.json()["detail"]
    assert local_api.get("/v1/miniclusters/p").json()["spec"]["replicas"] == 0
    assert _asked(local_api) == (["big"], 6)
    fits = local_api.patch("/v1/miniclusters/p", json={"replicas": 2})
    assert fits.status_code == 200, fits.text
    assert local_api.patch("/v1/miniclusters/p", json={"priority": 3}).status_code == 200
