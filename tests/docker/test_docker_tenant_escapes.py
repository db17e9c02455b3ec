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
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one directory the admin lets tenants write to (``<path>:rw``)."""
    return tmp_path_factory.mktemp("scratch")


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec],
    tmp_path_factory: pytest.TempPathFactory,
    allowed: Path,
    scratch: Path,
) -> Iterator[DockerServer]:
    """h0 (8 H100) with ``allowed`` (read-only) and ``scratch`` (writable) as the bind mounts
    the admin allows."""
    urls = [host_specs[0].url]
    clean(urls)
    running = serve_docker(
        tmp_path_factory.mktemp("mounts"),
        ADMIN,
        [host_wire(host_specs[0])],
        CRANE_DOCKER_ALLOWED_MOUNTS=json.dumps([str(allowed), f"{scratch}:rw"]),
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


def _template(
    volume: dict[str, Any], command: list[str] = WORK, read_only: bool = False
) -> dict[str, Any]:
    main = {
        "name": "main",
        "image": IMAGE,
        "command": command,
        "volumeMounts": [{"name": "v", "mountPath": "/v", "readOnly": read_only}],
    }
    return {"spec": {"containers": [main], "volumes": [{"name": "v", **volume}]}}


def _cargo(
    api: httpx.Client, mc: str, name: str, volume: dict[str, Any], **how: Any
) -> httpx.Response:
    body = {"name": mc, "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 2}}}
    if api.get(f"/v1/miniclusters/{mc}").status_code == 404:
        assert api.post("/v1/miniclusters", json=body).status_code == 201
    cargo = {"miniCluster": mc, "gpusPerReplica": 1, "template": _template(volume, **how)}
    return api.post("/v1/cargos", json={"name": name, "spec": cargo})


PLANT = ["sh", "-c", "ln -sfn / /v/link && trap 'exit 0' TERM; sleep 300 & wait"]
"""A replica that plants ``link -> /`` in its bind mount, then stays."""


def test_no_bind_can_follow_a_link_a_tenant_planted_to_the_hosts_root(
    server: DockerServer, allowed: Path, scratch: Path
) -> None:
    """The kernel follows symbolic links when it binds, and Crane checks the path as written:
    a tenant who could write ``link -> /`` into an allowed directory could bind the host's
    ``/`` with ``hostPath: <dir>/link``. A read-only root is never bound writable (nothing can
    be planted there), and nothing is bound below a writable root (where something could)."""
    with server.client() as admin, _tenant(admin, "planter") as api:
        try:
            into_read_only = _cargo(
                api, "m", "a", {"hostPath": {"path": str(allowed)}}, command=PLANT
            )
            assert into_read_only.status_code == 422, into_read_only.text
            assert "mount it with readOnly: true" in into_read_only.json()["detail"]
            planted = _cargo(api, "m", "b", {"hostPath": {"path": str(scratch)}}, command=PLANT)
            assert planted.status_code == 201, planted.text
            deadline = time.monotonic() + 120
            while not (scratch / "link").is_symlink():
                assert time.monotonic() < deadline, api.get("/v1/cargos/b").text
                time.sleep(0.2)
            for name, path in (("c", scratch / "link"), ("d", scratch / "link" / "etc")):
                escape = _cargo(api, "m", name, {"hostPath": {"path": str(path)}}, read_only=True)
                assert escape.status_code == 422, escape.text
                assert "which tenants may write to" in escape.json()["detail"], escape.text
                assert api.get(f"/v1/cargos/{name}").status_code == 404
        finally:
            assert api.delete("/v1/miniclusters/m").status_code in (204, 404)


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
