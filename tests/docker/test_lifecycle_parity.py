"""Docker mode does what Kubernetes mode does (issue 12): template grow and shrink change
``spec.replicas``, borrowed cargos are preempted for a higher priority and when ``max`` drops,
and a dry-run answers what admission then does.

A real ``crane serve --backend docker`` on two dockerd hosts with 5 (declared) H100 each.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import docker
import httpx
import pytest

from crane.docker import labels as L
from crane.docker.containers import managed_containers
from crane.docker.hosts import HostSpec
from tests.dockerd import IMAGE, SLEEP, WORK, DockerServer, serving

ADMIN = "crane_parity_" + "a" * 43
TIMEOUT = 90.0


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerServer]:
    hosts = host_specs[:2]
    wire = [
        {"name": h.name, "dockerHost": h.url, "gpus": 5, "gpuType": "NVIDIA-H100-80GB-HBM3"}
        for h in hosts
    ]
    with serving(tmp_path_factory.mktemp("parity"), ADMIN, hosts, wire) as running:
        yield running


@pytest.fixture
def api(server: DockerServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client
        for mc in client.get("/v1/miniclusters").json()["items"]:
            client.delete(f"/v1/miniclusters/{mc['name']}")
        _until(lambda: not client.get("/v1/cargos").json()["items"], client)


def _until(check: Any, api: httpx.Client, seconds: float = TIMEOUT) -> None:
    """Poll ``check`` until it holds; each try runs a reconcile pass (``/v1/nodes`` does)."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        api.get("/v1/nodes")  # runs a pass
        time.sleep(0.3)


def _mc(api: httpx.Client, name: str, lo: int, hi: int, **extra: Any) -> None:
    body = {"name": name, "spec": {"gpuType": "H100", "gpus": {"min": lo, "max": hi}, **extra}}
    created = api.post("/v1/miniclusters", json=body)
    assert created.status_code == 201, created.text


def _cargo(api: httpx.Client, name: str) -> dict[str, Any] | None:
    got = api.get(f"/v1/cargos/{name}")
    return dict(got.json()) if got.status_code == 200 else None


def _template(gpus: int) -> dict[str, Any]:
    return {"replicas": 1, "gpusPerReplica": gpus, "template": SLEEP}


def test_template_grow_adds_the_next_index_and_shrink_removes_it_for_good(
    api: httpx.Client,
) -> None:
    _mc(api, "job", 0, 4, template=_template(1), replicas=1)
    _until(lambda: (_cargo(api, "job-0") or {}).get("status", {}).get("phase") == "Running", api)
    grown = api.post(
        "/v1/miniclusters/job:grow", json={"count": 1, "wait": True, "timeoutSeconds": 60}
    )
    assert grown.status_code == 200, grown.text
    assert grown.json()["result"] == "granted", grown.text
    assert [c["name"] for c in grown.json()["cargos"]] == ["job-1"]
    assert (_cargo(api, "job-1") or {})["status"]["phase"] == "Running"
    assert api.get("/v1/miniclusters/job").json()["spec"]["replicas"] == 2

    shrunk = api.post("/v1/miniclusters/job:shrink", json={"count": 1})
    assert shrunk.json()["removed"] == ["job-1"], shrunk.text
    _until(lambda: _cargo(api, "job-1") is None, api)
    for _ in range(10):  # passes that used to bring job-1 back
        assert api.get("/v1/miniclusters/job:explain").status_code == 200
        assert _cargo(api, "job-1") is None
    assert api.get("/v1/miniclusters/job").json()["spec"]["replicas"] == 1
    assert (_cargo(api, "job-0") or {})["status"]["phase"] == "Running"


def test_dry_run_answers_what_admission_does_for_a_template_shape(api: httpx.Client) -> None:
    """min 8 with a 1x8-GPU template on two hosts with 5 free each: no host holds a slot."""
    spec = {"gpuType": "H100", "gpus": {"min": 8, "max": 8}, "template": _template(8)}
    dry = api.post("/v1/placement:dryrun", json={"miniCluster": spec})
    assert dry.status_code == 200, dry.text
    # no host can ever hold an 8-GPU slot: the dry-run and admission both say so at once
    assert dry.json()["outcome"] == "Rejected" and not dry.json()["fits"], dry.text
    assert dry.json()["explanation"]["neededGpus"] == 8
    made = api.post("/v1/miniclusters", json={"name": "wide", "spec": spec})
    assert made.status_code == 422, made.text
    assert "largest H100 node has 5" in made.json()["detail"], made.text
    assert "largest H100 node has 5" in dry.json()["message"], dry.text


