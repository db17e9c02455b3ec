"""The decision pass on a cache filled with API objects (no API server): placement is written
before pods, restarts rebuild from status without placing twice, preemption posts a notice."""

from __future__ import annotations

import asyncio
import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crane.kube.names import CARGOS, FINALIZER, MINICLUSTERS, NOTICE_ANNOTATION
from crane.lifecycle.cargo_lifecycle import POD_GONE
from crane.lifecycle.decide import Decider
from crane.lifecycle.plan import Plan
from crane.operator.cache import ClusterCache
from crane.placement import Engine

LEVELS = (
    "topology.kubernetes.io/zone",
    "crane.io/block",
    "crane.io/rack",
    "nvidia.com/gpu.clique",
    "kubernetes.io/hostname",
)


def node(name: str, gpus: int = 8, rack: str = "r0", ready: bool = True) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {
                "crane.io/managed": "true",
                "crane.io/rack": rack,
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
            },
        },
        "status": {
            "allocatable": {"nvidia.com/gpu": str(gpus)},
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        },
    }


def minicluster(
    name: str, lo: int, hi: int, priority: int = 0, created: str = "2026-01-01T00:00:00Z"
) -> dict[str, Any]:
    return {
        "apiVersion": "crane.io/v1alpha1",
        "kind": "MiniCluster",
        "metadata": {
            "name": name,
            "namespace": "t",
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": created,
        },
        "spec": {"gpuType": "H100", "gpus": {"min": lo, "max": hi}, "priority": priority},
    }


def templated(body: dict[str, Any], replicas: int, gpus_per_replica: int) -> dict[str, Any]:
    """``body`` with ``replicas`` template cargos of one replica of ``gpus_per_replica`` GPUs."""
    body["spec"] |= {
        "replicas": replicas,
        "template": {
            "replicas": 1,
            "gpusPerReplica": gpus_per_replica,
            "template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}},
        },
    }
    return body


def cargo(
    name: str, mc: str, replicas: int, gpus: int, created: str = "2026-01-01T00:00:01Z"
) -> dict[str, Any]:
    return {
        "apiVersion": "crane.io/v1alpha1",
        "kind": "Cargo",
        "metadata": {
            "name": name,
            "namespace": "t",
            "uid": f"uid-{name}",
            "generation": 1,
            "creationTimestamp": created,
        },
        "spec": {
            "miniCluster": mc,
            "replicas": replicas,
            "gpusPerReplica": gpus,
            "template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}},
        },
    }


def new_cache(*objects: tuple[str, dict[str, Any]]) -> ClusterCache:
    async def make() -> ClusterCache:
        return ClusterCache(LEVELS)

    cache = asyncio.run(make())
    for kind, body in objects:
        cache.apply(kind, None, body)
    return cache


def apply_statuses(cache: ClusterCache, plan: Plan) -> None:
    """What the API server does with the plan's status writes, as the watch would report it."""
    for w in plan.statuses:
        store = cache.cargos if w.plural == CARGOS else cache.miniclusters
        store[f"{w.namespace}/{w.name}"]["status"] = w.status


def created(cache: ClusterCache, plans: list[Plan]) -> list[dict[str, Any]]:
    """What the API server and the watch make of the plans' pod creates: the pods exist
    (Pending); returns them, for a test to delete them again."""
    pods = []
    for plan in plans:
        for _, pod in plan.pods:
            meta = {**pod["metadata"], "uid": f"p-{pod['metadata']['name']}"}
            pods.append({**pod, "metadata": meta, "status": {"phase": "Pending"}})
            cache.apply("pods", None, pods[-1])
    return pods


def gone(cache: ClusterCache, cargo_key: str, pods: list[dict[str, Any]]) -> None:
    """The API server deleted a cargo and garbage-collected its pods; the watch showed it."""
    del cache.cargos[cargo_key]
    for pod in pods:
        cache.apply("pods", "DELETED", pod)


def settle(decider: Decider, cache: ClusterCache, passes: int = 3) -> list[Plan]:
    plans = []
    for _ in range(passes):
        plan = decider.decide(cache)
        apply_statuses(cache, plan)
        plans.append(plan)
    return plans


def test_placement_written_before_pods_and_pods_carry_rendezvous_env() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("miniclusters", minicluster("mc", 8, 16)),
        ("cargos", cargo("job", "mc", 2, 4)),
    )
    decider = Decider(Engine())
    plans = settle(decider, cache)
    placed = [
        w for p in plans for w in p.statuses if w.plural == CARGOS and w.status.get("placement")
    ]
    assert placed, "the cargo's placement is written to its status"
    pods = [pod for p in plans for _, pod in p.pods]
    assert sorted(p["metadata"]["name"] for p in pods) == ["job-0", "job-1"]
    first = next(p for p in plans if p.pods)
    assert any(w.cargo_key == "t/job" and w.status["placement"] for w in first.statuses)
    env = {e["name"]: e["value"] for e in pods[0]["spec"]["containers"][0]["env"]}
    assert env["WORLD_SIZE"] == "2" and env["MASTER_ADDR"] == "job-0.mc.t.svc"
    assert pods[0]["spec"]["nodeName"] in ("n0", "n1")
    mc_status = cache.miniclusters["t/mc"]["status"]
    admitted = {c["type"]: c["status"] for c in mc_status["conditions"]}
    assert admitted["Admitted"] == "True" and mc_status["reservedGpus"] == 8


def test_restart_rebuilds_from_status_and_places_nothing_twice() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("miniclusters", minicluster("mc", 8, 16)),
        ("cargos", cargo("a", "mc", 2, 4)),
        ("cargos", cargo("b", "mc", 1, 8)),
    )
    settle(Decider(Engine()), cache)
    before = {k: b["status"]["placement"] for k, b in cache.cargos.items()}
    restarted = Decider(Engine())
    plans = settle(restarted, cache)
    after = {k: b["status"]["placement"] for k, b in cache.cargos.items()}
    assert after == before
    recreated = [pod["metadata"]["name"] for p in plans for _, pod in p.pods]
    assert sorted(recreated) == ["a-0", "a-1", "b-0"], (
        "missing pods are created at the recorded places"
    )
    used = [(r["node"], g) for pl in after.values() for r in pl for g in r["gpuIds"]]
    assert len(used) == len(set(used)) == 16


