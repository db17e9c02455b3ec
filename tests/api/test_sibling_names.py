"""A MiniCluster token sees its own MiniCluster by name and no other: ``waitsBehind`` of its
MiniCluster, which the admission pass writes with the names of the tenant's MiniClusters ahead
in the queue, reads ``(another MiniCluster)`` for its siblings (as ``/v1/nodes`` and
``:explain`` already show them), while a tenant token still sees their names. And a sibling's
cargo holding one of a MiniCluster's template names is not that MiniCluster's to remove."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crane.lifecycle import admission_status
from crane.lifecycle.queued import Queued

SPEC = {"gpuType": "H100", "gpus": {"min": 1, "max": 2}}


def test_waits_behind_names_no_sibling_to_a_minicluster_token(
    local_api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """waitsBehind of a queued MiniCluster, for its MiniCluster token, on get and list:
    the sibling ahead read by name (``t/secret-sibling``) before."""
    original = admission_status.queued

    def behind_the_sibling(*args: Any, **kwargs: Any) -> Queued:
        waiting = original(*args, **kwargs)
        if args[1] == "t/mine":  # queued behind its sibling, as with GPUs it would be
            return replace(waiting, position=2, waits_behind=["t/secret-sibling"])
        return waiting

    monkeypatch.setattr(admission_status, "queued", behind_the_sibling)
    assert local_api.post("/v1/tenants", json={"name": "t"}).status_code == 201
    for name in ("secret-sibling", "mine"):
        made = local_api.post("/v1/miniclusters?tenant=t", json={"name": name, "spec": SPEC})
        assert made.status_code == 201, made.text
    tenant = local_api.post("/v1/tokens", json={"scope": "tenant", "tenant": "t"}).json()
    scoped = local_api.post(
        "/v1/tokens", json={"scope": "minicluster", "tenant": "t", "miniCluster": "mine"}
    ).json()
    as_tenant = {"Authorization": f"Bearer {tenant['token']}"}
    as_mc = {"Authorization": f"Bearer {scoped['token']}"}
    got = local_api.get("/v1/miniclusters/mine", headers=as_tenant).json()
    assert got["status"]["waitsBehind"] == ["t/secret-sibling"]
    answers = [
        local_api.get("/v1/miniclusters/mine", headers=as_mc),
        local_api.get("/v1/miniclusters", headers=as_mc),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "secret-sibling" not in answer.text
    mine = answers[0].json()["status"]
    assert mine["waitsBehind"] == ["(another MiniCluster)"] and mine["queuePosition"] == 2


def _job_beside_others_job_1(local_api: TestClient, replicas: int) -> None:
    """MiniCluster other with a cargo named job-1, then template MiniCluster job with
    ``replicas``."""
    template = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}
    spec = {"gpuType": "H100", "gpus": {"min": 0, "max": 4}}
    other = local_api.post("/v1/miniclusters", json={"name": "other", "spec": spec})
    assert other.status_code == 201, other.text
    theirs = {"miniCluster": "other", "gpusPerReplica": 1, "template": template}
    made = local_api.post("/v1/cargos", json={"name": "job-1", "spec": theirs})
    assert made.status_code == 201, made.text
    job = {**spec, "template": {"gpusPerReplica": 1, "template": template}, "replicas": replicas}
    assert local_api.post("/v1/miniclusters", json={"name": "job", "spec": job}).status_code == 201


def test_shrinking_a_minicluster_leaves_a_cargo_of_another_holding_a_template_name(
    local_api: TestClient,
) -> None:
    """Cargo job-1 of MiniCluster other holds the name of job's template cargo 1 (job says
    NameTaken and makes job-0 and job-2). ``shrink job 3`` said it removed job-1 and deleted
    it: the other MiniCluster's cargo, by name. Both backends delete what the shared shrink
    plan names; it names job's own cargos only now."""
    _job_beside_others_job_1(local_api, 3)
    deadline = time.monotonic() + 60
    while True:
        listed = local_api.get("/v1/cargos", params={"miniCluster": "job"}).json()["items"]
        if sorted(c["name"] for c in listed) == ["job-0", "job-2"]:
            break
        assert time.monotonic() < deadline, listed
        time.sleep(0.1)

    shrunk = local_api.post("/v1/miniclusters/job:shrink", json={"count": 3})
    assert shrunk.status_code == 200, shrunk.text
    assert shrunk.json()["removed"] == ["job-2", "job-0"]
    kept = local_api.get("/v1/cargos/job-1")
    assert kept.status_code == 200, kept.text
    assert kept.json()["spec"]["miniCluster"] == "other"


def test_growing_onto_a_template_name_another_minicluster_holds_is_denied(
    local_api: TestClient,
) -> None:
    """``grow job 1`` when job-1 is MiniCluster other's cargo answered 'granted: job-1 added'
    and, with wait, that cargo's phase as the new cargo's. It is denied, naming what holds the
    name, and job's replicas stay."""
    _job_beside_others_job_1(local_api, 1)

    grown = local_api.post(
        "/v1/miniclusters/job:grow",
        json={"count": 1, "allowPending": True, "wait": True, "timeoutSeconds": 1},
    )
    assert grown.status_code == 200, grown.text
    assert grown.json()["result"] == "denied", grown.json()
    assert "cannot create template cargo job-1" in grown.json()["reasons"][0]
    assert local_api.get("/v1/miniclusters/job").json()["spec"]["replicas"] == 1
