"""Exact devices through Dynamic Resource Allocation on a real control plane: simulated nodes
whose GPUs are published in ResourceSlices (as NVIDIA's DRA driver does), the operator as a real
process (this module has its own), claims read back from the API server.

Each test adds its own nodes of a GPU family no other test uses, and deletes them (and their
slices) afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from crane.api.kube import KubeBackend
from crane.api.schemas import NodeOut
from crane.api.settings import ApiSettings
from crane.kube.fleet import (
    apply_nodes,
    apply_slices,
    delete_nodes,
    delete_slices,
    fleet_manifests,
    fleet_slices,
    wait_ready,
)
from crane.model.fleet import FleetSpec, NodeGroup
from tests.chaos.invariants import double_allocated_devices
from tests.e2e.operator_support import (
    GROUP,
    VERSION,
    OperatorProcess,
    apply,
    assert_no_gpu_double_booked,
    cargo_yaml,
    crane_pods,
    delete_all,
    forged_pod,
    get,
    mc_yaml,
    running,
    wait,
    wait_pass,
)

pytestmark = pytest.mark.e2e

RESOURCE = ("resource.k8s.io", "v1")
GPU_LIMIT = "nvidia.com/gpu"


@pytest.fixture
def dra_nodes(
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
) -> Iterator[Callable[..., list[str]]]:
    """Add simulated GPU nodes for one test (``dra=True``: GPUs in ResourceSlices); they and
    their slices are deleted afterwards."""
    added: list[str] = []
    slices: list[str] = []

    def add(
        group: str, product: str, gpus: int = 8, islands: str = "", dra: bool = True
    ) -> list[str]:
        spec = FleetSpec(
            groups=[
                NodeGroup(name=group, product=product, gpus_per_node=gpus, islands=islands, dra=dra)
            ]
        )
        nodes = fleet_manifests(spec)
        published = fleet_slices(spec)
        apply_nodes(core_v1, nodes)
        apply_slices(custom, published)
        names = [n["metadata"]["name"] for n in nodes]
        added.extend(names)
        slices.extend(s["metadata"]["name"] for s in published)
        wait_ready(core_v1, names, timeout=60)
        return names

    yield add
    delete_slices(custom, slices)
    delete_nodes(core_v1, added)


async def gpu_map(kubeconfig: Path) -> list[NodeOut]:
    """``GET /v1/nodes`` of Crane's API with the Kubernetes backend (in process)."""
    backend = KubeBackend(ApiSettings(kubeconfig=str(kubeconfig)))
    await backend.start()
    try:
        return await backend.nodes()
    finally:
        await backend.close()


def claims(custom_api: client.CustomObjectsApi, ns: str) -> dict[str, dict[str, Any]]:
    items = custom_api.list_namespaced_custom_object(*RESOURCE, ns, "resourceclaims")["items"]
    return {c["metadata"]["name"]: c for c in items}


def all_claims(custom_api: client.CustomObjectsApi) -> list[dict[str, Any]]:
    return list(custom_api.list_cluster_custom_object(*RESOURCE, "resourceclaims")["items"])


def devices(claim: dict[str, Any]) -> list[str]:
    allocation = (claim.get("status") or {}).get("allocation") or {}
    return [r["device"] for r in (allocation.get("devices") or {}).get("results") or []]


def gpu_ids(pod: client.V1Pod) -> list[int]:
    return [int(i) for i in pod.metadata.annotations["crane.io/gpu-ids"].split(",")]


def claimed_pods(custom_api: client.CustomObjectsApi, pods: list[client.V1Pod], ns: str) -> bool:
    """Every pod's claim is allocated (what the next checks read)."""
    have = claims(custom_api, ns)
    return bool(pods) and all(devices(have.get(f"{p.metadata.name}-gpus", {})) for p in pods)