def test_queued_minicluster_says_why_and_position() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("miniclusters", minicluster("first", 4, 4, priority=1)),
        ("miniclusters", minicluster("big", 16, 16)),
    )
    settle(Decider(Engine()), cache)
    status = cache.miniclusters["t/big"]["status"]
    assert status["queuePosition"] == 1
    assert "needs 16" in status["message"]
    cond = next(c for c in status["conditions"] if c["type"] == "Admitted")
    assert cond["status"] == "False" and cond["reason"] == "Queued"


def test_queued_minicluster_says_whom_it_waits_behind_and_when_it_should_start() -> None:
    running = cargo("job", "run", 1, 8)
    running["spec"]["expectedDurationSeconds"] = 600
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("run", 0, 8, priority=5)),
        ("cargos", running),
    )
    decider = Decider(Engine())
    settle(decider, cache)
    for late in (
        minicluster("head", 8, 8, priority=1),
        minicluster("next", 2, 2, created="2026-01-01T00:00:05Z"),
    ):
        cache.apply("miniclusters", None, late)
    settle(decider, cache)
    head = cache.miniclusters["t/head"]["status"]
    assert head["queuePosition"] == 1
    # the expected end counts from the cargo's start (its placement until it runs), not from
    # its creation (2026-01-01T00:00:01Z): as in Docker mode (crane.lifecycle.cargo_status)
    job = cache.cargos["t/job"]["status"]
    since = _when(job.get("startedAt") or job["placedAt"])
    end = (since + timedelta(seconds=600)).replace(microsecond=0)
    assert _when(head["estimatedStart"]).replace(microsecond=0) == end, (head, job)
    said = f"expected to start by {end.strftime('%Y-%m-%dT%H:%M:%SZ')}, when cargo t/job ends"
    assert said in head["message"]
    nxt = cache.miniclusters["t/next"]["status"]
    assert nxt["queuePosition"] == 2
    assert nxt["waitsBehind"] == ["t/head"]
    assert "waits behind t/head" in nxt["message"]


def _when(value: Any) -> datetime:
    """A status time (a string with ``Z`` or a datetime) as an aware datetime."""
    got = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return got if got.tzinfo else got.replace(tzinfo=UTC)


def test_minicluster_that_can_never_fit_is_unschedulable_without_a_position() -> None:
    cache = new_cache(("nodes", node("n0")), ("miniclusters", minicluster("big", 16, 16)))
    settle(Decider(Engine()), cache)
    status = cache.miniclusters["t/big"]["status"]
    assert status.get("queuePosition") is None
    assert "the cluster has 8 H100 GPUs in all" in status["message"]
    cond = next(c for c in status["conditions"] if c["type"] == "Admitted")
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"


def test_higher_priority_preempts_borrowed_cargo_with_notice() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("miniclusters", minicluster("low", 0, 16)),
        ("cargos", cargo("borrower", "low", 2, 8)),
    )
    decider = Decider(Engine())
    settle(decider, cache)
    assert cache.cargos["t/borrower"]["status"]["phase"] == "Placed"
    cache.apply(
        "miniclusters", None, minicluster("high", 8, 8, priority=10, created="2026-01-02T00:00:00Z")
    )
    plans = settle(decider, cache)
    status = cache.cargos["t/borrower"]["status"]
    preempted = next(c for c in status["conditions"] if c["type"] == "Preempted")
    assert preempted["status"] == "True" and "t/high" in preempted["message"]
    assert any(e.reason == "Preempted" for p in plans for e in p.events)
    deletes = {d[1] for p in plans for d in p.pod_deletes}
    assert deletes == set(), "no pods were made in this test, so there is nothing to delete yet"


@pytest.mark.parametrize("replicas", [0])
def test_scaled_to_zero_cargo_waits_with_reason(replicas: int) -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", cargo("c", "mc", replicas, 1)),
    )
    settle(Decider(Engine()), cache)
    status = cache.cargos["t/c"]["status"]
    assert status["phase"] == "Pending"
    assert (
        next(c for c in status["conditions"] if c["type"] == "Placed")["reason"] == "ScaledToZero"
    )


def pod_of(cargo_name: str, node_name: str, gpu_ids: str, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"{cargo_name}-0",
            "namespace": "t",
            "uid": f"p-{cargo_name}",
            "labels": {"crane.io/cargo": cargo_name, "crane.io/replica": "0"},
            "annotations": {"crane.io/gpu-ids": gpu_ids},
            "ownerReferences": [{"uid": f"uid-{cargo_name}"}],
        },
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "m", "resources": {"limits": {"nvidia.com/gpu": "2"}}}],
        },
        "status": {"phase": phase, "containerStatuses": [{"name": "m", "ready": True}]},
    }


def test_node_lost_fails_never_cargo_and_moves_onfailure_cargo() -> None:
    fragile, resilient = cargo("fragile", "mc", 1, 2), cargo("resilient", "mc", 1, 2)
    resilient["spec"]["restartPolicy"] = "OnFailure"
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", fragile),
        ("cargos", resilient),
    )
    decider = Decider(Engine())
    settle(decider, cache)
    for key in ("t/fragile", "t/resilient"):
        p = cache.cargos[key]["status"]["placement"][0]
        name = key.split("/")[1]
        cache.apply("pods", None, pod_of(name, p["node"], ",".join(map(str, p["gpuIds"]))))
    settle(decider, cache, 1)
    cache.apply("nodes", None, node("n1"))
    cache.apply("nodes", None, node("n0", ready=False))
    plans = settle(decider, cache, 2)
    failed = cache.cargos["t/fragile"]["status"]
    assert failed["phase"] == "Failed"
    assert next(c for c in failed["conditions"] if c["type"] == "Failed")["reason"] == "NodeLost"
    assert ("t", "fragile-0", 0) in [d for p in plans for d in p.pod_deletes], (
        "lost pods are force-deleted"
    )
    for name in ("fragile-0", "resilient-0"):
        cache.apply("pods", "DELETED", pod_of(name[:-2], "n0", ""))
    settle(decider, cache, 2)
    moved = cache.cargos["t/resilient"]["status"]
    assert moved["restarts"] == 1 and moved["placement"][0]["node"] == "n1"


