"""What a tenant may send (issues 10 items 3-4, 11 items 1-2): malformed templates, GPUs of
their own, templates beyond the tenant's Pod Security level and absurd counts answer 422
naming the field, before anything is stored; tenants carry a level an admin sets; engine
calls never hold up ``/healthz``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crane.api import kube_snapshot
from crane.api.app import create_app
from crane.api.kube import KubeBackend
from crane.api.schemas import DryRunResult
from crane.api.settings import ApiSettings
from crane.model.podsecurity import PodSecurityLevel
from crane.placement import Engine
from tests.api.conftest import ADMIN, Server

PROBLEM = "application/problem+json"


@pytest.fixture
def api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    level = {"value": PodSecurityLevel.BASELINE}

    async def pod_security_level(self: KubeBackend, tenant: str) -> PodSecurityLevel:
        return level["value"]

    monkeypatch.setattr(KubeBackend, "pod_security_level", pod_security_level)
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'crane.db'}",
        bootstrap_token=ADMIN,
        kubeconfig="/nonexistent",
    )
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        client.level = level  # type: ignore[attr-defined]
        yield client


def container(**fields: Any) -> dict[str, Any]:
    return {"name": "main", "image": "busybox", **fields}


def template(spec: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"spec": {"containers": [container(**fields)], **(spec or {})}}


def cargo_body(tmpl: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"name": "c", "spec": {"miniCluster": "mc", "template": tmpl, **spec}}


def mc_body(tmpl: dict[str, Any] | None = None, **spec: Any) -> dict[str, Any]:
    full: dict[str, Any] = {"gpuType": "H100", "gpus": {"min": 0, "max": 8}, **spec}
    if tmpl is not None:
        full["template"] = {"template": tmpl}
    return {"name": "mc", "spec": full}


MALFORMED = [
    (template(env="x"), "spec.containers[0].env"),
    (template(env=[1]), "spec.containers[0].env[0]"),
    (template(resources="x"), "spec.containers[0].resources"),
    (template(resources={"limits": "x"}), "spec.containers[0].resources.limits"),
    ({"metadata": "x", **template()}, "metadata"),
    ({"metadata": {"labels": "x"}, **template()}, "metadata.labels"),
    (template({"tolerations": "x"}), "spec.tolerations"),
]


@pytest.mark.parametrize(("tmpl", "path"), MALFORMED)
def test_malformed_templates_are_422_naming_the_field(
    api: TestClient, tmpl: dict[str, Any], path: str
) -> None:
    cargo = api.post("/v1/cargos", json=cargo_body(tmpl))
    mc = api.post("/v1/miniclusters", json=mc_body(tmpl))
    grow = api.post("/v1/miniclusters/mc:grow", json={"cargos": [{"template": tmpl}]})
    for r in (cargo, mc, grow):
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, r.text
        assert f"template.{path}" in r.json()["detail"]


@pytest.mark.parametrize("where", ["containers", "initContainers"])
def test_gpus_of_the_templates_own_are_422(api: TestClient, where: str) -> None:
    tmpl = template()
    side = container(name="side", resources={"limits": {"nvidia.com/gpu": 8}})
    tmpl["spec"].setdefault(where, []).append(side)
    index = len(tmpl["spec"][where]) - 1
    r = api.post("/v1/cargos", json=cargo_body(tmpl, gpusPerReplica=1))
    assert r.status_code == 422
    assert f"spec.{where}[{index}].resources.limits[nvidia.com/gpu]" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/miniclusters", mc_body(gpus={"min": 10**9, "max": 10**9})),
        ("/v1/miniclusters", mc_body(gpus={"min": 0, "max": 2**40})),
        ("/v1/miniclusters", mc_body(priority=2**31)),
        ("/v1/miniclusters", mc_body(template(), replicas=10**9)),
        ("/v1/cargos", cargo_body(template(), replicas=10**9)),
        ("/v1/cargos", cargo_body(template(), gpusPerReplica=65)),
        (
            "/v1/placement:dryrun",
            {"miniCluster": mc_body(gpus={"min": 2**40, "max": 2**40})["spec"]},
        ),
        (
            "/v1/placement:dryrun",
            {"miniCluster": mc_body(gpus={"min": 10**9, "max": 10**9})["spec"]},
        ),
    ],
)
def test_huge_counts_are_422_at_once(api: TestClient, path: str, body: dict[str, Any]) -> None:
    r = api.post(path, json=body)
    assert r.status_code == 422, r.text
    assert "less than or equal to" in r.json()["detail"]


def test_admin_sets_a_tenants_pod_security_level(server: Server) -> None:
    """A real ``crane serve`` (SQLite and PostgreSQL: the migration adds the column)."""
    with server.client() as admin:
        created = admin.post("/v1/tenants", json={"name": "lab", "podSecurity": "restricted"})
        plain = admin.post("/v1/tenants", json={"name": "plain"})
        bad = admin.post("/v1/tenants", json={"name": "odd", "podSecurity": "root"})
        patched = admin.patch("/v1/tenants/plain", json={"podSecurity": "privileged"})
        listed = {t["name"]: t["podSecurity"] for t in admin.get("/v1/tenants").json()["items"]}
        missing = admin.patch("/v1/tenants/nope", json={"podSecurity": "baseline"})
    assert created.status_code == 201 and created.json()["podSecurity"] == "restricted"
    assert plain.json()["podSecurity"] == "baseline"
    assert bad.status_code == 422
    assert patched.status_code == 200 and patched.json()["podSecurity"] == "privileged"
    assert listed["lab"] == "restricted" and listed["plain"] == "privileged"
    assert missing.status_code == 404


ESCAPES = [
    (template(securityContext={"privileged": True}), "securityContext.privileged"),
    (template({"hostPID": True}), "hostPID"),
    (template({"hostNetwork": True}), "hostNetwork"),
    (template({"hostIPC": True}), "hostIPC"),
    (
        template({"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}),
        "volumes.0.hostPath",
    ),
    (template(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}}), "capabilities.add.0"),
]


@pytest.mark.parametrize(("tmpl", "field"), ESCAPES)
def test_templates_beyond_baseline_are_422_naming_the_field(
    api: TestClient, tmpl: dict[str, Any], field: str
) -> None:
    for path, body in (
        ("/v1/cargos", cargo_body(tmpl)),
        ("/v1/miniclusters", mc_body(tmpl)),
        ("/v1/miniclusters/mc:grow", {"cargos": [{"template": tmpl}]}),
    ):
        r = api.post(path, json=body)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (path, r.text)
        problem = r.json()
        assert "pod security level baseline" in problem["detail"]
        locs = [".".join(str(p) for p in e["loc"]) for e in problem["errors"]]
        assert any(loc.endswith(field) for loc in locs), locs


def test_a_privileged_tenant_gets_past_the_check(api: TestClient) -> None:
    api.level["value"] = PodSecurityLevel.PRIVILEGED  # type: ignore[attr-defined]
    r = api.post("/v1/cargos", json=cargo_body(template({"hostPID": True})))
    assert r.status_code == 503  # past the policy; no Kubernetes behind this test


def test_restricted_tenant_needs_a_hardened_template(api: TestClient) -> None:
    api.level["value"] = PodSecurityLevel.RESTRICTED  # type: ignore[attr-defined]
    r = api.post("/v1/cargos", json=cargo_body(template()))
    assert r.status_code == 422 and "restricted" in r.json()["detail"]


def test_healthz_answers_while_a_dry_run_computes(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine runs off the event loop: /healthz and /readyz answer during a dry-run."""
    started, release = threading.Event(), threading.Event()

    async def snapshot(self: KubeBackend) -> Engine:
        return Engine()

    def slow(engine: Engine, tenant: str, spec: Any) -> DryRunResult:
        started.set()
        assert release.wait(120), "the test never released the dry-run"
        return DryRunResult(outcome="Queued", fits=False, message="slow")

    monkeypatch.setattr(KubeBackend, "_snapshot", snapshot)
    monkeypatch.setattr(kube_snapshot, "dry_run_minicluster", slow)
    body = {"miniCluster": mc_body()["spec"]}
    with ThreadPoolExecutor(1) as pool:
        dry = pool.submit(api.post, "/v1/placement:dryrun", json=body)
        assert started.wait(60), "the dry-run never started"
        health = api.get("/healthz")
        finished_first = dry.done()
        release.set()
        assert dry.result(timeout=60).json()["message"] == "slow"
    assert health.status_code == 200 and not finished_first


