"""Docker mode holds every container it makes to the tenant's Pod Security level as it is when
the container is made, as Kubernetes mode holds every pod (Pod Security Admission checks each
pod at creation): a cargo stored under an open level and made after an admin raised it fails
with reason PodSecurity and Kubernetes mode's message, and no container of it is made.

Docker mode takes no securityContext, so every template breaks ``restricted`` (what ``baseline``
refuses beyond ``privileged``, a ulimit raising the scheduling priority, the test daemons cannot
run: tests/unit/test_creation_level.py checks it). A real ``crane serve --backend docker`` on one
dockerd host with 2 H100.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import httpx
import pytest

from crane.docker import labels as L
from crane.docker.containers import labelled_containers
from crane.docker.hosts import HostSpec
from crane.model.podsecurity import docker_violations, pod_security_message
from tests.dockerd import SLEEP, DockerServer, serving

ADMIN = "crane_podsec_" + "p" * 43
TIMEOUT = 90.0


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerServer]:
    host = host_specs[0]
    wire = [{"name": host.name, "dockerHost": host.url, "gpus": 2, "gpuType": host.gpu_product}]
    with serving(tmp_path_factory.mktemp("podsec"), ADMIN, [host], wire) as running:
        yield running


@pytest.fixture
def docker_host(host_specs: list[HostSpec]) -> Iterator[docker.DockerClient]:
    client = docker.DockerClient(base_url=host_specs[0].url)
    yield client
    client.close()


@pytest.fixture
def tenant(
    server: DockerServer, request: pytest.FixtureRequest
) -> Iterator[tuple[httpx.Client, httpx.Client, str]]:
    """(admin, tenant client, tenant name): a tenant of its own at ``baseline`` for the test;
    its MiniClusters and the tenant itself go afterwards."""
    name = "psa-" + request.node.name.removeprefix("test_")[:20].replace("_", "-").strip("-")
    with server.client() as admin:
        created = admin.post("/v1/tenants", json={"name": name, "podSecurity": "baseline"})
        assert created.status_code == 201, created.text
        minted = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": name})
        assert minted.status_code == 201, minted.text
        with server.client(minted.json()["token"]) as api:
            yield admin, api, name
            for mc in api.get("/v1/miniclusters").json()["items"]:
                api.delete(f"/v1/miniclusters/{mc['name']}")
            _until(lambda: admin.delete(f"/v1/tenants/{name}").status_code == 204, api, "cleanup")


def _until(check: Callable[[], Any], api: httpx.Client, what: str) -> Any:
    """Poll ``check`` until it holds; each try runs a reconcile pass (``/v1/nodes`` does)."""
    deadline = time.monotonic() + TIMEOUT
    while not (got := check()):
        seen = api.get("/v1/cargos").json()
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {seen}"
        api.get("/v1/nodes")  # runs a pass
        time.sleep(0.3)
    return got


def _status(api: httpx.Client, name: str) -> dict[str, Any]:
    got = api.get(f"/v1/cargos/{name}")
    return dict(got.json()["status"]) if got.status_code == 200 else {}


def _phase(api: httpx.Client, name: str) -> str | None:
    return _status(api, name).get("phase")


def _level(admin: httpx.Client, tenant: str, level: str) -> None:
    patched = admin.patch(f"/v1/tenants/{tenant}", json={"podSecurity": level})
    assert patched.status_code == 200, patched.text


def _made(client: docker.DockerClient, tenant: str, cargo: str) -> list[dict[str, str]]:
    """The labels of every container Crane made for the tenant's cargo (any state)."""
    return [
        dict(c.labels)
        for c in labelled_containers(client)
        if c.labels.get(L.TENANT) == tenant and c.labels.get(L.CARGO) == cargo
    ]


def _refused_as_kubernetes_does(api: httpx.Client, name: str, template: Any, level: str) -> None:
    """The cargo failed with reason PodSecurity and Kubernetes mode's message."""
    status = _status(api, name)
    expected = pod_security_message(level, docker_violations(template, level))
    assert status["phase"] == "Failed", status
    assert status["message"] == expected, status
    [failed] = [c for c in status["conditions"] if c["type"] == "Failed"]
    assert (failed["status"], failed["reason"], failed["message"]) == (
        "True",
        "PodSecurity",
        expected,
    ), status
    assert status["placement"] == [], status


