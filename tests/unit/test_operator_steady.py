"""Running cargos that nothing touched are skipped by the pass (the steady memo), and every
change a user can make or suffer still reaches them: a replica that stops being ready, a node
lost, preemption, a resize, a failed status write."""

from __future__ import annotations

from typing import Any

from test_operator_decide import apply_statuses, cargo, minicluster, new_cache, node, pod_of

from crane.lifecycle.decide import Decider
from crane.operator.cache import ClusterCache
from crane.placement import Engine


def running(cache: ClusterCache, decider: Decider, *names: str) -> None:
    """Place ``names``, give each its pod (Running, ready) and settle until all are Running."""
    for _ in range(2):
        apply_statuses(cache, decider.decide(cache))
    for name in names:
        p = cache.cargos[f"t/{name}"]["status"]["placement"][0]
        cache.apply("pods", None, pod_of(name, p["node"], ",".join(map(str, p["gpuIds"]))))
    for _ in range(2):
        apply_statuses(cache, decider.decide(cache))
    for name in names:
        assert cache.cargos[f"t/{name}"]["status"]["phase"] == "Running"


def quiet(cache: ClusterCache, decider: Decider, passes: int = 3) -> None:
    for _ in range(passes):
        plan = decider.decide(cache)
        assert plan.empty(), f"a pass over quiet Running cargos wrote {plan}"


def one_job() -> tuple[ClusterCache, Decider]:
    """One node, one MiniCluster, one cargo ``job`` of 1 replica x 2 GPUs, not yet placed."""
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", cargo("job", "mc", 1, 2)),
    )
    return cache, Decider(Engine())


def status(cache: ClusterCache, name: str) -> dict[str, Any]:
    return cache.cargos[f"t/{name}"]["status"]


def test_a_replica_that_stops_being_ready_turns_a_quiet_cargo_back_to_placed() -> None:
    cache, decider = one_job()
    running(cache, decider, "job")
    quiet(cache, decider)
    p = status(cache, "job")["placement"][0]
    pod = pod_of("job", p["node"], ",".join(map(str, p["gpuIds"])))
    pod["status"]["containerStatuses"][0]["ready"] = False
    cache.apply("pods", None, pod)
    apply_statuses(cache, decider.decide(cache))
    assert status(cache, "job")["phase"] == "Placed"


def test_a_lost_node_fails_a_quiet_cargo_on_it_and_leaves_the_other_alone() -> None:
    cache = new_cache(
        ("nodes", node("n0", rack="r0")),
        ("nodes", node("n1", rack="r1")),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", cargo("a", "mc", 1, 8)),
        ("cargos", cargo("b", "mc", 1, 8, created="2026-01-01T00:00:02Z")),
    )
    decider = Decider(Engine())
    running(cache, decider, "a", "b")
    quiet(cache, decider)
    lost = status(cache, "a")["placement"][0]["node"]
    cache.apply("nodes", None, node(lost, ready=False, rack="r0" if lost == "n0" else "r1"))
    for _ in range(2):
        apply_statuses(cache, decider.decide(cache))
    assert status(cache, "a")["phase"] == "Failed"
    assert status(cache, "b")["phase"] == "Running"


def test_a_quiet_borrowed_cargo_is_still_preempted() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("low", 0, 8)),
        ("cargos", cargo("borrower", "low", 1, 8)),
    )
    decider = Decider(Engine())
    running(cache, decider, "borrower")
    quiet(cache, decider)
    cache.apply(
        "miniclusters", None, minicluster("high", 8, 8, priority=10, created="2026-01-02T00:00:00Z")
    )
    for _ in range(2):
        apply_statuses(cache, decider.decide(cache))
    assert status(cache, "borrower")["phase"] == "Preempted"


def test_a_quiet_cargo_grows_when_its_replicas_change() -> None:
    cache, decider = one_job()
    running(cache, decider, "job")
    quiet(cache, decider)
    grown = cargo("job", "mc", 2, 2)
    grown["metadata"]["generation"] = 2
    grown["status"] = status(cache, "job")
    cache.apply("cargos", None, grown)
    plan = decider.decide(cache)
    apply_statuses(cache, plan)
    assert len(status(cache, "job")["placement"]) == 2
    assert [pod["metadata"]["name"] for _, pod in plan.pods] == ["job-1"]


def test_a_failed_status_write_of_a_quiet_cargo_is_written_again() -> None:
    cache, decider = one_job()
    running(cache, decider, "job")
    quiet(cache, decider)
    uid = cache.cargos["t/job"]["metadata"]["uid"]
    decider.state.unsaved.add(uid)
    plan = decider.decide(cache)
    assert [w.name for w in plan.statuses] == ["job"], "an unsaved status is written again"