GPU_ESCAPES = [
    (template({"priorityClassName": "system-node-critical"}), "spec.priorityClassName"),
    (template(envFrom=[{"configMapRef": {"name": "gpus"}}]), "spec.containers[0].envFrom[0]"),
    (
        template(
            {"volumes": [{"name": "v", "emptyDir": {}}]},
            volumeMounts=[{"name": "v", "mountPath": "/var/run/nvidia-container-devices/all"}],
        ),
        "spec.containers[0].volumeMounts[0].mountPath",
    ),
]


@pytest.mark.parametrize(("tmpl", "path"), GPU_ESCAPES)
def test_templates_that_take_gpus_or_evict_others_are_422_at_every_level(
    api: TestClient, tmpl: dict[str, Any], path: str
) -> None:
    """A critical priority class (the kubelet evicts other tenants' pods to admit it), envFrom
    that could set NVIDIA_VISIBLE_DEVICES, a mount where the NVIDIA runtime reads GPU requests:
    422 problem+json naming the field, even for a privileged tenant."""
    api.level["value"] = PodSecurityLevel.PRIVILEGED  # type: ignore[attr-defined]
    for url, body in (
        ("/v1/cargos", cargo_body(tmpl, gpusPerReplica=1)),
        ("/v1/miniclusters", mc_body(tmpl)),
        ("/v1/miniclusters/mc:grow", {"cargos": [{"template": tmpl}]}),
    ):
        r = api.post(url, json=body)
        assert r.status_code == 422 and r.headers["content-type"] == PROBLEM, (url, r.text)
        assert f"template.{path}" in r.json()["detail"], r.text