@pytest.mark.parametrize("pods_go_first", [False, True])
def test_a_node_object_deleted_under_a_running_gang_is_a_lost_node(pods_go_first: bool) -> None:
    """``kubectl delete node n0`` under a running gang (its pods garbage-collected before or
    after the watch shows the node gone): the cargo fails saying its node was deleted (reason
    NodeLost, as Docker mode says of a removed host), not that its pod was deleted by hand."""
    decider, cache, pods = _running_gang(_restart_policy("Never"))
    if pods_go_first:
        for pod in pods:
            cache.apply("pods", "DELETED", pod)
    cache.apply("nodes", "DELETED", node("n0"))
    deleted = [d for plan in settle(decider, cache, 2) for d in plan.pod_deletes]
    if not pods_go_first:
        assert sorted(set(deleted)) == [("t", "job-0", 0), ("t", "job-1", 0)], "not force-deleted"
        for pod in pods:
            cache.apply("pods", "DELETED", pod)
        settle(decider, cache)
    status = cache.cargos["t/job"]["status"]
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "NodeLost", failed
    assert status["message"] == "node n0 was deleted", status["message"]
    assert status["placement"] == []


def test_finalizer_held_until_deleted_cargo_pods_are_gone() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 8, 8)),
        ("cargos", cargo("job", "mc", 1, 8)),
    )
    decider = Decider(Engine())
    first = decider.decide(cache)
    assert first.metadata[(CARGOS, "t", "job")]["finalizers"] == [FINALIZER]
    assert first.metadata[(MINICLUSTERS, "t", "mc")]["finalizers"] == [FINALIZER]
    apply_statuses(cache, first)
    ((_, pod),) = first.pods
    pod["status"] = {"phase": "Running"}
    cache.apply("pods", "ADDED", pod)
    cache.cargos["t/job"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    draining = decider.decide(cache)
    assert draining.pod_deletes == [("t", "job-0", None)]
    assert not draining.finalizer_removals, "finalizer removed while the pod still runs"
    assert decider.engine.usage("t/mc").in_use_gpus == 8
    cache.apply("pods", "DELETED", pod)
    done = decider.decide(cache)
    assert done.finalizer_removals == [(CARGOS, "t", "job", 0)]
    assert decider.engine.usage("t/mc").in_use_gpus == 0


def test_deleted_minicluster_deletes_its_cargos_then_lets_go() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 8, 8)),
        ("cargos", cargo("job", "mc", 1, 8)),
    )
    decider = Decider(Engine())
    pods = created(cache, settle(decider, cache, passes=1))
    cache.miniclusters["t/mc"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    plan = decider.decide(cache)
    assert plan.cargo_deletes == [("t", "job")] and not plan.finalizer_removals
    gone(cache, "t/job", pods)
    plan = decider.decide(cache)
    assert plan.finalizer_removals == [(MINICLUSTERS, "t", "mc", 0)]


def test_held_minicluster_stops_its_cargos_releases_its_gpus_and_queues_again_on_release() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 8, 8)),
        ("miniclusters", minicluster("next", 8, 8, created="2026-01-01T00:00:05Z")),
        ("cargos", cargo("job", "mc", 1, 8)),
    )
    decider = Decider(Engine())
    pods = created(cache, settle(decider, cache, passes=1))
    assert decider.engine.is_admitted("t/mc") and not decider.engine.is_admitted("t/next")
    cache.miniclusters["t/mc"]["spec"]["suspend"] = True
    plan = decider.decide(cache)
    apply_statuses(cache, plan)
    assert plan.cargo_deletes == [("t", "job")]
    status = cache.miniclusters["t/mc"]["status"]
    admitted = next(c for c in status["conditions"] if c["type"] == "Admitted")
    assert admitted["status"] == "False" and admitted["reason"] == "Held"
    assert "crane mc release mc" in status["message"]
    assert any(e.reason == "Held" for e in plan.events)
    assert decider.engine.is_admitted("t/mc"), "GPUs released before the cargo is gone"
    gone(cache, "t/job", pods)
    settle(decider, cache, passes=2)
    assert not decider.engine.is_admitted("t/mc")
    assert decider.engine.is_admitted("t/next"), "the held MiniCluster's GPUs were not released"
    assert cache.miniclusters["t/mc"]["status"]["reservedGpus"] == 0
    assert "t/mc" in cache.miniclusters, "hold deleted the MiniCluster itself"
    cache.miniclusters["t/next"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:02:00Z"
    cache.miniclusters["t/mc"]["spec"]["suspend"] = False
    settle(decider, cache, passes=2)
    assert decider.engine.is_admitted("t/mc")
    admitted = next(
        c for c in cache.miniclusters["t/mc"]["status"]["conditions"] if c["type"] == "Admitted"
    )
    assert admitted["status"] == "True"


def test_cargo_added_to_a_held_minicluster_is_never_placed() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("miniclusters", minicluster("mc", 8, 16)),
        ("cargos", cargo("job", "mc", 1, 8)),
    )
    decider = Decider(Engine())
    settle(decider, cache, passes=1)
    cache.miniclusters["t/mc"]["spec"]["suspend"] = True
    apply_statuses(cache, decider.decide(cache))
    cache.apply("cargos", None, cargo("late", "mc", 1, 8, created="2026-01-01T00:01:00Z"))
    plan = decider.decide(cache)
    assert ("t", "late") in plan.cargo_deletes
    assert not plan.pods and "t/late" not in decider.state.cargos, "a held MC's cargo was placed"


