"""A tenant's containers get no more of the host than Crane gives, on a real
``crane serve --backend docker``.

dockerd cleans a bind source before it mounts it, so ``<allowed>/../../etc`` is the host's
``/etc``; a claim name is a Docker volume name, so it must never name another tenant's volume;
NVIDIA's runtime hands out the GPUs ``NVIDIA_VISIBLE_DEVICES`` names, so only Crane sets it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from crane.docker import labels as L
from crane.docker.containers import managed_containers
from crane.docker.hosts import HostSpec
from tests.dockerd import (
    IMAGE,
    WORK,
    DockerServer,
    clean,
    host_wire,
    serve_docker,
)

ADMIN = "crane_dockmnt_" + "a" * 43


@pytest.fixture(scope="module")
def allowed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one directory the admin lets tenants bind."""
    return tmp_path_factory.mktemp("allowed")


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec], tmp_path_factory: pytest.TempPathFactory, allowed: Path
) -> Iterator[DockerServer]:
    """h0 (8 H100) with ``allowed`` as the only bind mount the admin allows."""
    urls = [host_specs[0].url]
    clean(urls)
    running = serve_docker(
        tmp_path_factory.mktemp("mounts"),
        ADMIN,
        [host_wire(host_specs[0])],
        CRANE_DOCKER_ALLOWED_MOUNTS=json.dumps([str(allowed)]),
    )
    try:
        yield running
    finally:
        running.stop()
        clean(urls)


def _tenant(admin: httpx.Client, name: str) -> httpx.Client:
    assert admin.post("/v1/tenants", json={"name": name}).status_code == 201
    minted = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": name})
    assert minted.status_code == 201, minted.text
    return httpx.Client(
        base_url=str(admin.base_url),
        headers={"Authorization": f"Bearer {minted.json()['token']}"},
        timeout=60,
    )


def _template(volume: dict[str, Any]) -> dict[str, Any]:
    main = {
        "name": "main",
        "image": IMAGE,
        "command": WORK,
        "volumeMounts": [{"name": "v", "mountPath": "/v"}],
    }
    return {"spec": {"containers": [main], "volumes": [{"name": "v", **volume}]}}


def _cargo(api: httpx.Client, mc: str, name: str, volume: dict[str, Any]) -> httpx.Response:
    body = {"name": mc, "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 2}}}
    assert api.post("/v1/miniclusters", json=body).status_code == 201
    cargo = {"miniCluster": mc, "gpusPerReplica": 1, "template": _template(volume)}
    return api.post("/v1/cargos", json={"name": name, "spec": cargo})


@pytest.mark.parametrize("climb", ["../../etc", "./../..", "sub/../../../var/run"])
def test_a_bind_that_climbs_out_of_the_allowed_directory_is_refused(
    server: DockerServer, host_specs: list[HostSpec], allowed: Path, climb: str
) -> None:
    """``<allowed>/../../etc`` is text under the allowed directory but the host's /etc once
    dockerd binds it: 422 naming the path, and no container of the cargo on the host."""
    with server.client() as admin:
        tenant = f"climb-{len(climb)}"
        with _tenant(admin, tenant) as api:
            r = _cargo(api, "m", "c", {"hostPath": {"path": f"{allowed}/{climb}"}})
            assert r.status_code == 422, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert "hostPath" in r.json()["detail"] and "'..'" in r.text
            assert api.get("/v1/cargos/c").status_code == 404
            assert api.delete("/v1/miniclusters/m").status_code == 204
    with closing(docker.DockerClient(base_url=host_specs[0].url)) as client:
        assert not [c for c in managed_containers(client) if c.labels[L.TENANT] == tenant]


def test_a_claim_never_mounts_another_tenants_volume(
    server: DockerServer, host_specs: list[HostSpec]
) -> None:
    """Tenant ``team`` asking for claim ``ml-data`` gets a volume of its own, not tenant
    ``team-ml``'s claim ``data``."""
    with (
        server.client() as admin,
        _tenant(admin, "team-ml") as owner,
        _tenant(admin, "team") as other,
    ):
        mine = _cargo(owner, "m", "c", {"persistentVolumeClaim": {"claimName": "data"}})
        theirs = _cargo(other, "m", "c", {"persistentVolumeClaim": {"claimName": "ml-data"}})
        assert (mine.status_code, theirs.status_code) == (201, 201), (mine.text, theirs.text)
        try:
            volumes: dict[str, list[str]] = {}
            deadline = time.monotonic() + 60
            with closing(docker.DockerClient(base_url=host_specs[0].url)) as client:
                while set(volumes) != {"team", "team-ml"}:
                    assert time.monotonic() < deadline, volumes
                    time.sleep(0.3)
                    volumes = {
                        c.labels[L.TENANT]: [m.get("Name") for m in c.attrs["Mounts"]]
                        for c in managed_containers(client)
                        if c.labels.get(L.CARGO) == "c" and L.RENDEZVOUS not in c.labels
                    }
            assert not set(volumes["team"]) & set(volumes["team-ml"]), volumes
        finally:
            assert owner.delete("/v1/miniclusters/m").status_code == 204
            assert other.delete("/v1/miniclusters/m").status_code == 204


def test_the_nvidia_runtime_never_reads_a_tenants_gpu_list(
    server: DockerServer, host_specs: list[HostSpec]
) -> None:
    """``NVIDIA_VISIBLE_DEVICES=all`` (a CUDA image's) alone hands every GPU of a host to a
    container where NVIDIA's runtime is the default: Crane sets the variable on every container
    it makes, the replica's own GPUs or ``void`` (declared GPUs, no GPUs, the rendezvous store);
    a template that sets it is refused at create."""
    with closing(docker.DockerClient(base_url=host_specs[0].url)) as client:
        base = client.containers.create(IMAGE, command=["true"])
        base.commit("crane-test", "cuda-like", changes=["ENV NVIDIA_VISIBLE_DEVICES=all"])
        base.remove()
    main = {"name": "main", "image": "crane-test:cuda-like", "command": WORK}
    spec = {
        "gpuType": "H100",
        "gpus": {"min": 2, "max": 2},
        "replicas": 2,
        "rendezvous": {"enabled": True},
        "template": {
            "replicas": 1,
            "gpusPerReplica": 1,
            "template": {"spec": {"containers": [main]}},
        },
    }
    with server.client() as admin, _tenant(admin, "gpuenv") as api:
        env = [{"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"}]
        asked = {"spec": {"containers": [main | {"env": env}]}}
        refused = api.post(
            "/v1/miniclusters",
            json={"name": "v", "spec": spec | {"template": spec["template"] | {"template": asked}}},
        )
        assert refused.status_code == 422 and "NVIDIA_VISIBLE_DEVICES" in refused.text
        assert api.post("/v1/miniclusters", json={"name": "w", "spec": spec}).status_code == 201
        try:
            seen: dict[str, str] = {}
            deadline = time.monotonic() + 60
            with closing(docker.DockerClient(base_url=host_specs[0].url)) as client:
                while len(seen) < 3:
                    assert time.monotonic() < deadline, seen
                    time.sleep(0.3)
                    seen = {
                        c.name: next(
                            (
                                e
                                for e in c.attrs["Config"]["Env"] or []
                                if e.startswith("NVIDIA_VIS")
                            ),
                            "NVIDIA_VISIBLE_DEVICES unset",
                        )
                        for c in managed_containers(client)
                        if c.labels[L.TENANT] == "gpuenv"
                    }
            assert set(seen.values()) == {"NVIDIA_VISIBLE_DEVICES=void"}, seen
        finally:
            assert api.delete("/v1/miniclusters/w").status_code == 204
