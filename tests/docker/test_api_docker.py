"""The REST API on the Docker backend: a real ``crane serve --backend docker`` on three dockerd.

Hosts are added through ``/v1/hosts``; grows race, tenants stay apart, hosts drain, and
``:explain`` answers in numbers.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest

from crane.docker import labels as L
from crane.docker.containers import managed_containers
from crane.docker.hosts import HostSpec
from tests.dockerd import IMAGE, SLEEP, WORK, DockerServer, cli, host_wire, serving

ADMIN = "crane_dockapi_" + "a" * 43


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerServer]:
    """h0 and h1 (8 H100 each) added through the API; h2 (4 A100) is the drain test's."""
    wire = [host_wire(h) for h in host_specs[:2]]
    with serving(tmp_path_factory.mktemp("api"), ADMIN, host_specs, wire) as running:
        yield running


def _mc(api: httpx.Client, name: str, gpu_type: str, lo: int, hi: int, **extra: Any) -> None:
    body = {"name": name, "spec": {"gpuType": gpu_type, "gpus": {"min": lo, "max": hi}, **extra}}
    created = api.post("/v1/miniclusters", json=body)
    assert created.status_code == 201, created.text


def _until(check: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.3)


def test_hosts_are_admin_only_and_problems_say_what_to_do(admin: httpx.Client) -> None:
    listed = admin.get("/v1/hosts").json()
    assert listed["count"] == 2
    assert [(h["name"], h["state"], h["ready"], h["gpus"]) for h in listed["items"]] == [
        ("h0", "Active", True, 8),
        ("h1", "Active", True, 8),
    ]
    again = admin.post(
        "/v1/hosts",
        json={"name": "h0", "dockerHost": "tcp://127.0.0.1:9", "gpus": 8, "gpuType": "H100"},
    )
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert "crane node remove" in again.json()["detail"]
    bad = admin.post(
        "/v1/hosts", json={"name": "hx", "dockerHost": "tcp://x:1", "gpus": 2, "gpuType": "Z9;x"}
    )
    assert bad.status_code == 422 and "unknown GPU type" in bad.json()["detail"]
    assert admin.get("/v1/hosts/nope").status_code == 404
    minted = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": "default"})
    tenant_token = minted.json()["token"]
    for method, path in (("GET", "/v1/hosts"), ("DELETE", "/v1/hosts/h0")):
        denied = admin.request(method, path, headers={"Authorization": f"Bearer {tenant_token}"})
        assert denied.status_code == 403, denied.text
    ops = {
        op["operationId"]
        for item in admin.get("/openapi.json").json()["paths"].values()
        for op in item.values()
    }
    assert {"createHost", "listHosts", "getHost", "deleteHost"} <= ops


def test_fifty_concurrent_grows_never_exceed_max_nor_share_a_gpu(
    admin: httpx.Client, server: DockerServer, host_specs: list[HostSpec]
) -> None:
    template = {"replicas": 1, "gpusPerReplica": 2, "template": SLEEP}
    _mc(admin, "race", "H100", 0, 10, template=template)

    def grow(_: int) -> dict[str, Any]:
        with server.client() as api:
            answer = api.post("/v1/miniclusters/race:grow", json={"count": 1})
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

    try:
        with ThreadPoolExecutor(50) as pool:
            results = list(pool.map(grow, range(50)))
        assert Counter(r["result"] for r in results) == {"granted": 5, "denied": 45}
        assert all("gpus.max 10" in r["reasons"][0] for r in results if r["result"] == "denied")
        cargos = admin.get("/v1/cargos", params={"miniCluster": "race"}).json()["items"]
        assert len(cargos) == 5
        used = [
            (p["node"], gpu)
            for c in cargos
            for p in c["status"]["placement"]
            for gpu in p["gpuIds"]
        ]
        assert len(used) == 10 and len(set(used)) == 10
        mapped = [
            (n["name"], g["id"])
            for n in admin.get("/v1/nodes").json()["items"]
            for g in n["gpus"]
            if g.get("miniCluster") == "default/race"
        ]
        assert sorted(mapped) == sorted(used)

        def containers() -> list[tuple[str, str]]:
            out = []
            for spec in host_specs[:2]:
                with closing(docker.DockerClient(base_url=spec.url)) as client:
                    out += [(spec.name, c.labels[L.GPU_IDS]) for c in managed_containers(client)]
            return out

        _until(lambda: len(containers()) == 5)
        per_gpu = [(host, gpu) for host, ids in containers() for gpu in ids.split(",")]
        assert sorted(per_gpu) == sorted((n, str(g)) for n, g in used)
    finally:
        assert admin.delete("/v1/miniclusters/race").status_code == 204