def test_held_template_minicluster_regrows_its_cargos_on_release() -> None:
    body = templated(minicluster("mc", 8, 8), 2, 4)
    body["spec"]["suspend"] = True
    cache = new_cache(("nodes", node("n0")), ("miniclusters", body))
    decider = Decider(Engine())
    plans = settle(decider, cache, passes=2)
    assert not any(p.cargo_creates for p in plans), "a held MiniCluster grew cargos"
    assert not decider.engine.is_admitted("t/mc")
    cache.miniclusters["t/mc"]["spec"]["suspend"] = False
    plan = decider.decide(cache)
    assert sorted(c["metadata"]["name"] for c in plan.cargo_creates) == ["mc-0", "mc-1"]


def test_a_minicluster_scaled_to_thousands_grows_a_step_per_pass_with_a_short_event() -> None:
    """A template MiniCluster at 5,000 replicas of a GPU-less template: one pass asks for the
    first hundred cargos (not 5,000 writes while every other tenant waits) and its event names
    five of them."""
    body = templated(minicluster("mc", 0, 8), 5_000, 0)
    cache = new_cache(("nodes", node("n0")), ("miniclusters", body))
    plan = Decider(Engine()).decide(cache)
    names = [c["metadata"]["name"] for c in plan.cargo_creates]
    assert names == [f"mc-{i}" for i in range(100)]
    (scaled,) = [e for e in plan.events if e.reason == "ScaledUp"]
    assert scaled.message == "creating cargos mc-0, mc-1, mc-2, mc-3, mc-4 and 95 more"


def test_a_finished_cargo_says_its_exit_code_like_sacct() -> None:
    ok, bad = cargo("ok", "mc", 1, 2), cargo("bad", "mc", 1, 2)
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", ok),
        ("cargos", bad),
    )
    decider = Decider(Engine())
    settle(decider, cache)
    for name, phase, code in (("ok", "Succeeded", 0), ("bad", "Failed", 3)):
        p = cache.cargos[f"t/{name}"]["status"]["placement"][0]
        pod = pod_of(name, p["node"], ",".join(map(str, p["gpuIds"])), phase)
        pod["status"]["containerStatuses"][0]["state"] = {
            "terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}
        }
        cache.apply("pods", None, pod)
    settle(decider, cache, 1)
    done = {n: cache.cargos[f"t/{n}"]["status"] for n in ("ok", "bad")}
    assert (done["ok"]["phase"], done["ok"]["exitCode"]) == ("Succeeded", 0)
    assert (done["bad"]["phase"], done["bad"]["exitCode"]) == ("Failed", 3)
    assert "exited with code 3" in done["bad"]["message"]


def test_nothing_is_created_in_a_namespace_being_deleted() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", cargo("job", "mc", 2, 2)),
    )
    decider = Decider(Engine())
    settle(decider, cache)
    assert cache.cargos["t/job"]["status"]["placement"], "placed while the namespace lives"
    # the namespace controller deletes the pods; the cargo still stands, the namespace ends
    cache.apply(
        "namespaces",
        None,
        {
            "metadata": {"name": "t", "deletionTimestamp": "2026-01-01T00:00:09Z"},
            "status": {"phase": "Terminating"},
        },
    )
    decider.state.requested.clear()  # as when the pods' creation was asked long ago
    for plan in settle(decider, cache, 3):
        assert not plan.pods and not plan.services and not plan.cargo_creates, (
            "a create in a terminating namespace is refused with 403: never sent"
        )
    cache.apply("namespaces", None, {"metadata": {"name": "t"}, "status": {"phase": "Active"}})
    decider.state.requested.clear()
    recreated = [pod for p in settle(decider, cache, 2) for _, pod in p.pods]
    assert recreated, "a namespace that lives again gets its pods"


def test_a_pass_that_reuses_released_gpus_marks_the_release_and_the_claim() -> None:
    """``done`` finishes and ``next`` takes its GPUs in the same pass: the actuator must write
    the release first and the claim only after it (tests/unit/test_operator_actions.py)."""
    cache = new_cache(
        ("nodes", node("n0", gpus=2)),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", cargo("done", "mc", 1, 2)),
    )
    decider = Decider(Engine())
    settle(decider, cache)
    p = cache.cargos["t/done"]["status"]["placement"][0]
    cache.apply(
        "pods", None, pod_of("done", p["node"], ",".join(map(str, p["gpuIds"])), "Succeeded")
    )
    cache.apply("cargos", None, cargo("next", "mc", 1, 2, created="2026-01-01T00:00:02Z"))
    plan = decider.decide(cache)
    writes = {w.name: w for w in plan.statuses if w.plural == CARGOS}
    assert writes["done"].status["phase"] == "Succeeded" and writes["done"].releases
    assert writes["next"].status["placement"] and writes["next"].claims
    assert not writes["done"].claims and not writes["next"].releases


def _running_gang(cargo_body: dict[str, Any]) -> tuple[Decider, ClusterCache, list[dict[str, Any]]]:
    """A cargo placed and its pods running (as the API server and kubelet would report them)."""
    cache = new_cache(
        ("nodes", node("n0")), ("miniclusters", minicluster("mc", 0, 8)), ("cargos", cargo_body)
    )
    decider = Decider(Engine())
    pods = created(cache, settle(decider, cache))
    for pod in pods:
        pod["status"] = {"phase": "Running", "containerStatuses": [{"name": "m", "ready": True}]}
        cache.apply("pods", None, pod)
    settle(decider, cache)
    assert cache.cargos["t/job"]["status"]["phase"] == "Running"
    return decider, cache, pods


def _placed_gang(cargo_body: dict[str, Any]) -> tuple[Decider, ClusterCache, list[dict[str, Any]]]:
    """A cargo placed, its pods made but not running yet (pulling, starting)."""
    cache = new_cache(
        ("nodes", node("n0")), ("miniclusters", minicluster("mc", 0, 8)), ("cargos", cargo_body)
    )
    decider = Decider(Engine())
    pods = created(cache, settle(decider, cache))
    settle(decider, cache)
    assert cache.cargos["t/job"]["status"]["phase"] == "Placed"
    return decider, cache, pods


