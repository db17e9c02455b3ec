"""The test cluster is a real control plane: nodes, pod lifecycles, GC, scheduling and CRDs."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crane.kube.fleet import apply_nodes, delete_nodes, group_manifests, wait_ready
from crane.model.fleet import NodeGroup
from tests.support import wait_established

pytestmark = pytest.mark.e2e

T = TypeVar("T")
Json = dict[str, Any]
TOLERATE_CRANE = [{"key": "crane.io/managed", "operator": "Exists", "effect": "NoSchedule"}]


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 30.0) -> T:
    """Poll ``probe`` until it returns something other than None or False."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def as_json(resp: Any) -> Json:
    """Decode a response fetched with ``_preload_content=False`` (a raw HTTP response)."""
    data: Json = json.loads(resp.data)
    return data


def pod(
    name: str,
    *,
    node: str | None = None,
    gpus: int = 0,
    tolerate: bool = True,
    annotations: dict[str, str] | None = None,
    owner: Json | None = None,
    node_selector: dict[str, str] | None = None,
) -> Json:
    container: Json = {"name": "main", "image": "busybox"}
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}
    spec: Json = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    if tolerate:
        spec["tolerations"] = TOLERATE_CRANE
    if node_selector:
        spec["nodeSelector"] = node_selector
    meta: Json = {"name": name, "annotations": annotations or {}}
    if owner:
        meta["ownerReferences"] = [owner]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def create_pod(core_v1: client.CoreV1Api, namespace: str, manifest: Json) -> None:
    # The client takes plain dicts as bodies; its type hints name only its model classes.
    core_v1.create_namespaced_pod(namespace, cast(Any, manifest), _preload_content=False)


def read_pod(core_v1: client.CoreV1Api, namespace: str, name: str) -> Json | None:
    """The pod as JSON, or None once it is gone."""
    try:
        return as_json(core_v1.read_namespaced_pod(name, namespace, _preload_content=False))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def phase_is(
    core_v1: client.CoreV1Api, namespace: str, name: str, phase: str
) -> Callable[[], Json | None]:
    def probe() -> Json | None:
        p = read_pod(core_v1, namespace, name)
        return p if p and p.get("status", {}).get("phase") == phase else None

    return probe


def gone(core_v1: client.CoreV1Api, namespace: str, name: str) -> Callable[[], bool]:
    return lambda: read_pod(core_v1, namespace, name) is None


