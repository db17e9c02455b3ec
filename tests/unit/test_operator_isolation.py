"""One object that cannot become pods fails alone; every other object keeps being scheduled
(issue 10 item 3), and a template beyond its namespace's Pod Security level fails with a
condition and an event before any placement (issue 11 item 1)."""

from __future__ import annotations

from typing import Any

import pytest

from crane.lifecycle import cargo_lifecycle
from crane.lifecycle.decide import Decider
from crane.lifecycle.plan import Plan
from crane.operator.cache import ClusterCache
from crane.placement import Engine
from tests.unit.test_operator_decide import cargo, minicluster, new_cache, node, settle


def in_ns(body: dict[str, Any], namespace: str) -> dict[str, Any]:
    body["metadata"]["namespace"] = namespace
    body["metadata"]["uid"] = f"{namespace}-{body['metadata']['uid']}"
    return body


def with_container(body: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body["spec"]["template"]["spec"]["containers"][0].update(fields)
    return body


def namespace(name: str, level: str | None = None) -> dict[str, Any]:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    return {"metadata": {"name": name, "labels": labels}}


def cargo_status(cache: ClusterCache, key: str) -> dict[str, Any]:
    status: dict[str, Any] = cache.cargos[key].get("status") or {}
    return status


def conditions(cache: ClusterCache, key: str) -> dict[str, tuple[str, str, str]]:
    return {
        c["type"]: (c["status"], c["reason"], c.get("message", ""))
        for c in cargo_status(cache, key).get("conditions", [])
    }


def warnings(plans: list[Plan], name: str) -> list[tuple[str, str]]:
    return [
        (e.reason, e.message)
        for p in plans
        for e in p.events
        if e.type == "Warning" and e.involved["metadata"]["name"] == name
    ]


def two_namespaces(bad: dict[str, Any]) -> ClusterCache:
    return new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("miniclusters", in_ns(minicluster("mc", 8, 16), "a")),
        ("miniclusters", in_ns(minicluster("mc", 8, 16), "b")),
        ("cargos", bad),
        ("cargos", in_ns(cargo("good", "mc", 2, 4, created="2026-01-01T00:00:05Z"), "b")),
    )


@pytest.mark.parametrize(
    "field",
    [
        {"env": "x"},
        {"env": [1]},
        {"resources": "x"},
        {"resources": {"limits": "x"}},
        # a variable Crane sets (kubectl apply skips Crane's API): Crane's value would win
        {"env": [{"name": "CRANE_RDZV_ENDPOINT", "value": "other-rdzv.b.svc:29400"}]},
    ],
)
def test_malformed_template_fails_alone_and_others_are_placed(field: dict[str, Any]) -> None:
    bad = in_ns(with_container(cargo("bad", "mc", 1, 1), **field), "a")
    cache = two_namespaces(bad)
    plans = settle(Decider(Engine()), cache)
    status, reason, message = conditions(cache, "a/bad")["Failed"]
    assert (status, reason) == ("True", "InvalidSpec")
    assert "spec.containers[0]" in message
    assert any(r == "InvalidSpec" and "spec.containers[0]" in m for r, m in warnings(plans, "bad"))
    assert cargo_status(cache, "b/good")["phase"] == "Placed"
    assert sorted(pod["metadata"]["name"] for p in plans for _, pod in p.pods) == [
        "good-0",
        "good-1",
    ]


@pytest.mark.parametrize("where", [("metadata", "x"), ("tolerations", "x")])
def test_malformed_metadata_or_tolerations_fail_alone(where: tuple[str, str]) -> None:
    bad = in_ns(cargo("bad", "mc", 1, 1), "a")
    field, value = where
    if field == "metadata":
        bad["spec"]["template"]["metadata"] = value
    else:
        bad["spec"]["template"]["spec"][field] = value
    cache = two_namespaces(bad)
    settle(Decider(Engine()), cache)
    assert conditions(cache, "a/bad")["Failed"][1] == "InvalidSpec"
    assert cargo_status(cache, "b/good")["phase"] == "Placed"


def test_any_error_building_pods_fails_that_cargo_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    real = cargo_lifecycle.build_pod

    def exploding(meta: Any, spec: Any, placement: Any, world: Any) -> dict[str, Any]:
        if meta["name"] == "bad":
            raise TypeError("unexpected template shape")
        return real(meta, spec, placement, world)

    monkeypatch.setattr(cargo_lifecycle, "build_pod", exploding)
    cache = two_namespaces(in_ns(cargo("bad", "mc", 1, 4), "a"))
    plans = settle(Decider(Engine()), cache, passes=4)
    status, reason, message = conditions(cache, "a/bad")["Failed"]
    assert (status, reason) == ("True", "InvalidSpec") and "unexpected template shape" in message
    assert not cargo_status(cache, "a/bad").get("placement")
    assert cargo_status(cache, "b/good")["phase"] == "Placed"
    assert all(pod["metadata"]["name"].startswith("good-") for p in plans for _, pod in p.pods)


def test_huge_minicluster_fails_alone() -> None:
    huge = in_ns(minicluster("huge", 0, 2**40), "a")
    huge["spec"]["replicas"] = 10**9
    huge["spec"]["template"] = {"gpusPerReplica": 0}
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", huge),
        ("miniclusters", in_ns(minicluster("mc", 8, 16), "b")),
        ("cargos", in_ns(cargo("good", "mc", 2, 4), "b")),
    )
    plans = settle(Decider(Engine()), cache)
    mc_status = cache.miniclusters["a/huge"]["status"]
    failed = {c["type"]: c for c in mc_status["conditions"]}["Failed"]
    assert failed["reason"] == "InvalidSpec" and "gpus.max" in failed["message"]
    assert not [c for p in plans for c in p.cargo_creates]
    assert cargo_status(cache, "b/good")["phase"] == "Placed"


PRIVILEGED = {"securityContext": {"privileged": True}}


def test_template_beyond_the_namespace_level_fails_before_placement() -> None:
    bad = in_ns(with_container(cargo("root", "mc", 1, 1), **PRIVILEGED), "a")
    bad["spec"]["template"]["spec"]["hostPID"] = True
    cache = two_namespaces(bad)
    plans = settle(Decider(Engine()), cache)
    status, reason, message = conditions(cache, "a/root")["Failed"]
    assert (status, reason) == ("True", "PodSecurity")
    assert "spec.template.spec.hostPID" in message
    assert "spec.template.spec.containers[0].securityContext.privileged" in message
    assert "baseline" in message
    assert [r for r, _ in warnings(plans, "root")] == ["PodSecurity"]
    assert not any(pod["metadata"]["name"].startswith("root-") for p in plans for _, pod in p.pods)
    assert cargo_status(cache, "b/good")["phase"] == "Placed"


def test_namespace_label_sets_the_level() -> None:
    restricted = in_ns(cargo("plain", "mc", 1, 1), "r")
    privileged = in_ns(with_container(cargo("root", "mc", 1, 1), **PRIVILEGED), "p")
    cache = new_cache(
        ("nodes", node("n0")),
        ("namespaces", namespace("r", "restricted")),
        ("namespaces", namespace("p", "privileged")),
        ("miniclusters", in_ns(minicluster("mc", 0, 8), "r")),
        ("miniclusters", in_ns(minicluster("mc", 0, 8), "p")),
        ("cargos", restricted),
        ("cargos", privileged),
    )
    settle(Decider(Engine()), cache)
    assert conditions(cache, "r/plain")["Failed"][1] == "PodSecurity"
    assert cargo_status(cache, "p/root")["phase"] == "Placed"