def _edit_and_lose_a_pod(
    cache: ClusterCache, pods: list[dict[str, Any]], edit: dict[str, Any]
) -> None:
    """``kubectl edit cargo job`` (a new generation), then replica 1's pod is deleted."""
    body = copy.deepcopy(cache.cargos["t/job"])
    body["spec"] |= edit
    body["metadata"]["generation"] += 1
    cache.apply("cargos", None, body)
    cache.apply("pods", "DELETED", next(p for p in pods if p["metadata"]["name"] == "job-1"))


def test_a_pod_made_again_after_gpus_per_replica_was_edited_asks_only_for_its_assigned_gpus() -> (
    None
):
    decider, cache, pods = _placed_gang(cargo("job", "mc", 2, 1))
    _edit_and_lose_a_pod(cache, pods, {"gpusPerReplica": 8})
    remade = [pod for p in settle(decider, cache) for _, pod in p.pods]
    assert [p["metadata"]["name"] for p in remade] == ["job-1"]
    ids = remade[0]["metadata"]["annotations"]["crane.io/gpu-ids"].split(",")
    limits = remade[0]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == str(len(ids)) == "1", (
        "the pod asks the device plugin for GPUs Crane never assigned it"
    )


def test_a_template_edited_past_the_namespace_level_after_placement_makes_no_pod() -> None:
    decider, cache, pods = _placed_gang(cargo("job", "mc", 2, 1))
    privileged = {
        "spec": {
            "hostPID": True,
            "containers": [
                {"name": "main", "image": "busybox", "securityContext": {"privileged": True}}
            ],
        }
    }
    _edit_and_lose_a_pod(cache, pods, {"template": privileged})
    plans = settle(decider, cache)
    assert not [pod for p in plans for _, pod in p.pods], "a privileged pod was created"
    status = cache.cargos["t/job"]["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "PodSecurity"
    assert "spec.template.spec.hostPID" in failed["message"]


@pytest.mark.parametrize("how", ["pod deleted", "replica failed"])
def test_a_gang_restarting_after_its_template_was_edited_past_the_level_makes_no_pod(
    how: str,
) -> None:
    """A running ``OnFailure`` gang whose template was edited to ``hostPID`` and privileged
    with kubectl, then a replica goes: the restart (the gang placed again) makes no pod beyond
    the namespace's level, as Pod Security Admission would refuse it; the cargo fails saying
    which field, and its other pod is stopped."""
    decider, cache, pods = _running_gang(_restart_policy("OnFailure"))
    body = copy.deepcopy(cache.cargos["t/job"])
    body["spec"]["template"] = {
        "spec": {
            "hostPID": True,
            "containers": [
                {"name": "main", "image": "busybox", "securityContext": {"privileged": True}}
            ],
        }
    }
    body["metadata"]["generation"] += 1
    cache.apply("cargos", None, body)
    if how == "pod deleted":
        _lose_a_pod(cache, pods, "job-1")
    else:
        pod = next(p for p in pods if p["metadata"]["name"] == "job-1")
        pod["status"] = {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "m", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}
            ],
        }
        cache.apply("pods", None, pod)
    made: list[dict[str, Any]] = []
    for _ in range(6):
        for plan in settle(decider, cache, 1):
            made += [pod for _, pod in plan.pods]
            for _, name, _ in plan.pod_deletes:
                for pod in pods:
                    if pod["metadata"]["name"] == name:
                        cache.apply("pods", "DELETED", pod)
    assert not [p for p in made if p["spec"].get("hostPID")], "a pod beyond the level was made"
    status = cache.cargos["t/job"]["status"]
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "PodSecurity", failed
    assert "spec.template.spec.hostPID" in failed["message"]
    assert status["placement"] == [], "its GPUs are still held"


def test_a_template_cargo_name_held_by_another_cargo_is_reported_not_retried_silently() -> None:
    """``kubectl scale mc/mc --replicas=2`` while a hand-made cargo ``mc-1`` (of another
    MiniCluster) exists: the MiniCluster says which name is taken and how to free it, and makes
    the cargo once the name is free."""
    body = templated(minicluster("mc", 0, 16), 2, 1)
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", body),
        ("miniclusters", minicluster("other", 0, 8)),
        ("cargos", cargo("mc-1", "other", 1, 1)),
    )
    decider = Decider(Engine())
    plans = settle(decider, cache)
    made = [c["metadata"]["name"] for p in plans for c in p.cargo_creates]
    assert made == ["mc-0"], "a create the API server refuses (AlreadyExists) is asked for"
    status = cache.miniclusters["t/mc"]["status"]
    taken = next(c for c in status["conditions"] if c["type"] == "ReplicaFailure")
    assert taken["status"] == "True" and taken["reason"] == "NameTaken"
    assert "mc-1" in taken["message"] and "delete or rename it" in taken["message"]
    warnings = [e for p in plans for e in p.events if e.reason == "NameTaken"]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    del cache.cargos["t/mc-1"]
    plans = settle(decider, cache)
    assert [c["metadata"]["name"] for p in plans for c in p.cargo_creates] == ["mc-1"]
    status = cache.miniclusters["t/mc"]["status"]
    assert not [c for c in status["conditions"] if c["type"] == "ReplicaFailure"]


def _mc_status(cache: ClusterCache, name: str) -> dict[str, Any]:
    return dict(cache.miniclusters[f"t/{name}"]["status"])