def test_a_higher_priority_minicluster_preempts_borrowed_cargos_with_notice(
    api: httpx.Client,
) -> None:
    _mc(api, "low", 0, 8)
    for _ in range(2):
        grown = api.post(
            "/v1/miniclusters/low:grow",
            json={"cargos": [{"gpusPerReplica": 4, "template": SLEEP}], "wait": True},
        )
        assert grown.json()["result"] == "granted", grown.text
    _mc(
        api,
        "high",
        4,
        4,
        priority=100,
        topology={"level": "node", "mode": "Required"},
    )
    _until(lambda: api.get("/v1/miniclusters/high").json()["status"]["reservedGpus"] == 4, api)
    low = api.get("/v1/cargos", params={"miniCluster": "low"}).json()["items"]
    preempted = [
        c
        for c in low
        if any(
            k["type"] == "Preempted" and k["status"] == "True" for k in c["status"]["conditions"]
        )
    ]
    assert len(preempted) == 1, [(c["name"], c["status"]) for c in low]
    [notice] = [k for k in preempted[0]["status"]["conditions"] if k["type"] == "Preempted"]
    assert "priority 100" in notice["message"], notice
    assert api.get("/v1/miniclusters/low").json()["status"]["inUseGpus"] == 4


def test_lowering_max_preempts_borrowed_cargos_down_to_it(api: httpx.Client) -> None:
    _mc(api, "capped", 0, 8)
    grown = api.post(
        "/v1/miniclusters/capped:grow",
        json={"cargos": [{"gpusPerReplica": 4, "template": SLEEP}] * 2, "wait": True},
    )
    assert grown.json()["result"] == "granted", grown.text
    patched = api.patch("/v1/miniclusters/capped", json={"gpus": {"min": 0, "max": 4}})
    assert patched.status_code == 200, patched.text
    _until(lambda: api.get("/v1/miniclusters/capped").json()["status"]["inUseGpus"] == 4, api)
    said = api.get("/v1/miniclusters/capped:explain").json()["message"]
    assert "4 in use" in said and "gpus.max 4" in said, said


def test_condition_times_are_when_they_changed_not_when_read(api: httpx.Client) -> None:
    _mc(api, "steady", 1, 2)
    _until(lambda: api.get("/v1/miniclusters/steady").json()["status"]["reservedGpus"] == 1, api)

    def admitted_at() -> str:
        conditions = api.get("/v1/miniclusters/steady").json()["status"]["conditions"]
        return str(next(c for c in conditions if c["type"] == "Admitted")["lastTransitionTime"])

    first = admitted_at()
    for _ in range(3):
        api.get("/v1/nodes")  # a pass
    assert admitted_at() == first


def test_a_missing_image_is_pulled_and_a_failed_pull_fails_the_cargo_and_frees_its_gpus(
    api: httpx.Client,
) -> None:
    """No registry is reachable here: pulling a nonexistent image fails fast."""
    _mc(api, "pull", 0, 4)
    bad = {"spec": {"containers": [{"name": "main", "image": "nosuchimage:1"}]}}
    grown = api.post(
        "/v1/miniclusters/pull:grow",
        json={
            "cargos": [{"name": "pull-0", "gpusPerReplica": 2, "template": bad}],
            "wait": True,
            "timeoutSeconds": 120,
        },
    )
    assert grown.status_code == 200, grown.text
    [grant] = grown.json()["cargos"]
    assert grant["phase"] == "Failed" and "nosuchimage:1" in grant["reason"], grant
    assert not grown.json()["timedOut"]
    cargo = _cargo(api, "pull-0") or {}
    [failed] = [c for c in cargo["status"]["conditions"] if c["type"] == "Failed"]
    assert failed["reason"] == "ImagePullFailed" and "nosuchimage:1" in failed["message"]
    assert api.get("/v1/miniclusters/pull").json()["status"]["inUseGpus"] == 0
    held = [
        g
        for n in api.get("/v1/nodes").json()["items"]
        for g in n["gpus"]
        if g.get("cargo") == "default/pull-0"
    ]
    assert held == []