def test_a_queued_cargo_made_after_the_level_was_raised_fails_with_pod_security(
    tenant: tuple[httpx.Client, httpx.Client, str], docker_host: docker.DockerClient
) -> None:
    """The host full (another MiniCluster's cargo holds both GPUs): the queued cargo waits; the
    admin raises the tenant to restricted; the GPUs free. The queued cargo fails (PodSecurity)
    without a container, and a cargo sent under the new level is refused at the API."""
    admin, api, name = tenant
    for mc, gpus in (("hog", 2), ("full", 1)):
        body = {"name": mc, "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": gpus}}}
        assert api.post("/v1/miniclusters", json=body).status_code == 201
    for cargo, mc, gpus in (("first", "hog", 2), ("queued", "full", 1)):
        shape = {"miniCluster": mc, "gpusPerReplica": gpus, "template": SLEEP}
        made = api.post("/v1/cargos", json={"name": cargo, "spec": shape})
        assert made.status_code == 201, made.text
    _until(lambda: _phase(api, "first") == "Running", api, "first running")
    _until(lambda: _status(api, "queued").get("message"), api, "queued waiting")
    assert _phase(api, "queued") == "Pending"

    _level(admin, name, "restricted")
    assert _phase(api, "first") == "Running"  # a running container is left as it is
    assert api.delete("/v1/cargos/first").status_code in (200, 202, 204)
    _until(lambda: _phase(api, "first") is None, api, "first gone")
    _until(lambda: _phase(api, "queued") != "Pending", api, "queued decided")

    _refused_as_kubernetes_does(api, "queued", SLEEP, "restricted")
    assert _made(docker_host, name, "queued") == []
    refused = api.post(
        "/v1/cargos",
        json={"name": "late", "spec": {"miniCluster": "full", "template": SLEEP}},
    )
    assert refused.status_code == 422, refused.text


def test_an_on_failure_gang_restarting_after_the_level_was_raised_fails_with_pod_security(
    tenant: tuple[httpx.Client, httpx.Client, str], docker_host: docker.DockerClient
) -> None:
    """A running OnFailure gang; the admin raises the tenant to restricted and a replica dies:
    the gang is not made again beyond the level."""
    admin, api, name = tenant
    body = {"name": "gang", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 2}}}
    assert api.post("/v1/miniclusters", json=body).status_code == 201
    made = api.post(
        "/v1/cargos",
        json={
            "name": "gang-0",
            "spec": {
                "miniCluster": "gang",
                "replicas": 2,
                "gpusPerReplica": 1,
                "template": SLEEP,
                "restartPolicy": "OnFailure",
                "backoffLimit": 3,
            },
        },
    )
    assert made.status_code == 201, made.text
    _until(lambda: _phase(api, "gang-0") == "Running", api, "gang running")
    assert {labels[L.ATTEMPT] for labels in _made(docker_host, name, "gang-0")} == {"0"}

    _level(admin, name, "restricted")
    [victim] = [
        c
        for c in labelled_containers(docker_host)
        if c.labels.get(L.TENANT) == name and c.labels.get(L.REPLICA) == "0"
    ]
    victim.kill()  # exits 137: the gang restarts by its policy
    _until(lambda: _phase(api, "gang-0") == "Failed", api, "gang refused")

    _refused_as_kubernetes_does(api, "gang-0", SLEEP, "restricted")
    assert {labels[L.ATTEMPT] for labels in _made(docker_host, name, "gang-0")} <= {"0"}


def test_a_template_grow_after_the_level_was_raised_fails_the_new_cargo_only(
    tenant: tuple[httpx.Client, httpx.Client, str], docker_host: docker.DockerClient
) -> None:
    """A MiniCluster's template runs one cargo; the admin raises the tenant to restricted; a
    grow by count makes the next cargo, which fails (PodSecurity) without a container while
    the first keeps running."""
    admin, api, name = tenant
    template = {"replicas": 1, "gpusPerReplica": 1, "template": SLEEP}
    body = {
        "name": "tpl",
        "spec": {
            "gpuType": "H100",
            "gpus": {"min": 0, "max": 2},
            "template": template,
            "replicas": 1,
        },
    }
    assert api.post("/v1/miniclusters", json=body).status_code == 201
    _until(lambda: _phase(api, "tpl-0") == "Running", api, "tpl-0 running")

    _level(admin, name, "restricted")
    grown = api.post("/v1/miniclusters/tpl:grow", json={"count": 1, "allowPending": True})
    assert grown.status_code == 200, grown.text
    _until(lambda: _phase(api, "tpl-1") not in (None, "Pending", "Placed"), api, "tpl-1 decided")

    _refused_as_kubernetes_does(api, "tpl-1", SLEEP, "restricted")
    assert _made(docker_host, name, "tpl-1") == []
    assert _phase(api, "tpl-0") == "Running"
