"""Issue 14, tenant shares on a real control plane: two TenantShares (one namespace each) and 16
L40S of the kwok fleet. With 8 guaranteed to each, one tenant borrows all 16 GPUs and the other
reclaims its 8 by the preemption of two borrowed cargos, with notice; with weights 3 and 1, 16
idle GPUs go 12 : 4 whoever asked first and at whatever priority (priority orders work within a
tenant); the CRD refuses a lending limit above the guarantee."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.operator_support import (
    GROUP,
    VERSION,
    OperatorProcess,
    apply,
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

GPU = "NVIDIA-L40S"


def tenantshare(name: str, namespace: str, nominal: int, extra: str = "") -> str:
    """A TenantShare selecting ``namespace`` with a share of L40S."""
    return (
        f"apiVersion: crane.io/v1alpha1\nkind: TenantShare\nmetadata: {{name: {name}}}\n"
        f"spec:\n  namespaces: [{namespace}]\n"
        f"  shares: [{{gpuType: L40S, nominal: {nominal}{extra}}}]\n"
    )


@pytest.fixture
def second_namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core_v1.delete_namespace(name, propagation_policy="Background")


def test_a_tenant_below_its_guarantee_reclaims_it_from_a_borrower(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    second_namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    a, b = namespace, second_namespace
    nodes("ts", GPU, racks=1, per_rack=2, gpus=8)
    bad = kube_cluster.kubectl(
        "apply", "-f", "-", input=tenantshare("bad", a, 2, ", lendingLimit: 4"), check=False
    )
    assert bad.returncode != 0
    assert "lendingLimit must be <= nominal" in bad.stderr
    for tenant, ns in (("ts-a", a), ("ts-b", b)):
        kube_cluster.kubectl("apply", "-f", "-", input=tenantshare(tenant, ns, 8))
    try:
        apply(kube_cluster, a, mc_yaml("study", "L40S", 0, 16, priority=100))
        for i in range(4):
            apply(kube_cluster, a, cargo_yaml(f"trial-{i}", "study", 1, 4))
        wait(lambda: running(crane_pods(core_v1, a), 4), "team a's 4 pods Running", operator, 90)
        study = get(custom, "miniclusters", a, "study")
        assert study is not None and study["status"]["borrowedGpus"] == 16  # all 16 borrowed

        apply(kube_cluster, b, mc_yaml("train", "L40S", 8, 8))
        wait(
            lambda: (
                (get(custom, "miniclusters", b, "train") or {})
                .get("status", {})
                .get("reservedGpus")
                == 8
            ),
            "team b's guarantee of 8 reserved",
            operator,
            120,
        )
        notices = {}
        for i in range(4):
            preempted = cond(get(custom, "cargos", a, f"trial-{i}"), "Preempted")
            if preempted.get("status") == "True":
                notices[f"trial-{i}"] = preempted
        assert len(notices) == 2  # whole cargos, no more than needed (same-second ties by name)
        for notice in notices.values():
            assert notice["reason"] == "ReclaimedForShare"
            assert "reclaimed for a tenant below its guaranteed share" in notice["message"]
            assert b not in notice["message"]  # names nothing of the other tenant
        wait(lambda: running(crane_pods(core_v1, a), 2), "team a back to 2 pods", operator, 90)
        study = get(custom, "miniclusters", a, "study")
        assert study is not None and study["status"]["inUseGpus"] == 8  # a at its guarantee
    finally:
        delete_all(custom, core_v1, a, operator)
        delete_all(custom, core_v1, b, operator)
        for tenant in ("ts-a", "ts-b"):
            custom.delete_cluster_custom_object(GROUP, VERSION, "tenantshares", tenant)


def test_idle_gpus_go_to_tenants_by_weight_not_by_arrival(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    second_namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    a, b = namespace, second_namespace
    nodes("tw", GPU, racks=1, per_rack=2, gpus=8)
    kube_cluster.kubectl("apply", "-f", "-", input=tenantshare("tw-a", a, 0, ", weight: 3"))
    kube_cluster.kubectl("apply", "-f", "-", input=tenantshare("tw-b", b, 0, ", weight: 1"))

    def reserved(ns: str) -> int:
        mcs = custom.list_namespaced_custom_object(GROUP, VERSION, ns, "miniclusters")["items"]
        return sum((m.get("status") or {}).get("reservedGpus") or 0 for m in mcs)

    try:
        apply(kube_cluster, a, mc_yaml("blocker", "L40S", 16, 16))
        wait(lambda: reserved(a) == 16, "the blocker's 16 GPUs reserved", operator, 90)
        ones = [mc_yaml(f"one-{i}", "L40S", 1, 1, priority=10) for i in range(12)]
        apply(kube_cluster, b, "---\n".join(ones))  # team b asks first, at a higher priority
        apply(kube_cluster, a, "---\n".join(o.replace("priority: 10", "priority: 0") for o in ones))
        custom.delete_namespaced_custom_object(GROUP, VERSION, a, "miniclusters", "blocker")
        wait(lambda: get(custom, "miniclusters", a, "blocker") is None, "blocker gone", operator)
        wait(lambda: reserved(a) + reserved(b) == 16, "16 GPUs admitted again", operator, 120)
        assert (reserved(a), reserved(b)) == (12, 4)  # weights 3 : 1 (without: 4 and 12)
    finally:
        delete_all(custom, core_v1, a, operator)
        delete_all(custom, core_v1, b, operator)
        for tenant in ("tw-a", "tw-b"):
            custom.delete_cluster_custom_object(GROUP, VERSION, "tenantshares", tenant)