def test_tenants_and_minicluster_tokens_see_only_their_own(
    admin: httpx.Client, server: DockerServer
) -> None:
    tokens = {}
    for tenant in ("team-a", "team-b"):
        assert admin.post("/v1/tenants", json={"name": tenant}).status_code == 201
        minted = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": tenant})
        tokens[tenant] = minted.json()["token"]
    a, b = server.client(tokens["team-a"]), server.client(tokens["team-b"])
    with a, b:
        for api, name in ((a, "a-one"), (a, "a-two"), (b, "b-one")):
            _mc(api, name, "H100", 0, 2, template={"gpusPerReplica": 1, "template": SLEEP})
        assert [m["name"] for m in a.get("/v1/miniclusters").json()["items"]] == ["a-one", "a-two"]
        assert a.get("/v1/miniclusters/b-one").status_code == 404
        assert a.post("/v1/miniclusters/b-one:grow", json={"count": 1}).status_code == 404
        assert a.get("/v1/miniclusters", params={"tenant": "team-b"}).status_code == 404
        grown = b.post("/v1/miniclusters/b-one:grow", json={"count": 1, "wait": True})
        assert grown.json()["result"] == "granted"
        assert a.get("/v1/cargos").json()["count"] == 0
        assert a.get("/v1/cargos/b-one-0").status_code == 404
        others = {g.get("cargo") for n in a.get("/v1/nodes").json()["items"] for g in n["gpus"]}
        assert "other" in others and "b-one-0" not in others

        scoped = a.post(
            "/v1/tokens", json={"scope": "minicluster", "tenant": "team-a", "miniCluster": "a-one"}
        ).json()["token"]
        with server.client(scoped) as am:
            assert [m["name"] for m in am.get("/v1/miniclusters").json()["items"]] == ["a-one"]
            assert am.get("/v1/miniclusters/a-two").status_code == 404
            assert am.post("/v1/miniclusters/a-two:grow", json={"count": 1}).status_code == 404
            assert am.post("/v1/miniclusters/a-one:grow", json={"count": 1}).status_code == 200
            assert am.delete("/v1/miniclusters/a-one").status_code == 403
        for api, name in ((a, "a-one"), (a, "a-two"), (b, "b-one")):
            assert api.delete(f"/v1/miniclusters/{name}").status_code == 204


def test_api_answers_while_a_container_ignoring_sigterm_is_stopped(
    admin: httpx.Client, host_specs: list[HostSpec]
) -> None:
    stubborn = ["sh", "-c", "trap '' TERM; sleep 300"]
    template = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": stubborn}]}}
    _mc(admin, "stubborn", "H100", 0, 8)
    _mc(admin, "other", "H100", 0, 8)
    shape = {"gpusPerReplica": 2, "template": template}
    grown = admin.post("/v1/miniclusters/stubborn:grow", json={"cargos": [shape], "wait": True})
    assert grown.json()["result"] == "granted", grown.text
    name = grown.json()["cargos"][0]["name"]

    def held() -> set[tuple[str, int]]:
        return {
            (n["name"], g["id"])
            for n in admin.get("/v1/nodes").json()["items"]
            for g in n["gpus"]
            if g.get("cargo") == name
        }

    def containers() -> int:
        count = 0
        for spec in host_specs[:2]:
            with closing(docker.DockerClient(base_url=spec.url)) as client:
                count += sum(c.labels[L.CARGO] == name for c in managed_containers(client))
        return count

    gpus = held()
    try:
        deleted = admin.delete(f"/v1/cargos/{name}", params={"gracePeriodSeconds": 10})
        assert deleted.status_code == 204
        time.sleep(1)
        began = time.monotonic()
        listed = admin.get("/v1/miniclusters")
        listing = time.monotonic() - began
        began = time.monotonic()
        other = admin.post("/v1/miniclusters/other:grow", json={"cargos": [shape]})
        growing = time.monotonic() - began
        assert listed.status_code == 200 and other.json()["result"] == "granted", other.text
        assert listing < 3 and growing < 3, (listing, growing)
        assert containers() == 1 and held() == gpus, "GPUs released before the container left"
        _until(lambda: containers() == 0, 30)
        _until(lambda: held() == set(), 5)
    finally:
        for mc in ("stubborn", "other"):
            admin.delete(f"/v1/miniclusters/{mc}")