def test_template_fields_reach_the_container_and_unsupported_ones_are_refused(
    api: httpx.Client, host_specs: list[HostSpec]
) -> None:
    _mc(api, "fields", 0, 4)
    refused = api.post(
        "/v1/miniclusters/fields:grow",
        json={
            "cargos": [
                {"template": {"spec": {"containers": [{"name": "c", "image": IMAGE, "ports": []}]}}}
            ]
        },
    )
    assert refused.status_code == 422 and "ports" in refused.text, refused.text
    template = {
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": IMAGE,
                    "command": WORK,
                    "workingDir": "/tmp",
                    "resources": {"limits": {"memory": "256Mi"}},
                    "volumeMounts": [
                        {"name": "ckpt", "mountPath": "/ckpt"},
                        {"name": "shm", "mountPath": "/dev/shm"},
                    ],
                }
            ],
            "volumes": [
                {"name": "ckpt", "persistentVolumeClaim": {"claimName": "ckpt"}},
                {"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
            ],
        }
    }
    grown = api.post(
        "/v1/miniclusters/fields:grow",
        json={"cargos": [{"name": "fields-0", "template": template}], "wait": True},
    )
    assert grown.json()["result"] == "granted", grown.text
    [placed] = (_cargo(api, "fields-0") or {})["status"]["placement"]
    url = next(h.url for h in host_specs if h.name == placed["node"])
    with closing(docker.DockerClient(base_url=url)) as client:
        [container] = [c for c in managed_containers(client) if c.labels.get(L.CARGO) == "fields-0"]
        host = container.attrs["HostConfig"]
        assert host["ShmSize"] == 64 * 2**20 and host["Memory"] == 256 * 2**20
        assert container.attrs["Config"]["WorkingDir"] == "/tmp"
        mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
        assert (
            mounts["/ckpt"]["Type"] == "volume" and mounts["/ckpt"]["Name"] == "crane.default.ckpt"
        )


def test_a_restarting_gang_reads_pending_while_its_containers_go_then_is_placed_again(
    api: httpx.Client,
) -> None:
    """Replica 0 exits 3 after 6 s; replica 1 ignores SIGTERM, so its container takes the whole
    grace period (10 s) to go. Meanwhile the cargo reads Pending with its restart count and the
    restart message, its Placed condition False with reason Restarting, as in Kubernetes mode
    (it used to read Placed); then it is placed again, the message cleared (read within the
    6 s before replica 0 exits again: with 1 s, a loaded machine read the second failure)."""
    _mc(api, "again", 0, 4)
    script = 'if [ "$CRANE_REPLICA" = 0 ]; then sleep 6; exit 3; fi; trap "" TERM; sleep 300'
    template = {
        "spec": {"containers": [{"name": "main", "image": IMAGE, "command": ["sh", "-c", script]}]}
    }
    shape = {
        "name": "again-0",
        "replicas": 2,
        "gpusPerReplica": 1,
        "template": template,
        "restartPolicy": "OnFailure",
        "backoffLimit": 1,
    }
    grown = api.post("/v1/miniclusters/again:grow", json={"cargos": [shape]})
    assert grown.json()["result"] == "granted", grown.text
    _until(lambda: (_cargo(api, "again-0") or {})["status"]["restarts"] == 1, api)
    status = (_cargo(api, "again-0") or {})["status"]
    assert status["phase"] == "Pending", status
    assert status["message"] == "replica 0 exited with code 3; restarting the gang (restart 1 of 1)"
    assert len(status["placement"]) == 2, status  # held until the old containers are gone
    [placed] = [c for c in status["conditions"] if c["type"] == "Placed"]
    assert placed["status"] == "False", placed
    # the reason Kubernetes mode gives (it used to be the phase, Pending)
    assert (placed["reason"], placed["message"]) == ("Restarting", status["message"]), placed
    seen: list[dict[str, Any]] = []

    def placed_again() -> bool:
        seen.append((_cargo(api, "again-0") or {})["status"])
        return bool(seen[-1]["phase"] in ("Placed", "Running"))

    _until(placed_again, api)
    again = seen[-1]
    assert again["restarts"] == 1 and again["message"] == "", again
    assert len(again["placement"]) == 2, again


def test_a_replica_that_exited_is_not_counted_as_running(api: httpx.Client) -> None:
    """A gang whose replica 0 exits 0 while replica 1 runs reads as on Kubernetes (which counts
    only running pods): ``Placed``, ``Ready`` False "1 of 2 replicas running". Docker mode
    counted the exited container: ``Running``, "2 of 2 replicas running"."""
    early = ["sh", "-c", '[ "$CRANE_REPLICA" = 0 ] && exit 0; ' + WORK[-1]]
    template = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": early}]}}
    _mc(api, "gang", 0, 4)
    grown = api.post(
        "/v1/miniclusters/gang:grow",
        json={
            "cargos": [{"name": "gang-0", "replicas": 2, "gpusPerReplica": 1, "template": template}]
        },
    )
    assert grown.status_code == 200, grown.text

    def ready() -> dict[str, Any]:
        got = _cargo(api, "gang-0") or {}
        return next(
            (c for c in got.get("status", {}).get("conditions") or [] if c["type"] == "Ready"), {}
        )

    _until(lambda: ready().get("message") == "1 of 2 replicas running", api, 30)
    for _ in range(5):  # and so it stays, pass after pass
        api.get("/v1/nodes")
        got = _cargo(api, "gang-0") or {}
        assert got["status"]["phase"] == "Placed", got
        assert (ready()["status"], ready()["reason"]) == ("False", "Starting"), got
        assert ready()["message"] == "1 of 2 replicas running", got
