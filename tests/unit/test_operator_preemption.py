"""Preemption through the decision pass converges (no API server; pods simulated): victims drain
one by one, none is placed back on the GPUs held for the preemptor, and the preemptor is
admitted; the notice stays on the victims."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from crane.lifecycle.decide import Decider
from crane.lifecycle.plan import Plan
from crane.operator.cache import ClusterCache
from crane.placement import Engine
from tests.unit.test_operator_decide import apply_statuses, cargo, minicluster, new_cache, node


def run_pass(decider: Decider, cache: ClusterCache, keep_deleting: set[str]) -> Plan:
    """One pass; created pods start Running, deleted pods vanish unless listed (draining)."""
    plan = decider.decide(cache)
    apply_statuses(cache, plan)
    for _, body in plan.pods:
        body = {**body, "status": {"phase": "Running", "containerStatuses": [{"ready": True}]}}
        cache.apply("pods", None, body)
    for namespace, name, _ in plan.pod_deletes:
        key = f"{namespace}/{name}"
        pod = cache.pods.get(key)
        if pod is None:
            continue
        if name in keep_deleting:
            cache.pods[key] = type(pod)(**{**pod.__dict__, "deleting": True})
        else:
            del cache.pods[key]
    return plan


def cond(body: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in body["status"].get("conditions", []) if c["type"] == type_), {})


def test_victims_drain_one_by_one_and_are_never_placed_back_on_the_preemptors_gpus() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("miniclusters", minicluster("low", 0, 16)),
        ("cargos", cargo("b1", "low", 1, 8)),
        ("cargos", cargo("b2", "low", 1, 8, created="2026-01-01T00:00:02Z")),
    )
    decider = Decider(Engine())
    for _ in range(3):
        run_pass(decider, cache, set())
    assert {cache.cargos[k]["status"]["phase"] for k in ("t/b1", "t/b2")} == {"Running"}
    cache.apply(
        "miniclusters",
        None,
        minicluster("high", 16, 16, priority=10, created="2026-01-02T00:00:00Z"),
    )
    # b2's pod takes its time to stop (grace period); b1's goes at once.
    placed_again = []
    notices: dict[str, dict[str, Any]] = {}
    for _ in range(6):
        plan = run_pass(decider, cache, {"b2-0"})
        for _ns, name, values in plan.pod_annotations:
            if "crane.io/notice" in values:
                notices[name] = json.loads(values["crane.io/notice"])
        deleted = {name for _ns, name, _grace in plan.pod_deletes}
        assert {name for _ns, name, _values in plan.pod_annotations} >= deleted
        placed_again += [
            w.name for w in plan.statuses if w.status.get("phase") in ("Placed", "Running")
        ]
    assert placed_again == [], "a victim was placed back while the preemptor waits"
    # every victim's pod was told why and until when before it was deleted
    assert set(notices) == {"b1-0", "b2-0"}
    for notice in notices.values():
        assert notice["reason"] == "Preempted" and "t/high" in notice["message"]
        deadline = datetime.fromisoformat(notice["deadline"]) - datetime.now(UTC)
        assert timedelta(0) < deadline <= timedelta(seconds=30)
    b1 = cache.cargos["t/b1"]
    assert b1["status"]["phase"] == "Pending" and b1["status"]["placement"] == []
    notice = cond(b1, "Preempted")
    assert notice["status"] == "True" and "t/high" in notice["message"]
    assert not decider.engine.is_admitted("t/high")
    assert "16 GPUs held for it" in cache.miniclusters["t/high"]["status"]["message"]
    # b2's pod finally goes: high is admitted on the held GPUs; the victims stay Pending.
    del cache.pods["t/b2-0"]
    for _ in range(4):
        run_pass(decider, cache, set())
    assert decider.engine.is_admitted("t/high")
    assert decider.engine.reservation("t/high") == {"n0": tuple(range(8)), "n1": tuple(range(8))}
    for k in ("t/b1", "t/b2"):
        assert cache.cargos[k]["status"]["phase"] == "Pending"
        assert cond(cache.cargos[k], "Preempted")["status"] == "True"
