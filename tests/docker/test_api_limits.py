"""Issue 14 on the Docker backend: requests that can never fit are refused at once (422), and
concurrent creates and grows never take a MiniCluster past ``gpus.max``."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from crane.docker.hosts import HostSpec
from tests.dockerd import IMAGE, SLEEP, DockerServer, serving

ADMIN = "crane_dockapi_" + "l" * 43


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerServer]:
    """h0 and h1: 8 H100 each, in racks r1 and r2."""
    with serving(tmp_path_factory.mktemp("limits"), ADMIN, host_specs[:2]) as running:
        yield running


def _problem(answer: httpx.Response) -> str:
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return str(answer.json()["detail"])


def test_minicluster_larger_than_the_cluster_is_refused_and_the_next_is_admitted(
    admin: httpx.Client,
) -> None:
    big = {"name": "big", "spec": {"gpuType": "H100", "gpus": {"min": 100, "max": 100}}}
    detail = _problem(admin.post("/v1/miniclusters", json=big))
    assert "the cluster has 16 H100 GPUs in all" in detail
    assert admin.get("/v1/miniclusters/big").status_code == 404
    fits = {"name": "fits", "spec": {"gpuType": "H100", "gpus": {"min": 2, "max": 2}}}
    try:
        assert admin.post("/v1/miniclusters", json=fits).status_code == 201
        got = admin.get("/v1/miniclusters/fits").json()
        assert got["status"]["reservedGpus"] == 2, got
        assert got["status"].get("queuePosition") is None
    finally:
        admin.delete("/v1/miniclusters/fits")


def test_unknown_gpu_type_names_what_the_cluster_has(admin: httpx.Client) -> None:
    body = {"name": "p40", "spec": {"gpuType": "Tesla-P40", "gpus": {"min": 1, "max": 1}}}
    detail = _problem(admin.post("/v1/miniclusters", json=body))
    assert "no node has Tesla-P40 GPUs; the cluster has NVIDIA-H100-80GB-HBM3 (16 GPUs)" in detail


def test_required_rack_larger_than_any_rack_is_refused(admin: httpx.Client) -> None:
    body = {
        "name": "rack",
        "spec": {
            "gpuType": "H100",
            "gpus": {"min": 16, "max": 16},
            "topology": {"level": "rack", "mode": "Required"},
        },
    }
    assert "the largest rack has 8 H100 GPUs in all" in _problem(
        admin.post("/v1/miniclusters", json=body)
    )


def test_cargo_larger_than_max_is_refused_at_create(admin: httpx.Client) -> None:
    mc = {"name": "study", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 8}}}
    assert admin.post("/v1/miniclusters", json=mc).status_code == 201
    try:
        cargo = {
            "name": "study-1",
            "spec": {"miniCluster": "study", "replicas": 2, "gpusPerReplica": 8, "template": SLEEP},
        }
        assert "gpus.max (8)" in _problem(admin.post("/v1/cargos", json=cargo))
        assert admin.get("/v1/cargos/study-1").status_code == 404
    finally:
        admin.delete("/v1/miniclusters/study")


def test_fifty_creates_racing_fifty_grows_stay_within_max(
    admin: httpx.Client, server: DockerServer
) -> None:
    template = {"replicas": 1, "gpusPerReplica": 1, "template": SLEEP}
    mc = {
        "name": "mix",
        "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 16}, "template": template},
    }
    assert admin.post("/v1/miniclusters", json=mc).status_code == 201

    def create(i: int) -> int:
        body = {
            "spec": {"miniCluster": "mix", "replicas": 1, "gpusPerReplica": 1, "template": SLEEP}
        }
        with server.client() as api:
            if i % 2:
                answer = api.post("/v1/miniclusters/mix:grow", json={"count": 1})
                assert answer.status_code == 200, answer.text
                return 0
            answer = api.post("/v1/cargos", json=body)
            assert answer.status_code in (201, 422), answer.text
            if answer.status_code == 422:
                assert "gpus.max (16" in answer.json()["detail"]
            return answer.status_code

    try:
        with ThreadPoolExecutor(50) as pool:
            codes: list[Any] = list(pool.map(create, range(100)))
        assert 422 in codes
        cargos = admin.get("/v1/cargos", params={"miniCluster": "mix"}).json()["items"]
        asked = sum(c["spec"]["replicas"] * c["spec"]["gpusPerReplica"] for c in cargos)
        assert asked <= 16, f"{len(cargos)} cargos ask for {asked} GPUs, over max 16"
        assert asked == 16
    finally:
        assert admin.delete("/v1/miniclusters/mix").status_code == 204


@pytest.mark.parametrize(
    "container",
    [
        {"volumeMounts": [{"name": "d", "mountPath": "/"}]},
        {"volumeMounts": [{"name": "d", "mountPath": "/proc"}]},
        {"env": [{"name": "A", "value": "x\x00y"}]},
    ],
)
def test_a_template_dockerd_always_refuses_is_a_422_not_a_cargo_stuck_placed(
    admin: httpx.Client, container: dict[str, Any]
) -> None:
    """These were created (201) and the cargo stayed Placed on its GPUs for good, its
    message dockerd's error, while every pass asked dockerd again."""
    ctr = {"name": "main", "image": IMAGE, **container}
    template = {
        "spec": {
            "containers": [ctr],
            "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
        }
    }
    spec = {
        "gpuType": "H100",
        "gpus": {"min": 1, "max": 1},
        "replicas": 1,
        "template": {"replicas": 1, "gpusPerReplica": 1, "template": template},
    }
    try:
        answer = admin.post("/v1/miniclusters", json={"name": "never-made", "spec": spec})
        assert "template.spec.containers[0]" in _problem(answer)
    finally:
        admin.delete("/v1/miniclusters/never-made")