def test_a_placed_cargo_waiting_for_its_pods_is_quiet_then_runs() -> None:
    cache, decider = one_job()
    for _ in range(2):
        apply_statuses(cache, decider.decide(cache))
    p = status(cache, "job")["placement"][0]
    ids = ",".join(map(str, p["gpuIds"]))
    cache.apply("pods", None, pod_of("job", p["node"], ids, phase="Pending"))
    quiet(cache, decider)
    assert status(cache, "job")["phase"] == "Placed"
    cache.apply("pods", None, pod_of("job", p["node"], ids))
    apply_statuses(cache, decider.decide(cache))
    assert status(cache, "job")["phase"] == "Running"


def test_a_placed_cargo_missing_a_pod_asks_for_it_again_after_the_retry_interval() -> None:
    cache, decider = one_job()
    first = [pod for _ in range(3) for _, pod in decider.decide(cache).pods]
    apply_statuses(cache, decider.decide(cache))
    assert [pod["metadata"]["name"] for pod in first] == ["job-0"], "asked for once, then waits"
    for key in decider.state.requested:
        decider.state.requested[key] -= 60.0  # the create was lost; the retry interval passed
    again = [pod["metadata"]["name"] for _, pod in decider.decide(cache).pods]
    assert again == ["job-0"]


def test_a_pod_asked_for_but_not_yet_seen_keeps_its_gpus_through_a_drain() -> None:
    """The pass asks for a pod; before the watch shows it, the cargo is deleted. Its GPUs are
    not handed out while that pod may exist: ``next`` waits until the pod is seen (and deleted)
    and gone. Releasing at once gave two live pods the same GPUs (a chaos run found it)."""
    cache = new_cache(
        ("nodes", node("n0", gpus=2)),
        ("miniclusters", minicluster("mc", 0, 8)),
        ("cargos", cargo("job", "mc", 1, 2)),
    )
    decider = Decider(Engine())
    asked = []
    for _ in range(2):
        plan = decider.decide(cache)
        apply_statuses(cache, plan)
        asked += [pod for _, pod in plan.pods]
    assert [p["metadata"]["name"] for p in asked] == ["job-0"]
    deleted = {**cache.cargos["t/job"]}
    deleted["metadata"] = {**deleted["metadata"], "deletionTimestamp": "2026-01-01T00:01:00Z"}
    cache.apply("cargos", None, deleted)
    cache.apply("cargos", None, cargo("next", "mc", 1, 2, created="2026-01-01T00:00:02Z"))
    for _ in range(2):
        apply_statuses(cache, decider.decide(cache))
    assert not status(cache, "next").get("placement"), "job-0 may exist: its GPUs are not free"
    p = cache.cargos["t/job"]["status"]["placement"][0]
    cache.apply("pods", None, pod_of("job", p["node"], ",".join(map(str, p["gpuIds"]))))
    plan = decider.decide(cache)
    apply_statuses(cache, plan)
    assert ("t", "job-0") in [d[:2] for d in plan.pod_deletes]
    assert not status(cache, "next").get("placement"), "job-0 still runs"
    cache.apply("pods", "DELETED", pod_of("job", p["node"], ""))
    for _ in range(2):
        apply_statuses(cache, decider.decide(cache))
    assert status(cache, "next")["placement"], "job-0 is gone: its GPUs are free"


def test_a_quiet_cargo_waiting_to_grow_grows_when_capacity_frees() -> None:
    """``job`` asks for 2 replicas of 8 GPUs on a cluster where ``other`` holds the second
    node: it runs 1 and waits. Nothing about ``job`` changes, but when ``other`` finishes the
    freed node must let it grow (a waiting grow is never skipped as quiet)."""
    cache = new_cache(
        ("nodes", node("n0")),
        ("nodes", node("n1")),
        ("miniclusters", minicluster("mc", 0, 16)),
        ("cargos", cargo("job", "mc", 1, 8)),
        ("cargos", cargo("other", "mc", 1, 8, created="2026-01-01T00:00:02Z")),
    )
    decider = Decider(Engine())
    running(cache, decider, "job", "other")
    grown = cargo("job", "mc", 2, 8)
    grown["metadata"]["generation"] = 2
    grown["status"] = status(cache, "job")
    cache.apply("cargos", None, grown)
    for _ in range(3):
        apply_statuses(cache, decider.decide(cache))
    assert len(status(cache, "job")["placement"]) == 1
    assert "cannot grow to 2 replicas yet" in status(cache, "job")["message"]
    quiet(cache, decider)
    p = status(cache, "other")["placement"][0]
    ids = ",".join(map(str, p["gpuIds"]))
    cache.apply("pods", None, pod_of("other", p["node"], ids, phase="Succeeded"))
    for _ in range(3):
        apply_statuses(cache, decider.decide(cache))
    assert len(status(cache, "job")["placement"]) == 2, "the freed node went unused"