def test_claims_allocate_exactly_the_devices_in_the_cargo_status_within_one_island(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    dra_nodes: Callable[..., list[str]],
) -> None:
    (node,) = dra_nodes("draa800", "NVIDIA-A800-SXM4-80GB", islands="0-3,4-7")
    apply(
        kube_cluster,
        namespace,
        mc_yaml("mc", "A800", 0, 8) + "---\n" + cargo_yaml("job", "mc", 2, 3),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "the cargo Running", operator)
    pods = crane_pods(core_v1, namespace)
    wait(lambda: claimed_pods(custom, pods, namespace), "the pods' claims allocated", operator)
    have = claims(custom, namespace)
    placement = get(custom, "cargos", namespace, "job")["status"]["placement"]  # type: ignore[index]
    by_replica = {p["replica"]: p for p in placement}
    for pod in pods:
        ids = gpu_ids(pod)
        replica = int(pod.metadata.labels["crane.io/replica"])
        assert by_replica[replica]["gpuIds"] == ids and by_replica[replica]["node"] == node
        assert set(ids) <= {0, 1, 2, 3} or set(ids) <= {4, 5, 6, 7}, f"not one island: {ids}"
        claim = have[f"{pod.metadata.name}-gpus"]
        assert devices(claim) == [f"gpu-{i}" for i in ids]
        results = claim["status"]["allocation"]["devices"]["results"]
        assert {(r["driver"], r["pool"]) for r in results} == {("gpu.nvidia.com", node)}
        assert claim["status"]["reservedFor"] == [
            {"resource": "pods", "name": pod.metadata.name, "uid": pod.metadata.uid}
        ]
        assert claim["metadata"]["ownerReferences"][0]["uid"] == pod.metadata.uid
        main = pod.spec.containers[0]
        assert GPU_LIMIT not in ((main.resources and main.resources.limits) or {})
        assert [c.name for c in main.resources.claims] == ["crane-gpus"]
        refs = [(r.name, r.resource_claim_name) for r in pod.spec.resource_claims]
        assert refs == [("crane-gpus", f"{pod.metadata.name}-gpus")]
    assert not double_allocated_devices(all_claims(custom))
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "miniclusters", "mc")
    wait(lambda: not crane_pods(core_v1, namespace), "the MiniCluster's pods to go", operator, 90)
    wait(lambda: not claims(custom, namespace), "no claim left behind", operator, 90)


def test_devices_of_a_claim_crane_did_not_make_are_not_handed_out(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    dra_nodes: Callable[..., list[str]],
) -> None:
    (node,) = dra_nodes("dral20", "NVIDIA-L20", gpus=4)
    theirs = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "theirs"},
        "spec": {
            "devices": {
                "requests": [
                    {
                        "name": "gpu",
                        "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 2},
                    }
                ]
            }
        },
    }
    custom.create_namespaced_custom_object(*RESOURCE, namespace, "resourceclaims", theirs)
    results = [
        {"request": "gpu", "driver": "gpu.nvidia.com", "pool": node, "device": d}
        for d in ("gpu-0", "gpu-1")
    ]
    custom.patch_namespaced_custom_object_status(
        *RESOURCE,
        namespace,
        "resourceclaims",
        "theirs",
        {"status": {"allocation": {"devices": {"results": results}}}},
    )
    apply(
        kube_cluster,
        namespace,
        mc_yaml("mc", "L20", 0, 4)
        + "---\n"
        + cargo_yaml("big", "mc", 1, 4)
        + "---\n"
        + cargo_yaml("small", "mc", 1, 2),
    )
    wait(
        lambda: running(crane_pods(core_v1, namespace, "crane.io/cargo=small"), 1),
        "the 2-GPU cargo Running",
        operator,
    )
    (pod,) = crane_pods(core_v1, namespace, "crane.io/cargo=small")
    assert gpu_ids(pod) == [2, 3], "gpu-0 and gpu-1 are another claim's"
    wait(lambda: claimed_pods(custom, [pod], namespace), "the pod's claim allocated", operator)
    big = get(custom, "cargos", namespace, "big") or {}
    assert (big.get("status") or {}).get("phase") == "Pending"
    assert not crane_pods(core_v1, namespace, "crane.io/cargo=big")
    assert not double_allocated_devices(all_claims(custom))
    # The API's GPU map reads the node from its slice and shows the other claim's GPUs busy.
    (shown,) = [n for n in asyncio.run(gpu_map(kube_cluster.kubeconfig)) if n.name == node]
    assert (shown.gpu_product, shown.gpu_count) == ("NVIDIA-L20", 4)
    assert [g.id for g in shown.gpus if g.busy] == [0, 1]
    assert [g.id for g in shown.gpus if g.cargo] == [2, 3]
    delete_all(custom, core_v1, namespace, operator)