def test_a_cargo_being_deleted_leaves_the_counts_at_once_and_its_gpus_once_its_pods_go() -> None:
    """As Docker mode counts: a cargo being deleted is no longer one of the MiniCluster's cargos
    (``cargos``, ``readyCargos``, ``Ready``), while the GPUs its stopping pod still holds stay in
    ``inUseGpus`` until the pod is gone."""
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", cargo("job", "mc", 1, 4)),
        ("cargos", cargo("keep", "mc", 1, 4)),
    )
    decider = Decider(Engine())
    plans = settle(decider, cache)
    for pod in created(cache, plans):
        pod["status"] = {"phase": "Running", "containerStatuses": [{"name": "m", "ready": True}]}
        cache.apply("pods", "MODIFIED", pod)
    settle(decider, cache)
    status = _mc_status(cache, "mc")
    assert (status["cargos"], status["readyCargos"], status["inUseGpus"]) == (2, 2, 8), status
    cache.cargos["t/job"]["metadata"]["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    settle(decider, cache)
    status = _mc_status(cache, "mc")
    assert (status["cargos"], status["readyCargos"], status["inUseGpus"]) == (1, 1, 8), status
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and ready["message"] == "1 of 1 cargos running", ready


def test_a_headless_service_deleted_by_hand_is_asked_for_again_once_without_a_new_pod() -> None:
    decider, cache, _ = _running_gang(cargo("job", "mc", 2, 4))
    service = {"metadata": {"name": "mc", "namespace": "t", "uid": "svc-1"}}
    cache.apply("services", None, service)
    assert not [s for p in settle(decider, cache) for s in p.services]
    del decider.state.requested["service:uid-mc"]  # it was asked for with the pods, long ago
    cache.apply("services", "DELETED", service)  # kubectl delete svc mc
    plans = settle(decider, cache)
    asked = [svc for p in plans for _, svc in p.services]
    assert [s["metadata"]["name"] for s in asked] == ["mc"], "asked once, not every pass"
    assert asked[0]["spec"]["clusterIP"] == "None"
    assert not [pod for p in plans for pod in p.pods], "no pod is replaced for it"


def test_a_pod_relabelled_by_hand_keeps_its_replica_and_gets_its_labels_back() -> None:
    decider, cache, pods = _running_gang(cargo("job", "mc", 2, 4))
    pod = copy.deepcopy(next(p for p in pods if p["metadata"]["name"] == "job-1"))
    labels = pod["metadata"]["labels"]
    labels.pop("crane.io/replica")
    labels["crane.io/cargo"] = "someone-else"  # kubectl label --overwrite
    cache.apply("pods", None, pod)
    plans = settle(decider, cache)
    assert [lb for p in plans for lb in p.pod_labels] == [
        (
            "t",
            "job-1",
            {"crane.io/cargo": "job", "crane.io/replica": "1", "crane.io/minicluster": "mc"},
        )
    ], "set back once"
    warned = [e for p in plans for e in p.events if e.reason == "PodRelabelled"]
    assert len(warned) == 1 and warned[0].type == "Warning" and "job-1" in warned[0].message
    assert not [x for p in plans for x in (*p.pods, *p.pod_deletes)], "the replica is kept"
    assert cache.cargos["t/job"]["status"]["phase"] == "Running"


def _lose_a_pod(cache: ClusterCache, pods: list[dict[str, Any]], name: str) -> None:
    """``kubectl delete pod NAME``: the watch shows it gone."""
    cache.apply("pods", "DELETED", next(p for p in pods if p["metadata"]["name"] == name))


def _restart_policy(policy: str) -> dict[str, Any]:
    body = cargo("job", "mc", 2, 1)
    body["spec"]["restartPolicy"] = policy
    return body


def test_a_pod_deleted_from_a_running_gang_fails_it_as_docker_mode_does() -> None:
    """``kubectl delete pod job-1`` of a running gang (restartPolicy Never): the cargo fails,
    saying which replica went and how, and no pod is made again beside the others (whose
    world was formed with the old one): Docker mode fails the gang for a removed container."""
    decider, cache, pods = _running_gang(_restart_policy("Never"))
    _lose_a_pod(cache, pods, "job-1")
    plans = settle(decider, cache)
    assert not [pod for p in plans for _, pod in p.pods], "a lone replica was made again"
    status = cache.cargos["t/job"]["status"]
    assert status["phase"] == "Failed"
    assert status["message"] == "replica 1 failed: its pod was deleted (by hand, or by Kubernetes)"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["status"] == "True" and failed["reason"] == "ReplicaFailed"
    deleted = [name for p in plans for _, name, _ in p.pod_deletes]
    assert "job-0" in deleted, "the rest of the gang is not stopped"


def test_a_pod_deleted_from_a_running_gang_restarts_it_whole_on_failure() -> None:
    decider, cache, pods = _running_gang(_restart_policy("OnFailure"))
    _lose_a_pod(cache, pods, "job-1")
    plans = settle(decider, cache, 1)
    assert not [pod for p in plans for _, pod in p.pods], "a lone replica was made again"
    status = cache.cargos["t/job"]["status"]
    assert status["phase"] == "Pending" and status["restarts"] == 1
    assert status["message"].startswith("replica 1 failed: its pod was deleted")
    assert "restarting the gang (restart 1 of" in status["message"]
    _lose_a_pod(cache, pods, "job-0")
    remade = [pod["metadata"]["name"] for p in settle(decider, cache) for _, pod in p.pods]
    assert sorted(remade) == ["job-0", "job-1"], "the gang is made again whole"


def test_growing_a_running_gang_is_not_a_lost_replica() -> None:
    decider, cache, _ = _running_gang(_restart_policy("Never"))
    body = copy.deepcopy(cache.cargos["t/job"])
    body["spec"]["replicas"] = 3
    body["metadata"]["generation"] += 1
    cache.apply("cargos", None, body)
    made = [pod["metadata"]["name"] for p in settle(decider, cache) for _, pod in p.pods]
    assert made == ["job-2"]
    assert cache.cargos["t/job"]["status"]["phase"] == "Placed"


def test_a_pod_deleted_while_the_operator_was_down_fails_the_gang_at_restore() -> None:
    """The operator restarts (a new decider, the same cluster) after ``kubectl delete pod`` of a
    running gang: the gang fails as if the operator had seen it go, no lone replica made."""
    _, cache, pods = _running_gang(_restart_policy("Never"))
    _lose_a_pod(cache, pods, "job-0")
    plans = settle(Decider(Engine()), cache)
    assert not [pod for p in plans for _, pod in p.pods], "a lone replica was made again"
    status = cache.cargos["t/job"]["status"]
    assert status["phase"] == "Failed"
    assert status["message"].startswith("replica 0 failed: its pod was deleted")


def _scale(cache: ClusterCache, replicas: int) -> None:
    """``kubectl scale cg/job --replicas=N``: the watch shows the new spec."""
    body = copy.deepcopy(cache.cargos["t/job"])
    body["spec"]["replicas"] = replicas
    body["metadata"]["generation"] += 1
    cache.apply("cargos", None, body)


def _terminating(cache: ClusterCache, pods: list[dict[str, Any]], names: list[str]) -> None:
    """The API server marked the pods deleted; a kubelet honours their grace period."""
    for pod in pods:
        if pod["metadata"]["name"] in names:
            pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:09Z"
            cache.apply("pods", None, pod)


def _deleted(plans: list[Plan]) -> list[str]:
    return sorted({name for p in plans for _, name, _ in p.pod_deletes})


def test_a_shrink_deletes_pods_only_once_its_smaller_count_is_stored() -> None:
    """``kubectl scale cg/job --replicas=1`` of a running gang of 3: the first pass stores the
    smaller count (Resizing, Shrinking) and deletes nothing; the pods go once it is stored, so
    an operator killed in between finds the count, not replicas that seem deleted by hand."""
    decider, cache, _ = _running_gang(cargo("job", "mc", 3, 1))
    _scale(cache, 1)
    first = decider.decide(cache)
    assert not first.pod_deletes, "pods deleted before the smaller count was stored"
    (write,) = [w for w in first.statuses if w.name == "job"]
    assert write.status["replicas"] == 1 and len(write.status["placement"]) == 3
    resizing = next(c for c in write.status["conditions"] if c["type"] == "Resizing")
    assert resizing["reason"] == "Shrinking" and resizing["status"] == "True"
    apply_statuses(cache, first)
    assert _deleted(settle(decider, cache, 1)) == ["job-1", "job-2"]


@pytest.mark.parametrize("restarted", [False, True], ids=["same-operator", "operator-restarted"])
def test_a_shrink_taken_back_before_its_pods_are_gone_makes_them_again(restarted: bool) -> None:
    """``kubectl scale cg/job --replicas=1`` then, while the two leaving pods still terminate,
    ``--replicas=3`` again (with, or without, an operator restart while they go): the pods
    Crane deleted for the shrink are not replicas lost by hand; the gang is not failed, its
    two replicas are made again once their pods are gone, and it reads 3 replicas again."""
    decider, cache, pods = _running_gang(cargo("job", "mc", 3, 1))
    _scale(cache, 1)
    assert _deleted(settle(decider, cache)) == ["job-1", "job-2"]
    _terminating(cache, pods, ["job-1", "job-2"])
    settle(decider, cache)
    _scale(cache, 3)
    settle(decider, cache)
    for name in ("job-1", "job-2"):
        _lose_a_pod(cache, pods, name)
    if restarted:
        decider = Decider(Engine())
    plans = settle(decider, cache)
    made = [pod["metadata"]["name"] for p in plans for _, pod in p.pods]
    assert cache.cargos["t/job"]["status"]["phase"] != "Failed", cache.cargos["t/job"]["status"][
        "message"
    ]
    assert sorted(made) == ["job-1", "job-2"]
    created(cache, plans)
    settle(decider, cache)
    status = cache.cargos["t/job"]["status"]
    assert status["replicas"] == 3 and len(status["placement"]) == 3
    resizing = next(c for c in status["conditions"] if c["type"] == "Resizing")
    assert resizing["message"] == "grown from 1 to 3 replicas"


def _run_pods(decider: Decider, cache: ClusterCache) -> list[dict[str, Any]]:
    """The pods the passes make are created and run (as the API server and kubelet say)."""
    pods = created(cache, settle(decider, cache))
    for pod in pods:
        pod["status"] = {"phase": "Running", "containerStatuses": [{"name": "m", "ready": True}]}
        cache.apply("pods", None, pod)
    settle(decider, cache)
    return pods


def _until_pods_deleted(decider: Decider, cache: ClusterCache) -> Plan:
    """Passes, their status writes stored, until one deletes pods: that pass's plan, its status
    writes not stored (the operator is killed while it is applied)."""
    for _ in range(5):
        plan = decider.decide(cache)
        if plan.pod_deletes:
            return plan
        apply_statuses(cache, plan)
    raise AssertionError("no pass deleted a pod")


def _killed_after_deletes(cache: ClusterCache, pods: list[dict[str, Any]], plan: Plan) -> Decider:
    """The plan's pod deletes landed (the pods are gone), its status writes did not (the
    operator was killed first): the operator restarts, a new decider on the same cluster."""
    for name in {name for _, name, _ in plan.pod_deletes}:
        _lose_a_pod(cache, pods, name)
    return Decider(Engine())


def _said_deleted(plans: list[Plan]) -> list[str]:
    """The status messages and events of the passes that say a pod was deleted by hand."""
    said = [w.status.get("message") or "" for p in plans for w in p.statuses]
    return [m for m in [*said, *(e.message for p in plans for e in p.events)] if POD_GONE in m]


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def _preempt_job(cache: ClusterCache) -> None:
    """A MiniCluster of higher priority that needs every GPU of n0 arrives."""
    cache.apply(
        "miniclusters", None, minicluster("high", 8, 8, priority=10, created="2026-01-02T00:00:00Z")
    )


def test_a_preemption_deletes_pods_only_once_its_preempted_phase_is_stored() -> None:
    """A running gang is preempted: the first pass stores Preempted (condition, Warning event)
    and deletes nothing; the pods go, each with its notice, in a pass that reads Preempted from
    the API server, so an operator killed in between never finds a Running gang without pods."""
    decider, cache, _ = _running_gang(_restart_policy("Never"))
    _preempt_job(cache)
    first = decider.decide(cache)
    assert not first.pod_deletes, "pods deleted before the Preempted phase was stored"
    (write,) = [w for w in first.statuses if w.name == "job"]
    assert write.status["phase"] == "Preempted" and write.status["placement"]
    preempted = next(c for c in write.status["conditions"] if c["type"] == "Preempted")
    assert preempted["status"] == "True" and "t/high" in preempted["message"]
    assert [e.reason for e in first.events if e.reason == "Preempted"] == ["Preempted"]
    apply_statuses(cache, first)
    second = decider.decide(cache)
    assert _deleted([second]) == ["job-0", "job-1"]
    assert all(grace is None for _, _, grace in second.pod_deletes), "grace period not honoured"
    notices = {name: a[NOTICE_ANNOTATION] for _, name, a in second.pod_annotations}
    assert sorted(notices) == ["job-0", "job-1"]
    assert all("Preempted" in text and "t/high" in text for text in notices.values()), notices


@pytest.mark.parametrize("policy", ["Never", "OnFailure"])
def test_an_operator_killed_while_preempting_queues_the_gang_again(policy: str) -> None:
    """The operator is killed after the pods of a preempted gang were deleted but before its
    status said so: the restarted operator queues the gang again as preempted (it failed,
    "replica 0 failed: its pod was deleted", a restart for OnFailure)."""
    decider, cache, pods = _running_gang(_restart_policy(policy))
    _preempt_job(cache)
    decider = _killed_after_deletes(cache, pods, _until_pods_deleted(decider, cache))
    plans = settle(decider, cache)
    assert not _said_deleted(plans)
    status = cache.cargos["t/job"]["status"]
    assert (status["phase"], status.get("restarts", 0)) == ("Pending", 0), status["message"]
    assert _condition(status, "Preempted")["status"] == "True"
    assert _mc_status(cache, "high")["reservedGpus"] == 8


def test_a_restored_preempted_gang_holds_its_gpus_until_its_pods_are_gone() -> None:
    """The operator restarts after it stored a gang's Preempted phase, before it deleted the
    pods: the new operator deletes them with the notice, keeps their GPUs from the preemptor
    while they terminate, then queues the gang again and admits the preemptor."""
    decider, cache, pods = _running_gang(_restart_policy("Never"))
    _preempt_job(cache)
    apply_statuses(cache, decider.decide(cache))
    assert cache.cargos["t/job"]["status"]["phase"] == "Preempted"
    decider = Decider(Engine())
    plans = settle(decider, cache)
    assert _deleted(plans) == ["job-0", "job-1"]
    notices = {name for p in plans for _, name, a in p.pod_annotations if NOTICE_ANNOTATION in a}
    assert notices == {"job-0", "job-1"}, "the pods went without their notice"
    _terminating(cache, pods, ["job-0", "job-1"])
    settle(decider, cache)
    assert cache.cargos["t/job"]["status"]["phase"] == "Preempted"
    assert cache.cargos["t/job"]["status"]["placement"], "GPUs let go while pods still run"
    assert not _mc_status(cache, "high").get("reservedGpus"), "the preemptor took GPUs in use"
    for name in ("job-0", "job-1"):
        _lose_a_pod(cache, pods, name)
    settle(decider, cache)
    status = cache.cargos["t/job"]["status"]
    assert status["phase"] == "Pending" and _condition(status, "Preempted")["status"] == "True"
    assert _mc_status(cache, "high")["reservedGpus"] == 8


def _exits(cache: ClusterCache, pods: list[dict[str, Any]], name: str, code: int) -> None:
    """Replica ``name``'s program exits with ``code``: the kubelet reports the pod Failed."""
    pod = next(p for p in pods if p["metadata"]["name"] == name)
    term = {"exitCode": code, "reason": "Error"}
    pod["status"] = {
        "phase": "Failed",
        "containerStatuses": [{"name": "m", "ready": False, "state": {"terminated": term}}],
    }
    cache.apply("pods", None, pod)


@pytest.mark.parametrize("policy", ["Never", "OnFailure"])
def test_an_operator_killed_while_a_failed_gang_stops_says_why_it_failed(policy: str) -> None:
    """Replica 1 of a running gang exits with code 3; the operator is killed after the other
    pods were deleted but before the status said so: the restarted operator tells the same
    story (exit code 3; a restart for OnFailure), not that a pod was deleted by hand."""
    decider, cache, pods = _running_gang(_restart_policy(policy))
    _exits(cache, pods, "job-1", 3)
    plan = _until_pods_deleted(decider, cache)
    decider = _killed_after_deletes(cache, pods, plan)
    plans = settle(decider, cache)
    assert not _said_deleted(plans)
    status = cache.cargos["t/job"]["status"]
    if policy == "Never":
        assert (status["phase"], status["exitCode"]) == ("Failed", 3)
        assert status["message"] == "replica 1 exited with code 3"
    else:
        assert (status["phase"], status["restarts"]) == ("Placed", 1), status["message"]


def test_an_operator_killed_while_a_gang_grows_by_moving_keeps_the_gang() -> None:
    """``kubectl scale cg/job --replicas=2`` of a running gang of one 4-GPU replica on a 4-GPU
    node: the gang moves to the 8-GPU node. The operator is killed after the old pod was
    deleted but before the new placement was stored: the restarted operator grows the gang
    (it failed, "replica 0 failed: its pod was deleted")."""
    cache = new_cache(
        ("nodes", node("n0", 4)),
        ("nodes", node("n1", 8)),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", cargo("job", "mc", 1, 4)),
    )
    decider = Decider(Engine())
    pods = _run_pods(decider, cache)
    assert cache.cargos["t/job"]["status"]["phase"] == "Running"
    _scale(cache, 2)
    plan = _until_pods_deleted(decider, cache)
    assert _deleted([plan]) == ["job-0"]
    decider = _killed_after_deletes(cache, pods, plan)
    plans = settle(decider, cache)
    status = cache.cargos["t/job"]["status"]
    assert status["phase"] == "Placed", status["message"]
    assert [p["node"] for p in status["placement"]] == ["n1", "n1"]
    made = sorted(pod["metadata"]["name"] for p in plans for _, pod in p.pods)
    assert made == ["job-0", "job-1"]
