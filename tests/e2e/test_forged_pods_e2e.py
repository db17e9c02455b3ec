"""A tenant's hand-made pods that carry Crane's labels and GPU ids annotation, on a real control
plane: such a pod asks for no GPU of its own, so the GPU ids it names are no claim on anything;
it never keeps GPUs from another tenant, nor takes theirs when the operator restarts; and the
GPUs such a pod does ask the node for are counted as in use. A cargo deleted past Crane's
finalizer keeps its GPUs until its pod is gone.

The operator is a real process (this module has its own); each test adds simulated nodes of a
GPU family no other test uses, and a tenant is a namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.operator_support import (
    OperatorProcess,
    apply,
    assert_no_gpu_double_booked,
    cargo_yaml,
    cond,
    crane_pods,
    delete_all,
    forged_pod,
    get,
    mc_yaml,
    poll,
    running,
    wait,
    wait_pass,
)

pytestmark = pytest.mark.e2e

ALL = ",".join(str(i) for i in range(8))
HOLD = "test.crane.io/hold"
"""A finalizer of the tests: a pod that has it keeps running after it is deleted."""


def phase(custom: client.CustomObjectsApi, ns: str, name: str) -> str | None:
    return ((get(custom, "cargos", ns, name) or {}).get("status") or {}).get("phase")


def pod_phase(core: client.CoreV1Api, ns: str, name: str) -> str | None:
    return core.read_namespaced_pod(name, ns).status.phase


def test_a_hand_made_pod_naming_gpu_ids_keeps_no_gpu_from_another_tenant(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    other_namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    (node,) = nodes("forgehold", "NVIDIA-FORGEHOLD", racks=1, per_rack=1)
    # Tenant 1: a cargo that waits (its MiniCluster does not exist), and a pod of its own making
    # that says it is that cargo's replica holding every GPU of the node.
    apply(kube_cluster, namespace, cargo_yaml("bait", "nowhere", 1, 8))
    wait(lambda: phase(custom, namespace, "bait") == "Pending", "bait Pending", operator)
    core_v1.create_namespaced_pod(namespace, forged_pod("squat", node, "bait", ALL))
    wait(lambda: pod_phase(core_v1, namespace, "squat") == "Running", "squat Running", operator)
    # Tenant 2 asks for the node's 8 GPUs, which no pod asks the node for.
    apply(
        kube_cluster,
        other_namespace,
        mc_yaml("work", "FORGEHOLD", 0, 8) + "---\n" + cargo_yaml("job", "work", 1, 8),
    )
    poll(
        lambda: running(crane_pods(core_v1, other_namespace), 1),
        "the other tenant's cargo Running on the GPUs the hand-made pod only names",
        lambda: f"job: {get(custom, 'cargos', other_namespace, 'job')}\n{operator.tail()}",
    )
    core_v1.delete_namespaced_pod("squat", namespace, grace_period_seconds=0)
    delete_all(custom, core_v1, other_namespace, operator)


def test_a_hand_made_pod_does_not_take_another_tenants_gpus_when_the_operator_restarts(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    other_namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    (node,) = nodes("forgesteal", "NVIDIA-FORGESTEAL", racks=1, per_rack=1)
    apply(kube_cluster, namespace, cargo_yaml("bait", "nowhere", 1, 8))
    wait(lambda: phase(custom, namespace, "bait") == "Pending", "bait Pending", operator)
    apply(
        kube_cluster,
        other_namespace,
        mc_yaml("work", "FORGESTEAL", 0, 8) + "---\n" + cargo_yaml("job", "work", 1, 8),
    )
    wait(lambda: running(crane_pods(core_v1, other_namespace), 1), "job Running", operator)
    (victim,) = crane_pods(core_v1, other_namespace)
    ids = victim.metadata.annotations["crane.io/gpu-ids"]
    # Tenant 1 writes a pod that names the GPUs of tenant 2's replica as its waiting cargo's.
    core_v1.create_namespaced_pod(namespace, forged_pod("steal", node, "bait", ids))
    wait(lambda: pod_phase(core_v1, namespace, "steal") == "Running", "steal Running", operator)
    operator.kill()
    operator.start()
    wait_pass(kube_cluster, custom, namespace, operator)
    job = get(custom, "cargos", other_namespace, "job")
    assert cond(job, "Placed").get("reason") != "RestoreConflict", cond(job, "Placed")
    assert phase(custom, other_namespace, "job") == "Running"
    after = crane_pods(core_v1, other_namespace)
    assert [(p.metadata.uid, p.metadata.deletion_timestamp) for p in after] == [
        (victim.metadata.uid, None)
    ], "the other tenant's running replica was stopped"
    assert phase(custom, namespace, "bait") == "Pending"
    core_v1.delete_namespaced_pod("steal", namespace, grace_period_seconds=0)
    delete_all(custom, core_v1, other_namespace, operator)


def test_a_hand_made_copy_of_a_replica_that_asks_for_gpus_has_them_counted(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    other_namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    (node,) = nodes("forgedup", "NVIDIA-FORGEDUP", racks=1, per_rack=1)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("mine", "FORGEDUP", 0, 8) + "---\n" + cargo_yaml("job", "mine", 1, 2),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 1), "job Running", operator)
    (replica,) = crane_pods(core_v1, namespace)
    job = get(custom, "cargos", namespace, "job") or {}
    owner = {
        "apiVersion": "crane.io/v1alpha1",
        "kind": "Cargo",
        "name": "job",
        "uid": job["metadata"]["uid"],
    }
    # A second pod of replica 0 written by hand: the same labels, GPU ids and owner, and six
    # more GPUs of the node for itself through nvidia.com/gpu.
    ids = replica.metadata.annotations["crane.io/gpu-ids"]
    dup = forged_pod("dup", node, "job", ids, owner=owner)
    dup["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "6"}}
    core_v1.create_namespaced_pod(namespace, dup)
    wait(lambda: pod_phase(core_v1, namespace, "dup") == "Running", "dup Running", operator)
    apply(
        kube_cluster,
        other_namespace,
        mc_yaml("work", "FORGEDUP", 0, 8) + "---\n" + cargo_yaml("other", "work", 1, 6),
    )
    wait(lambda: phase(custom, other_namespace, "other"), "the other tenant's cargo", operator)
    wait_pass(kube_cluster, custom, namespace, operator)
    assert phase(custom, other_namespace, "other") == "Pending", (
        "GPUs a running pod asks the node for were handed out"
    )
    core_v1.delete_namespaced_pod("dup", namespace, grace_period_seconds=0)
    wait(
        lambda: running(crane_pods(core_v1, other_namespace), 1),
        "the other tenant's cargo Running once the pod is gone",
        operator,
    )
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)
    delete_all(custom, core_v1, other_namespace, operator)


def test_a_pod_asking_for_gpus_in_another_notation_stops_no_one(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    other_namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("forgeqty", "NVIDIA-FORGEQTY", racks=1, per_rack=1)
    # Any pod of any tenant: 1k GPUs is a valid quantity (1000); no node can run it.
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "thousand"},
        "spec": {
            "containers": [
                {
                    "name": "main",
                    "image": "busybox",
                    "resources": {"limits": {"nvidia.com/gpu": "1k"}},
                }
            ]
        },
    }
    core_v1.create_namespaced_pod(namespace, body)
    apply(
        kube_cluster,
        other_namespace,
        mc_yaml("work", "FORGEQTY", 0, 8) + "---\n" + cargo_yaml("first", "work", 1, 4),
    )
    wait(lambda: phase(custom, other_namespace, "first") == "Running", "first Running", operator)
    operator.kill()
    operator.start()
    apply(kube_cluster, other_namespace, cargo_yaml("second", "work", 1, 4))
    wait(
        lambda: phase(custom, other_namespace, "second") == "Running",
        "second Running after a restart",
        operator,
    )
    core_v1.delete_namespaced_pod("thousand", namespace, grace_period_seconds=0)
    delete_all(custom, core_v1, other_namespace, operator)


def test_a_cargo_deleted_past_cranes_finalizer_keeps_its_gpus_until_its_pod_is_gone(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    other_namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("forgefin", "NVIDIA-FORGEFIN", racks=1, per_rack=1)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("mine", "FORGEFIN", 0, 8) + "---\n" + cargo_yaml("job", "mine", 1, 8),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 1), "job Running", operator)
    # The pod is slow to stop; the tenant strips Crane's finalizer and deletes the cargo.
    core_v1.patch_namespaced_pod("job-0", namespace, {"metadata": {"finalizers": [HOLD]}})
    try:
        custom.patch_namespaced_custom_object(
            "crane.io", "v1alpha1", namespace, "cargos", "job", {"metadata": {"finalizers": None}}
        )
        custom.delete_namespaced_custom_object("crane.io", "v1alpha1", namespace, "cargos", "job")
        wait(lambda: get(custom, "cargos", namespace, "job") is None, "job gone", operator)
        apply(
            kube_cluster,
            other_namespace,
            mc_yaml("work", "FORGEFIN", 0, 8) + "---\n" + cargo_yaml("other", "work", 1, 8),
        )
        wait(
            lambda: core_v1.read_namespaced_pod("job-0", namespace).metadata.deletion_timestamp,
            "the operator to delete job-0",
            operator,
        )
        wait(lambda: phase(custom, other_namespace, "other"), "other's status", operator)
        wait_pass(kube_cluster, custom, namespace, operator)
        assert phase(custom, other_namespace, "other") == "Pending", (
            "the GPUs of a pod still running were handed out"
        )
    finally:
        core_v1.patch_namespaced_pod("job-0", namespace, {"metadata": {"finalizers": None}})
    wait(
        lambda: running(crane_pods(core_v1, other_namespace), 1),
        "other Running once job-0 is gone",
        operator,
    )
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, other_namespace, operator)