def test_operator_restart_allocates_no_device_twice(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    dra_nodes: Callable[..., list[str]],
) -> None:
    dra_nodes("drab300", "NVIDIA-B300", gpus=8, islands="0-3,4-7")
    apply(
        kube_cluster, namespace, mc_yaml("mc", "B300", 0, 8) + "---\n" + cargo_yaml("a", "mc", 1, 4)
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 1), "the first cargo Running", operator)
    first = crane_pods(core_v1, namespace)
    wait(lambda: claimed_pods(custom, first, namespace), "its claim allocated", operator)
    before = devices(claims(custom, namespace)["a-0-gpus"])
    operator.kill()
    apply(
        kube_cluster, namespace, cargo_yaml("b", "mc", 1, 4) + "---\n" + cargo_yaml("c", "mc", 1, 4)
    )
    operator.start()
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "b or c Running", operator)
    pods = crane_pods(core_v1, namespace)
    wait(lambda: claimed_pods(custom, pods, namespace), "every claim allocated", operator)
    (second,) = {p.metadata.labels["crane.io/cargo"] for p in pods} - {"a"}
    waiting = "c" if second == "b" else "b"
    have = claims(custom, namespace)
    assert devices(have["a-0-gpus"]) == before, "the running cargo kept its devices"
    assert sorted(have) == ["a-0-gpus", f"{second}-0-gpus"], "all 8 GPUs are allocated"
    assert not double_allocated_devices(all_claims(custom))
    phase = ((get(custom, "cargos", namespace, waiting) or {}).get("status") or {}).get("phase")
    assert phase == "Pending"
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)
    wait(lambda: not claims(custom, namespace), "no claim left behind", operator, 90)


def test_mixed_fleet_uses_claims_on_dra_nodes_and_gpu_limits_elsewhere(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    dra_nodes: Callable[..., list[str]],
) -> None:
    (with_dra,) = dra_nodes("dramix", "NVIDIA-RTX-5090", gpus=4)
    (plugin,) = dra_nodes("plugmix", "NVIDIA-RTX-5090", gpus=4, dra=False)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("mc", "RTX-5090", 0, 8) + "---\n" + cargo_yaml("job", "mc", 2, 4),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "the cargo Running", operator)
    pods = {p.spec.node_name: p for p in crane_pods(core_v1, namespace)}
    assert set(pods) == {with_dra, plugin}
    dra_pod, plugin_pod = pods[with_dra], pods[plugin]
    wait(lambda: claimed_pods(custom, [dra_pod], namespace), "the DRA pod's claim", operator)
    assert devices(claims(custom, namespace)[f"{dra_pod.metadata.name}-gpus"]) == [
        f"gpu-{i}" for i in gpu_ids(dra_pod)
    ]
    assert not (dra_pod.spec.containers[0].resources.limits or {}).get(GPU_LIMIT)
    assert plugin_pod.spec.containers[0].resources.limits[GPU_LIMIT] == "4"
    assert not plugin_pod.spec.resource_claims
    assert sorted(claims(custom, namespace)) == [f"{dra_pod.metadata.name}-gpus"]
    delete_all(custom, core_v1, namespace, operator)
    wait(lambda: not claims(custom, namespace), "no claim left behind", operator, 90)