def test_explain_answers_in_numbers(admin: httpx.Client) -> None:
    never = admin.post(
        "/v1/miniclusters",
        json={
            "name": "never",
            "spec": {
                "gpuType": "H100",
                "gpus": {"min": 12, "max": 12},
                "topology": {"level": "rack", "mode": "Required"},
            },
        },
    )
    assert never.status_code == 422
    assert "the largest rack has 8 H100 GPUs in all" in never.json()["detail"]
    _mc(admin, "hog", "H100", 12, 12)
    _mc(admin, "too-big", "H100", 8, 8, topology={"level": "node", "mode": "Required"})
    _mc(admin, "fits", "H100", 0, 32)
    try:
        waiting = admin.get("/v1/miniclusters/too-big:explain").json()
        assert not waiting["admitted"]
        assert waiting["message"].startswith("needs 8 H100 within one node")
        assert "free" in waiting["message"]
        assert waiting["explanation"]["neededGpus"] == 8
        shape = {"replicas": 1, "gpusPerReplica": 12, "template": SLEEP}
        refused = admin.post(
            "/v1/miniclusters/fits:grow", json={"cargos": [shape], "allowPending": True}
        )
        assert refused.status_code == 422
        assert "largest H100 node has 8" in refused.json()["detail"]
        shape = {"replicas": 2, "gpusPerReplica": 8, "template": SLEEP}
        grown = admin.post(
            "/v1/miniclusters/fits:grow", json={"cargos": [shape], "allowPending": True}
        ).json()
        assert grown["cargos"][0]["phase"] == "Pending"
        explained = admin.get("/v1/miniclusters/fits:explain").json()
        assert explained["admitted"]
        assert explained["message"].startswith("admitted: 0 GPUs reserved")
        cargo = next(c for c in explained["cargos"] if c["phase"] == "Pending")
        assert "needs 16 H100" in cargo["message"] and "free" in cargo["message"]
    finally:
        for name in ("too-big", "fits", "hog"):
            admin.delete(f"/v1/miniclusters/{name}")