def test_fleet_nodes_are_ready_with_gpus_labels_and_heartbeat(
    core_v1: client.CoreV1Api, kube_api: client.ApiClient
) -> None:
    h100 = as_json(core_v1.read_node("h100-z0-b0-r1-n1", _preload_content=False))
    a100 = as_json(core_v1.read_node("a100-z0-b0-r0-n0", _preload_content=False))
    for node, gpus in ((h100, "8"), (a100, "4")):
        meta, status = node["metadata"], node["status"]
        ready = [c["status"] for c in status["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], meta["name"]
        assert status["capacity"]["nvidia.com/gpu"] == gpus
        assert status["allocatable"]["nvidia.com/gpu"] == gpus
        assert meta["labels"]["nvidia.com/gpu.count"] == gpus
        assert meta["annotations"]["kwok.x-k8s.io/node"] == "fake"
        assert [(t["key"], t["effect"]) for t in node["spec"]["taints"]] == [
            ("crane.io/managed", "NoSchedule")
        ]
    labels = h100["metadata"]["labels"]
    assert labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert labels["crane.io/rack"] == "h100-z0-b0-r1"
    assert labels["topology.kubernetes.io/zone"] == "zone-0"
    assert h100["metadata"]["annotations"]["crane.io/gpu-islands"] == "0-3,4-7"
    lease = as_json(
        client.CoordinationV1Api(kube_api).read_namespaced_lease(
            "h100-z0-b0-r1-n1", "kube-node-lease", _preload_content=False
        )
    )["spec"]
    renewed = datetime.fromisoformat(lease["renewTime"].replace("Z", "+00:00"))
    assert (datetime.now(UTC) - renewed).total_seconds() < lease["leaseDurationSeconds"]


def test_pod_on_a_simulated_node_runs_and_its_deletion_completes(
    core_v1: client.CoreV1Api, namespace: str
) -> None:
    create_pod(core_v1, namespace, pod("runner", node="a100-z0-b0-r0-n0", gpus=4))
    running = eventually(phase_is(core_v1, namespace, "runner", "Running"), "pod Running")
    assert running["status"]["podIP"]
    assert running["status"]["containerStatuses"][0]["ready"] is True
    core_v1.delete_namespaced_pod("runner", namespace)
    eventually(gone(core_v1, namespace, "runner"), "pod deletion to complete")


@pytest.mark.parametrize(
    ("code", "phase", "reason"), [("0", "Succeeded", "Completed"), ("3", "Failed", "Error")]
)
def test_annotated_pod_exits_with_its_simulated_exit_code(
    core_v1: client.CoreV1Api, namespace: str, code: str, phase: str, reason: str
) -> None:
    sim = {"sim.crane.io/exit-code": code, "sim.crane.io/run-for": "1s"}
    create_pod(core_v1, namespace, pod("job", node="a100-z0-b0-r0-n1", annotations=sim))
    done = eventually(phase_is(core_v1, namespace, "job", phase), f"pod {phase}")
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (int(code), reason)


def test_garbage_collector_deletes_the_pod_of_a_deleted_owner(
    core_v1: client.CoreV1Api, namespace: str
) -> None:
    owner = as_json(
        core_v1.create_namespaced_config_map(
            namespace, cast(Any, {"metadata": {"name": "owner"}}), _preload_content=False
        )
    )
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner["metadata"]["uid"],
    }
    create_pod(core_v1, namespace, pod("owned", node="h100-z0-b0-r0-n0", owner=ref))
    eventually(phase_is(core_v1, namespace, "owned", "Running"), "owned pod Running")
    core_v1.delete_namespaced_config_map("owner", namespace)
    eventually(gone(core_v1, namespace, "owned"), "the garbage collector to delete the pod")


@pytest.fixture
def private_node(core_v1: client.CoreV1Api) -> Iterator[str]:
    """A 2-GPU node of this test's own, so no other test's pods change its free GPUs."""
    group = NodeGroup(name=f"e2e-{uuid.uuid4().hex[:8]}", product="NVIDIA-L4", gpus_per_node=2)
    manifests = group_manifests(group)
    name = manifests[0]["metadata"]["name"]
    apply_nodes(core_v1, manifests)
    try:
        wait_ready(core_v1, [name], timeout=30)
        yield name
    finally:
        delete_nodes(core_v1, [name])


def test_scheduler_binds_gpu_pods_while_gpus_are_free_and_then_leaves_them_pending(
    core_v1: client.CoreV1Api, namespace: str, private_node: str
) -> None:
    only_there = {"kubernetes.io/hostname": private_node}
    create_pod(core_v1, namespace, pod("fits", gpus=2, node_selector=only_there))
    bound = eventually(phase_is(core_v1, namespace, "fits", "Running"), "GPU pod bound and Running")
    assert bound["spec"]["nodeName"] == private_node

    create_pod(core_v1, namespace, pod("waits", gpus=1, node_selector=only_there))
    create_pod(core_v1, namespace, pod("untolerated", tolerate=False, node_selector=only_there))

    def unschedulable(name: str) -> Callable[[], str | None]:
        def probe() -> str | None:
            p = read_pod(core_v1, namespace, name) or {}
            for c in p.get("status", {}).get("conditions", []):
                if c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable":
                    return str(c["message"])
            return None

        return probe

    assert "Insufficient nvidia.com/gpu" in eventually(unschedulable("waits"), "Unschedulable")
    assert "untolerated taint" in eventually(unschedulable("untolerated"), "Unschedulable")
    for name in ("waits", "untolerated"):
        still = read_pod(core_v1, namespace, name)
        assert still and still["status"]["phase"] == "Pending"
        assert not still["spec"].get("nodeName")

    core_v1.delete_namespaced_pod("fits", namespace)
    freed = eventually(
        phase_is(core_v1, namespace, "waits", "Running"),
        "the pending pod to be bound once GPUs are freed",
    )
    assert freed["spec"]["nodeName"] == private_node


def test_kubectl_applies_a_crd_and_a_custom_resource_round_trips(
    kubectl: Callable[..., subprocess.CompletedProcess[str]],
    kube_api: client.ApiClient,
    namespace: str,
) -> None:
    group = f"g{uuid.uuid4().hex[:8]}.e2e.crane.io"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                        "tags": {"type": "array", "items": {"type": "string"}},
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    kubectl("apply", "-f", "-", input=json.dumps(crd))
    try:
        wait_established(kubectl, f"crd/gadgets.{group}")
        spec = {"size": 3, "tags": ["a", "b"]}
        gadget = {
            "apiVersion": f"{group}/v1alpha1",
            "kind": "Gadget",
            "metadata": {"name": "g1"},
            "spec": spec,
        }
        kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(gadget))
        got = client.CustomObjectsApi(kube_api).get_namespaced_custom_object(
            group, "v1alpha1", namespace, "gadgets", "g1", _preload_content=False
        )
        assert as_json(got)["spec"] == spec
        bad = {**gadget, "metadata": {"name": "g2"}, "spec": {"size": 0}}
        refused = kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False)
        assert refused.returncode != 0 and "spec.size" in refused.stderr
    finally:
        kubectl("delete", "--wait=false", f"crd/gadgets.{group}")
