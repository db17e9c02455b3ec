"""Restart safety and converging preemption on a real control plane, with the operator as a real
process that the tests kill and start again (its own process: this module has its own operator).

Each test adds simulated nodes of a GPU family no other test uses.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.operator_support import (
    GROUP,
    VERSION,
    OperatorProcess,
    apply,
    assert_no_gpu_double_booked,
    cargo_yaml,
    cond,
    crane_pods,
    delete_all,
    get,
    mc_yaml,
    running,
    wait,
)

pytestmark = pytest.mark.e2e

HOLD = "test.crane.io/hold"
"""A finalizer of the tests: a pod that has it keeps running after it is deleted."""


def restart(proc: OperatorProcess) -> None:
    proc.kill()
    proc.start()


def status(custom_api: client.CustomObjectsApi, plural: str, ns: str, name: str) -> Any:
    return (get(custom_api, plural, ns, name) or {}).get("status") or {}


def release_pod(core: client.CoreV1Api, ns: str, name: str) -> None:
    core.patch_namespaced_pod(name, ns, {"metadata": {"finalizers": None}})


def test_stale_reservation_after_min_lowered_to_zero_and_a_restart_keeps_scheduling(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("stalea16", "NVIDIA-A16", racks=1, per_rack=1)
    rack = ", topology: {level: rack, mode: Required}"
    apply(kube_cluster, namespace, mc_yaml("r1", "A16", 8, 8, extra=rack))
    wait(
        lambda: status(custom, "miniclusters", namespace, "r1").get("reservedGpus") == 8,
        "r1 reserves 8 GPUs",
        operator,
    )
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "miniclusters", "r1", {"spec": {"gpus": {"min": 0}}}
    )
    wait(
        lambda: status(custom, "miniclusters", namespace, "r1").get("reservedGpus") == 0,
        "r1 reserves nothing after min 0",
        operator,
    )
    wait(
        lambda: not status(custom, "miniclusters", namespace, "r1").get("reservation"),
        "the node to leave r1's reservation map",
        operator,
    )
    apply(kube_cluster, namespace, mc_yaml("r2", "A16", 8, 8, extra=rack))
    wait(
        lambda: status(custom, "miniclusters", namespace, "r2").get("reservedGpus") == 8,
        "r2 reserves the 8 GPUs r1 let go",
        operator,
    )
    restart(operator)
    apply(kube_cluster, namespace, cargo_yaml("job", "r2", 1, 8))
    wait(lambda: running(crane_pods(core_v1, namespace), 1), "r2's cargo Running", operator, 90)
    assert not status(custom, "miniclusters", namespace, "r1").get("reservation")
    assert "two statuses claim it" not in operator.tail(400)
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)


def test_cargo_of_a_minicluster_being_deleted_keeps_its_gpus_across_a_restart(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("restoreh20", "NVIDIA-H20", racks=1, per_rack=1)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("old", "H20", 0, 8) + "---\n" + cargo_yaml("keep", "old", 1, 8),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 1), "the old cargo Running", operator)
    core_v1.patch_namespaced_pod("keep-0", namespace, {"metadata": {"finalizers": [HOLD]}})
    try:
        operator.kill()
        # While the operator is down, the MiniCluster is deleted (its cargo's pod keeps running:
        # it is slow to stop), and another MiniCluster asks for the same 8 GPUs.
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "miniclusters", "old")
        apply(
            kube_cluster,
            namespace,
            mc_yaml("new", "H20", 8, 8) + "---\n" + cargo_yaml("fresh", "new", 1, 8),
        )
        operator.start()
        wait(
            lambda: core_v1.read_namespaced_pod("keep-0", namespace).metadata.deletion_timestamp,
            "the restarted operator to delete the old cargo's pod",
            operator,
            90,
        )
        wait(
            lambda: cond(get(custom, "miniclusters", namespace, "new"), "Admitted"),
            "the new MiniCluster to get a status",
            operator,
        )
        admitted = cond(get(custom, "miniclusters", namespace, "new"), "Admitted")
        assert admitted["status"] == "False", (
            "the GPUs of a pod still running were handed out: " + str(admitted)
        )
        assert not crane_pods(core_v1, namespace, "crane.io/cargo=fresh")
        assert_no_gpu_double_booked(core_v1)
    finally:
        release_pod(core_v1, namespace, "keep-0")
    wait(
        lambda: running(crane_pods(core_v1, namespace, "crane.io/cargo=fresh"), 1),
        "the new cargo Running once the old pod is gone",
        operator,
        90,
    )
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)


def test_preemption_converges_victims_stay_off_the_preemptors_gpus(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("convgh200", "NVIDIA-GH200", racks=1, per_rack=2)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("low", "GH200", 0, 16)
        + "---\n"
        + cargo_yaml("b1", "low", 1, 8, grace=1)
        + "---\n"
        + cargo_yaml("b2", "low", 1, 8, grace=5),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "borrowers Running", operator)
    # b2's pod is slow to stop (it checkpoints): b1's GPUs come free first.
    core_v1.patch_namespaced_pod("b2-0", namespace, {"metadata": {"finalizers": [HOLD]}})
    try:
        apply(
            kube_cluster,
            namespace,
            mc_yaml("high", "GH200", 16, 16, priority=200)
            + "---\n"
            + cargo_yaml("h", "high", 2, 8),
        )

        def b1_decided() -> str | None:
            b1 = get(custom, "cargos", namespace, "b1")
            if cond(b1, "Preempted").get("reason") == "PlacedAgain":
                return "placed again"
            if cond(b1, "Placed").get("reason") == "Unschedulable":
                return "waits"
            return None

        outcome = wait(b1_decided, "b1 drained and decided on again", operator, 90)
        assert outcome == "waits", "b1 went back onto GPUs freed for the preemptor"
        b1 = get(custom, "cargos", namespace, "b1")
        assert (b1 or {})["status"]["phase"] == "Pending"
        high = cond(get(custom, "miniclusters", namespace, "high"), "Admitted")
        assert high.get("status") != "True", "high cannot be admitted before b2's GPUs are free"
    finally:
        release_pod(core_v1, namespace, "b2-0")
    wait(
        lambda: running(crane_pods(core_v1, namespace, "crane.io/cargo=h"), 2),
        "the preemptor's cargo Running on the freed GPUs",
        operator,
        120,
    )
    for name in ("b1", "b2"):
        victim = get(custom, "cargos", namespace, name)
        notice = cond(victim, "Preempted")
        assert notice.get("status") == "True" and "high" in notice["message"], notice
        assert (victim or {})["status"]["phase"] == "Pending"
    events = [
        e
        for e in core_v1.list_namespaced_event(namespace).items
        if e.involved_object.name in ("b1", "b2")
    ]
    for name in ("b1", "b2"):
        reasons = [e.reason for e in events if e.involved_object.name == name]
        assert reasons.count("Preempted") == 1, (name, reasons)
        assert reasons.count("Placed") == 1, f"{name} was placed again after preemption: {reasons}"
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)


def test_a_placement_forged_in_status_is_written_back_from_the_pods_on_restart(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("forgedm60", "NVIDIA-M60", racks=1, per_rack=1)
    apply(kube_cluster, namespace, mc_yaml("mc", "M60", 0, 8))
    apply(kube_cluster, namespace, cargo_yaml("a", "mc", 1, 4))
    apply(kube_cluster, namespace, cargo_yaml("b", "mc", 1, 4))
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "a and b Running", operator)
    uids = {p.metadata.name: p.metadata.uid for p in crane_pods(core_v1, namespace)}
    a_placement = status(custom, "cargos", namespace, "a")["placement"]
    # kubectl patch cargo b --subresource=status: b claims a's GPUs
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "cargos", "b", {"status": {"placement": a_placement}}
    )
    restart(operator)
    b0 = core_v1.read_namespaced_pod("b-0", namespace)
    held = [int(i) for i in b0.metadata.annotations["crane.io/gpu-ids"].split(",")]
    wait(
        lambda: (
            [r["gpuIds"] for r in status(custom, "cargos", namespace, "b")["placement"]] == [held]
        ),
        "b's status to say the GPUs its pod holds again",
        operator,
    )
    assert status(custom, "cargos", namespace, "a")["placement"] == a_placement
    assert {p.metadata.name: p.metadata.uid for p in crane_pods(core_v1, namespace)} == uids, (
        "no pod was deleted or made again"
    )
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)
