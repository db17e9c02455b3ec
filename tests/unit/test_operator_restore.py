"""Restart safety of the decision pass (no API server): the rebuilt state is grounded in the pods,
every clash between records is repaired (event + metric), a stale reservation never crashes."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from crane.lifecycle.decide import Decider
from crane.operator.actions import Actuator
from crane.operator.loop import SchedulingLoop
from crane.operator.metrics import Metrics
from crane.placement import Engine
from tests.unit.test_operator_decide import (
    apply_statuses,
    cargo,
    minicluster,
    new_cache,
    node,
    settle,
)
from tests.unit.test_operator_status_writes import VersionedServer


def pod(cargo_name: str, replica: int, node_name: str, ids: str, phase: str = "Running") -> Any:
    return {
        "metadata": {
            "name": f"{cargo_name}-{replica}",
            "namespace": "t",
            "uid": f"p-{cargo_name}-{replica}",
            "labels": {"crane.io/cargo": cargo_name, "crane.io/replica": str(replica)},
            "annotations": {"crane.io/gpu-ids": ids},
            "ownerReferences": [{"uid": f"uid-{cargo_name}"}],
        },
        "spec": {
            "nodeName": node_name,
            "containers": [
                {"name": "m", "resources": {"limits": {"nvidia.com/gpu": str(len(ids.split(",")))}}}
            ],
        },
        "status": {"phase": phase, "containerStatuses": [{"name": "m", "ready": True}]},
    }


def placed(name: str, mc: str, node_name: str, ids: list[int], at: str) -> dict[str, Any]:
    body = cargo(name, mc, 1, len(ids))
    body["status"] = {
        "phase": "Placed",
        "placement": [{"replica": 0, "node": node_name, "gpuIds": ids, "borrowed": True}],
        "replicas": 1,
        "placedAt": at,
    }
    return body


def admitted(name: str, lo: int, hi: int, reservation: dict[str, list[int]], **kw: Any) -> Any:
    body = minicluster(name, lo, hi, **kw)
    body["status"] = {
        "conditions": [{"type": "Admitted", "status": "True", "reason": "Admitted", "message": ""}],
        "reservation": reservation,
        "reservedGpus": sum(len(v) for v in reservation.values()),
    }
    return body


def gpus_used(decider: Decider) -> list[tuple[str, int, str]]:
    return [(s.node, s.gpu_id, s.cargo) for s in decider.engine.gpu_map() if s.cargo is not None]


def test_two_statuses_claim_one_gpu_the_pods_decide_and_the_loser_is_repaired() -> None:
    # Both statuses say n0:0-1; only b's pod runs there. a was placed earlier (by status).
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", placed("a", "mc", "n0", [0, 1], "2026-01-01T00:00:05Z")),
        ("cargos", placed("b", "mc", "n0", [0, 1], "2026-01-01T00:00:09Z")),
        ("pods", pod("b", 0, "n0", "0,1")),
    )
    decider = Decider(Engine())
    first = decider.decide(cache)
    apply_statuses(cache, first)
    assert [k for k, _ in first.conflicts] == ["cargo"]
    assert "t/b keeps it" in first.conflicts[0][1]
    events = [(e.involved["metadata"]["name"], e.reason) for e in first.events]
    assert ("a", "RestoreConflict") in events
    # a had no pods: its placement is rewritten at once, onto other GPUs, never b's.
    used = gpus_used(decider)
    assert [(n, g) for n, g, c in used if c == "t/b"] == [("n0", 0), ("n0", 1)]
    a_now = cache.cargos["t/a"]["status"]["placement"]
    assert a_now and not set(a_now[0]["gpuIds"]) & {0, 1}
    settle(decider, cache)
    assert cache.cargos["t/a"]["status"]["placement"] == a_now


def test_loser_with_pods_goes_pending_until_its_pods_are_gone() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", placed("a", "mc", "n0", [0, 1], "2026-01-01T00:00:05Z")),
        ("cargos", placed("b", "mc", "n0", [0, 1], "2026-01-01T00:00:09Z")),
        ("pods", pod("a", 0, "n0", "0,1", phase="Pending")),
        ("pods", pod("b", 0, "n0", "0,1")),
    )
    decider = Decider(Engine())
    plan = decider.decide(cache)
    apply_statuses(cache, plan)
    # both grounded: a was placed first, so a keeps GPUs 0-1 and b is repaired
    assert "t/a keeps it" in plan.conflicts[0][1]
    assert ("t", "b-0", None) in plan.pod_deletes
    loser = cache.cargos["t/b"]["status"]
    assert loser["phase"] == "Pending" and loser["placement"] == []
    reason = {c["type"]: c["reason"] for c in loser["conditions"]}
    assert reason["Placed"] == "RestoreConflict"


def test_both_pods_run_on_one_gpu_earliest_wins_loser_pods_deleted_and_gpus_held() -> None:
    cache = new_cache(
        ("nodes", node("n0", gpus=4)),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", placed("a", "mc", "n0", [0, 1], "2026-01-01T00:00:05Z")),
        ("cargos", placed("b", "mc", "n0", [1, 2], "2026-01-01T00:00:09Z")),
        ("pods", pod("a", 0, "n0", "0,1")),
        ("pods", pod("b", 0, "n0", "1,2")),
    )
    decider = Decider(Engine())
    plan = decider.decide(cache)
    assert sorted(gpus_used(decider)) == [("n0", 0, "t/a"), ("n0", 1, "t/a")]
    assert ("t", "b-0", None) in plan.pod_deletes, "the loser's pods are deleted"
    # While b's pod still runs, GPU 2 (which it holds) is not handed out; nor is GPU 3: the two
    # pods ask the node for 4 GPUs in all, so the device plugin gave out every one.
    slots = {s.gpu_id: s for s in decider.engine.gpu_map()}
    assert slots[2].busy and slots[3].busy
    cache.apply("pods", "DELETED", pod("b", 0, "n0", "1,2"))
    decider.decide(cache)
    slots = {s.gpu_id: s for s in decider.engine.gpu_map()}
    assert not slots[2].busy and not slots[3].busy, "free once b's pod is gone"


def test_pods_ground_the_gpu_ids_over_a_stale_status() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", placed("a", "mc", "n0", [0, 1], "2026-01-01T00:00:05Z")),
        ("pods", pod("a", 0, "n0", "4,5")),
    )
    decider = Decider(Engine())
    decider.decide(cache)
    assert sorted(gpus_used(decider)) == [("n0", 4, "t/a"), ("n0", 5, "t/a")]


def test_cargo_of_a_minicluster_not_admitted_or_deleted_keeps_its_gpus() -> None:
    deleting = minicluster("gone", 0, 8)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
    queued = minicluster("queued", 0, 8)
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", deleting),
        ("miniclusters", queued),
        ("miniclusters", minicluster("other", 0, 8)),
        ("cargos", placed("d", "gone", "n0", [0, 1, 2, 3], "2026-01-01T00:00:05Z")),
        ("cargos", placed("q", "queued", "n0", [4, 5], "2026-01-01T00:00:05Z")),
        ("pods", pod("d", 0, "n0", "0,1,2,3")),
        ("pods", pod("q", 0, "n0", "4,5")),
        ("cargos", cargo("new", "other", 1, 4)),
    )
    decider = Decider(Engine())
    plans = settle(decider, cache)
    held = {g for n, g, c in gpus_used(decider) if c in ("t/d", "t/q")}
    assert held == {0, 1, 2, 3, 4, 5}
    new = cache.cargos["t/new"]["status"]
    assert new["phase"] == "Pending", "only 2 GPUs are free: the 4-GPU cargo waits"
    assert not any(c for p in plans for c in p.conflicts)


def test_stale_reservation_map_is_repaired_not_a_crash_loop() -> None:
    # r1's min went to 0 but a merge patch left its 8 GPUs in status.reservation; r2 reserved
    # the same GPUs since. On main every pass raised ValueError: two statuses claim it.
    r1 = admitted("r1", 0, 8, {"n0": list(range(8))}, created="2026-01-01T00:00:00Z")
    r2 = admitted("r2", 8, 8, {"n0": list(range(8))}, created="2026-01-01T00:01:00Z")
    cache = new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("miniclusters", r1),
        ("miniclusters", r2),
        ("cargos", cargo("job", "r2", 1, 8)),
    )
    decider = Decider(Engine())
    plans = settle(decider, cache)
    assert decider.engine.reservation("t/r2") == {"n0": tuple(range(8))}
    assert decider.engine.reservation("t/r1") == {}
    assert cache.miniclusters["t/r1"]["status"]["reservation"] == {}
    assert [k for p in plans for k, _ in p.conflicts] == ["reservation"]
    assert any(e.reason == "RestoreConflict" for e in plans[0].events)
    job = cache.cargos["t/job"]["status"]
    assert job["phase"] == "Placed" and job["placement"][0]["node"] == "n0"


def test_restore_is_the_same_whatever_the_order_of_the_cache() -> None:
    objects: list[tuple[str, dict[str, Any]]] = [
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", placed("a", "mc", "n0", [0, 1], "2026-01-01T00:00:05Z")),
        ("cargos", placed("b", "mc", "n0", [1, 2], "2026-01-01T00:00:05Z")),
        ("cargos", placed("c", "mc", "n0", [2, 3], "2026-01-01T00:00:05Z")),
    ]
    dumps = []
    for order in (objects, list(reversed(objects))):
        decider = Decider(Engine())
        decider.decide(new_cache(*copy.deepcopy(order)))
        dumps.append(sorted(gpus_used(decider)))
    assert dumps[0] == dumps[1]
    assert [(n, g) for n, g, c in dumps[0] if c in ("t/a", "t/c")] == [
        ("n0", 0),
        ("n0", 1),
        ("n0", 2),
        ("n0", 3),
    ], "a and c (first by key) keep their GPUs; b lost and was placed elsewhere"


def test_each_repair_is_counted_in_the_restore_conflicts_metric() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", placed("a", "mc", "n0", [0, 1], "2026-01-01T00:00:05Z")),
        ("cargos", placed("b", "mc", "n0", [0, 1], "2026-01-01T00:00:09Z")),
        ("pods", pod("b", 0, "n0", "0,1")),
    )
    server = VersionedServer(cache)
    metrics = Metrics()
    decider = Decider(Engine())
    actuator = Actuator(server, metrics)  # type: ignore[arg-type]
    loop = SchedulingLoop(cache, lambda: decider, actuator, None, metrics)  # type: ignore[arg-type]

    async def passes() -> None:
        for _ in range(2):
            await loop.one_pass(decider)
            await loop.flush()

    asyncio.run(passes())
    actuator.close()
    value = metrics.registry.get_sample_value("crane_restore_conflicts_total", {"kind": "cargo"})
    assert value == 1


def test_a_status_placement_edited_by_hand_is_rewritten_from_the_pods_on_restart() -> None:
    """``kubectl patch --subresource=status`` gave b the GPUs of a while b's pod holds others:
    the restarted operator trusts the pods and writes b's status back to what they hold, so
    no two statuses show one GPU and nothing is deleted."""
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", placed("a", "mc", "n0", [0, 1], "2026-01-01T00:00:05Z")),
        ("pods", pod("a", 0, "n0", "0,1")),
        ("cargos", placed("b", "mc", "n0", [0, 1], "2026-01-01T00:00:06Z")),
        ("pods", pod("b", 0, "n0", "4,5")),
    )
    decider = Decider(Engine())
    plans = settle(decider, cache)
    assert sorted(gpus_used(decider)) == [
        ("n0", 0, "t/a"),
        ("n0", 1, "t/a"),
        ("n0", 4, "t/b"),
        ("n0", 5, "t/b"),
    ]
    status = {k: b["status"]["placement"] for k, b in cache.cargos.items()}
    assert [r["gpuIds"] for r in status["t/b"]] == [[4, 5]], "b's status says what its pod holds"
    assert [r["gpuIds"] for r in status["t/a"]] == [[0, 1]]
    assert not any(p.pod_deletes or p.pods for p in plans), "no pod was touched"


def test_a_status_placement_edited_by_hand_while_the_operator_runs_is_written_back() -> None:
    """The same edit without a restart: once the watch has shown the operator's own write,
    the stored status is what it compares with, so the edit is seen and undone."""
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", cargo("a", "mc", 1, 2)),
        ("cargos", cargo("b", "mc", 1, 2)),
    )
    decider = Decider(Engine())
    settle(decider, cache)
    truth = {k: copy.deepcopy(b["status"]["placement"]) for k, b in cache.cargos.items()}
    assert truth["t/a"] != truth["t/b"]
    forged = copy.deepcopy(cache.cargos["t/b"])
    forged["status"]["placement"] = copy.deepcopy(truth["t/a"])
    forged["metadata"]["resourceVersion"] = "forged"
    cache.apply("cargos", "MODIFIED", forged)
    plans = settle(decider, cache)
    assert cache.cargos["t/b"]["status"]["placement"] == truth["t/b"]
    assert not any(p.pod_deletes for p in plans)