def test_claims_lost_or_left_while_the_operator_was_down_are_repaired(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    dra_nodes: Callable[..., list[str]],
) -> None:
    (node,) = dra_nodes("drarepair", "NVIDIA-B300A", gpus=8)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("mc", "B300A", 0, 8) + "---\n" + cargo_yaml("a", "mc", 1, 4),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 1), "the cargo Running", operator)
    (pod,) = crane_pods(core_v1, namespace)
    wait(lambda: claimed_pods(custom, [pod], namespace), "its claim allocated", operator)
    before = devices(claims(custom, namespace)["a-0-gpus"])
    operator.kill()
    # As if the operator had died between a pod's create and its claim's: the claim is gone.
    custom.delete_namespaced_custom_object(*RESOURCE, namespace, "resourceclaims", "a-0-gpus")
    # And a claim of Crane's whose pod is gone holds the other four GPUs.
    ghost = {
        "apiVersion": "resource.k8s.io/v1",
        "kind": "ResourceClaim",
        "metadata": {"name": "ghost-0-gpus", "labels": {"crane.io/pod": "ghost-0"}},
        "spec": {
            "devices": {
                "requests": [
                    {"name": "gpus", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 4}}
                ]
            }
        },
    }
    custom.create_namespaced_custom_object(*RESOURCE, namespace, "resourceclaims", ghost)
    rest = [f"gpu-{i}" for i in range(8) if f"gpu-{i}" not in before]
    results = [
        {"request": "gpus", "driver": "gpu.nvidia.com", "pool": node, "device": d} for d in rest
    ]
    custom.patch_namespaced_custom_object_status(
        *RESOURCE,
        namespace,
        "resourceclaims",
        "ghost-0-gpus",
        {"status": {"allocation": {"devices": {"results": results}}}},
    )
    apply(kube_cluster, namespace, cargo_yaml("b", "mc", 1, 4))
    operator.start()
    wait(lambda: claimed_pods(custom, [pod], namespace), "the lost claim made again", operator)
    assert devices(claims(custom, namespace)["a-0-gpus"]) == before
    wait(
        lambda: "ghost-0-gpus" not in claims(custom, namespace), "the stale claim deleted", operator
    )
    wait(
        lambda: running(crane_pods(core_v1, namespace, "crane.io/cargo=b"), 1),
        "b Running on the GPUs the stale claim held",
        operator,
    )
    (second,) = crane_pods(core_v1, namespace, "crane.io/cargo=b")
    wait(lambda: claimed_pods(custom, [second], namespace), "b's claim allocated", operator)
    assert sorted(devices(claims(custom, namespace)["b-0-gpus"])) == sorted(rest)
    assert not double_allocated_devices(all_claims(custom))
    delete_all(custom, core_v1, namespace, operator)
    wait(lambda: not claims(custom, namespace), "no claim left behind", operator, 90)


def test_a_hand_made_pod_gets_no_claim_on_another_tenants_devices(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    other_namespace: str,
    dra_nodes: Callable[..., list[str]],
) -> None:
    (node,) = dra_nodes("draforge", "NVIDIA-FORGEDRA", gpus=8)
    apply(
        kube_cluster,
        other_namespace,
        mc_yaml("work", "FORGEDRA", 0, 8) + "---\n" + cargo_yaml("job", "work", 1, 4),
    )
    wait(lambda: running(crane_pods(core_v1, other_namespace), 1), "job Running", operator)
    (victim,) = crane_pods(core_v1, other_namespace)
    wait(lambda: claimed_pods(custom, [victim], other_namespace), "job's claim", operator)
    # Another tenant writes a pod of their own that says it is their cargo's replica on the
    # victim's GPUs and refers to a claim that does not exist (as if its write had been lost).
    apply(kube_cluster, namespace, cargo_yaml("bait", "nowhere", 1, 4))
    ids = victim.metadata.annotations["crane.io/gpu-ids"]
    core_v1.create_namespaced_pod(
        namespace, forged_pod("grab", node, "bait", ids, claim="grab-gpus")
    )
    wait(lambda: core_v1.read_namespaced_pod("grab", namespace).status.phase, "grab", operator)
    wait_pass(kube_cluster, custom, namespace, operator)
    wait_pass(kube_cluster, custom, namespace, operator)
    assert "grab-gpus" not in claims(custom, namespace), "Crane allocated the victim's devices"
    assert not double_allocated_devices(all_claims(custom))
    core_v1.delete_namespaced_pod("grab", namespace, grace_period_seconds=0)
    delete_all(custom, core_v1, other_namespace, operator)
