"""A pod the API server refuses for good (invalid, or against pod security) fails its cargo,
which lets its GPUs go; a refusal that may pass later (quota, a namespace being deleted) does
not. Without this the cargo stayed Placed, held its GPUs and asked for the pod every 15 s."""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException

from crane.kube.client import refusal
from crane.lifecycle.decide import Decider
from crane.lifecycle.plan import Applied
from crane.placement import Engine
from tests.unit.test_operator_decide import apply_statuses, cargo, minicluster, new_cache, node


def _refused(status: int, message: str) -> ApiException:
    err = ApiException(status=status)
    err.body = json.dumps({"kind": "Status", "message": message})
    return err


def test_invalid_and_pod_security_refusals_are_for_good_others_are_not() -> None:
    bad_name = 'Pod "a-0" is invalid: spec.containers[0].name: Invalid value: "Main_X"'
    assert refusal(_refused(422, bad_name)) == ("InvalidSpec", bad_name)
    assert refusal(_refused(400, "bad request")) == ("InvalidSpec", "bad request")
    assert refusal(_refused(413, "too large")) == ("InvalidSpec", "too large")
    security = 'pods "a-0" is forbidden: violates PodSecurity "restricted:latest": privileged'
    assert refusal(_refused(403, security)) == ("PodSecurity", security)
    assert refusal(_refused(403, 'pods "a-0" is forbidden: exceeded quota: gpus')) is None
    assert refusal(_refused(403, "because it is being terminated")) is None
    assert refusal(_refused(409, "exists")) is None
    assert refusal(_refused(500, "etcd timeout")) is None
    assert refusal(ApiException(status=422)) is not None, "no body: still a refusal for good"
    # The leader fence refuses a pod of a term that is over: the next leader makes it. Even an
    # answer as "invalid" (the fence's Lease unreadable) says nothing about the cargo's pod.
    fenced = "denied request: leader-fence: the operator term ns/crane-operator/a/3 is over"
    assert refusal(_refused(403, fenced)) is None
    assert refusal(_refused(422, "policy 'x-leader-fence' denied request: no params")) is None


def test_a_refused_pod_fails_its_cargo_and_frees_its_gpus_for_the_next() -> None:
    bad = cargo("bad", "mc", 1, 8)
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = "Main_X"
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", bad),
        ("cargos", cargo("good", "mc", 1, 8, created="2026-01-01T00:00:05Z")),
    )
    decider = Decider(Engine())
    plan = decider.decide(cache)
    apply_statuses(cache, plan)
    assert [p["metadata"]["name"] for _, p in plan.pods] == ["bad-0"], "bad came first"
    why = 'Pod "bad-0" is invalid: spec.containers[0].name: Invalid value: "Main_X"'
    decider.learn(plan, Applied(refused=(("t/bad", "t/bad-0", "InvalidSpec", why),)))
    plan = decider.decide(cache)
    apply_statuses(cache, plan)
    status = cache.cargos["t/bad"]["status"]
    assert status["phase"] == "Failed" and "Main_X" in status["message"]
    reasons = {c["type"]: c["reason"] for c in status["conditions"]}
    assert reasons["Failed"] == "InvalidSpec" and reasons["Ready"] == "InvalidSpec"
    assert any(e.type == "Warning" and "Main_X" in e.message for e in plan.events)
    placed = [p["metadata"]["name"] for _, p in plan.pods]
    for _ in range(3):
        plan = decider.decide(cache)
        apply_statuses(cache, plan)
        placed += [p["metadata"]["name"] for _, p in plan.pods]
    assert placed == ["good-0"], "the refused cargo's GPUs go to the next cargo in that pass"
    assert cache.cargos["t/bad"]["status"]["phase"] == "Failed", "and it stays failed"