def test_node_remove_drains_waits_then_preempts(
    admin: httpx.Client, server: DockerServer, host_specs: list[HostSpec], tmp_path: Path
) -> None:
    crane = cli(server.url, ADMIN, tmp_path)

    h2 = host_specs[2]
    far = crane(
        "node", "add", "far", "--docker-host", h2.url, "--gpus", "1", "--gpu-type", "T4",
        "--address", "10.0.0.9",
    )  # fmt: skip
    assert far.returncode == 0, far.stderr
    rows = [line.split() for line in crane("node", "list").stdout.splitlines()]
    assert rows[0][:4] == ["NAME", "DOCKER", "HOST", "ADDRESS"]
    assert [row[:4] for row in rows if row[0] == "far"] == [["far", h2.url, "10.0.0.9", "1"]]
    hosts = {h["name"]: h for h in json.loads(crane("node", "list", "-o", "json").stdout)}
    assert hosts["far"]["address"] == "10.0.0.9"
    gone = crane("node", "remove", "far", "--yes", "--timeout", "60")
    assert gone.returncode == 0, gone.stderr

    added = crane(
        "node", "add", "h2", "--docker-host", h2.url, "--gpus", "4", "--gpu-type", "A100",
        "--label", "rack=r1",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stderr.startswith("node/h2 added: 4 x A100")
    listed = json.loads(crane("node", "list", "-o", "json").stdout)
    assert [h["name"] for h in listed] == ["h0", "h1", "h2"]
    table = crane("node", "list").stdout.splitlines()
    assert table[0].split()[:4] == ["NAME", "DOCKER", "HOST", "ADDRESS"]
    assert table[3].split()[:3] == ["h2", h2.url, "-"]  # no address: bridge networking
    assert "rack=r1" in table[3] and "Active" in table[3]

    _mc(admin, "on-a100", "A100", 0, 4)
    shape = {"gpusPerReplica": 2, "template": SLEEP}
    grown = admin.post("/v1/miniclusters/on-a100:grow", json={"cargos": [shape], "wait": True})
    assert grown.json()["result"] == "granted", grown.text
    try:
        refused = crane("node", "remove", "h2")
        assert refused.returncode == 2 and "--yes" in refused.stderr
        waited = crane("node", "remove", "h2", "--yes", "--timeout", "3")
        assert waited.returncode == 1
        assert "still draining after 3s with 1 cargos" in waited.stderr
        assert "crane node remove h2 --preempt --yes" in waited.stderr
        host = admin.get("/v1/hosts/h2").json()
        assert (host["state"], host["cargos"]) == ("Draining", 1)
        assert "Draining" in crane("node", "list").stdout
        nodes = {n["name"]: n for n in admin.get("/v1/nodes").json()["items"]}
        assert not nodes["h2"]["schedulable"]
        late = admin.post(
            "/v1/miniclusters/on-a100:grow", json={"cargos": [shape], "allowPending": True}
        ).json()
        assert late["cargos"][0]["phase"] == "Pending"
        time.sleep(2)
        assert admin.get(f"/v1/cargos/{late['cargos'][0]['name']}").json()["status"]["phase"] == (
            "Pending"
        )

        removed = crane("node", "remove", "h2", "--preempt", "--yes", "--timeout", "60")
        assert removed.returncode == 0, removed.stderr
        assert removed.stderr.splitlines()[-1] == "node/h2 removed"
        assert admin.get("/v1/hosts/h2").status_code == 404
        first = admin.get("/v1/cargos/on-a100-0").json()["status"]
        assert first["phase"] == "Failed" and "drained" in first["message"]
        # as Kubernetes mode says of a cargo whose node went: Failed and Ready, reason NodeLost
        reasons = {c["type"]: c["reason"] for c in first["conditions"]}
        assert (reasons["Failed"], reasons["Ready"]) == ("NodeLost", "NodeLost"), first
        with closing(docker.DockerClient(base_url=h2.url)) as client:
            assert managed_containers(client) == []
    finally:
        admin.delete("/v1/miniclusters/on-a100")
        admin.delete("/v1/hosts/h2", params={"preempt": "true"})


def _escape(spec: dict[str, Any] | None = None, **container: Any) -> dict[str, Any]:
    main = {"name": "main", "image": IMAGE, "command": WORK, **container}
    return {"spec": {"containers": [main], **(spec or {})}}


@pytest.mark.parametrize(
    ("template", "field"),
    [
        (_escape(securityContext={"privileged": True}), "securityContext.privileged"),
        (_escape({"hostPID": True}), "spec.hostPID"),
        (_escape({"hostNetwork": True}), "spec.hostNetwork"),
        (_escape({"volumes": [{"name": "r", "hostPath": {"path": "/"}}]}), "hostPath"),
        (_escape(devices=["/dev/mem"]), "devices"),
        (_escape(securityContext={"capabilities": {"add": ["SYS_ADMIN"]}}), "capabilities.add"),
        (
            {
                "spec": {
                    "containers": [
                        {"name": "main", "image": IMAGE, "command": WORK},
                        {
                            "name": "side",
                            "image": IMAGE,
                            "resources": {"limits": {"nvidia.com/gpu": 8}},
                        },
                    ]
                }
            },
            "limits[nvidia.com/gpu]",
        ),
    ],
)
def test_escaping_templates_are_refused_before_any_container_exists(
    admin: httpx.Client, host_specs: list[HostSpec], template: dict[str, Any], field: str
) -> None:
    """Issue 11: privileged, host namespaces, bind mounts, devices, capabilities and GPUs of
    the template's own are 422 naming the field; no container is ever made for them."""
    # A MiniCluster per case: a deleted one keeps its name until the reconciler removes it.
    mc = "sec-" + re.sub(r"[^a-z0-9]+", "-", field.lower()).strip("-")
    _mc(admin, mc, "H100", 0, 8)
    try:
        r = admin.post(
            "/v1/cargos",
            json={
                "name": "esc",
                "spec": {"miniCluster": mc, "gpusPerReplica": 1, "template": template},
            },
        )
        assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        where = problem["detail"] + json.dumps(problem.get("errors", []))
        assert field.split("[")[0].split(".")[-1] in where, problem
        assert admin.get("/v1/cargos/esc").status_code == 404
        for spec in host_specs[:2]:
            with closing(docker.DockerClient(base_url=spec.url)) as client:
                assert not [c for c in managed_containers(client) if c.labels[L.CARGO] == "esc"]
    finally:
        assert admin.delete(f"/v1/miniclusters/{mc}").status_code == 204
