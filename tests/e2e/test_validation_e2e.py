"""Bad objects on a real control plane (issues 10 items 3-4, 11 items 1-2): the CRD schema
refuses malformed templates and absurd counts at ``kubectl apply``; what gets in but cannot
become pods (GPUs of the template's own, a template beyond its namespace's Pod Security level)
fails alone with a condition and a Warning event naming the field, before any pod exists (so
do a critical priority class and envFrom that could set NVIDIA_VISIBLE_DEVICES);
another namespace's MiniCluster and Cargo keep being placed."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.operator_support import (
    OperatorProcess,
    assert_no_gpu_double_booked,
    cond,
    crane_pods,
    get,
    mc_yaml,
    running,
    wait,
)

pytestmark = pytest.mark.e2e

GPU = "NVIDIA-A10G"


def apply(kube_cluster: Any, ns: str, text: str) -> subprocess.CompletedProcess[str]:
    out: subprocess.CompletedProcess[str] = kube_cluster.kubectl(
        "apply", "-n", ns, "-f", "-", input=text, check=False
    )
    return out


def cargo(
    name: str,
    containers: str,
    spec: str = "",
    replicas: int = 1,
    gpus: int = 1,
    policy: str = "Never",
) -> str:
    return (
        f"apiVersion: crane.io/v1alpha1\nkind: Cargo\nmetadata: {{name: {name}}}\n"
        f"spec:\n  miniCluster: mc\n  replicas: {replicas}\n  gpusPerReplica: {gpus}\n"
        f"  restartPolicy: {policy}\n"
        f"  template:\n    spec:\n      terminationGracePeriodSeconds: 1\n{spec}"
        f"      containers: {containers}\n"
    )


MAIN = "{name: main, image: busybox}"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (cargo("env", "[{name: main, image: busybox, env: x}]"), "spec.containers[0].env"),
        (cargo("env1", "[{name: main, image: busybox, env: [1]}]"), "spec.containers[0].env[0]"),
        (cargo("res", "[{name: main, image: busybox, resources: x}]"), "resources"),
        (
            cargo("lim", "[{name: main, image: busybox, resources: {limits: x}}]"),
            "resources.limits",
        ),
        (cargo("tol", f"[{MAIN}]", spec="      tolerations: x\n"), "spec.tolerations"),
        (cargo("big", f"[{MAIN}]", replicas=1_000_000_000), "spec.replicas"),
        (cargo("gpr", f"[{MAIN}]", gpus=65), "spec.gpusPerReplica"),
        (mc_yaml("huge", "A10G", 1_000_000_000, 1_000_000_000), "spec.gpus.min"),
        (mc_yaml("pri", "A10G", 0, 8, priority=2**31), "spec.priority"),
        (
            mc_yaml("reps", "A10G", 0, 8, extra=", replicas: 1000000000, template: {}"),
            "spec.replicas",
        ),
        (
            mc_yaml("rdzv", "A10G", 0, 8, extra=", rendezvous: {enabled: true}"),
            "rendezvous needs a template",
        ),
        (
            mc_yaml("port", "A10G", 0, 8, extra=", rendezvous: {port: 70000}"),
            "spec.rendezvous.port",
        ),
        # MiniCluster job's rendezvous Service is job-rdzv, as this one's headless Service
        (mc_yaml("job-rdzv", "A10G", 0, 8), "may not end in -rdzv"),
    ],
)
def test_crd_schema_refuses_malformed_templates_and_huge_counts(
    kube_cluster: Any, crane_crds: str, namespace: str, text: str, field: str
) -> None:
    out = apply(kube_cluster, namespace, text)
    assert out.returncode != 0, out.stdout
    assert field in out.stderr, out.stderr


def warning_events(core: client.CoreV1Api, ns: str, name: str) -> list[tuple[str, str]]:
    events = core.list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items
    return [(e.reason, e.message) for e in events if e.type == "Warning"]


def test_objects_that_cannot_become_pods_fail_alone(
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: OperatorProcess,
    nodes: Any,
    namespace: str,
) -> None:
    nodes("val", GPU, racks=1, per_rack=2)
    other = f"{namespace}-b"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    try:
        for ns in (namespace, other):
            assert apply(kube_cluster, ns, mc_yaml("mc", "A10G", 0, 16)).returncode == 0
        gpus = "{name: side, image: busybox, resources: {limits: {nvidia.com/gpu: 8}}}"
        bad = {
            "gpus": cargo("gpus", f"[{MAIN}, {gpus}]"),
            "root": cargo(
                "root",
                "[{name: main, image: busybox, securityContext: {privileged: true}}]",
                spec="      hostPID: true\n",
            ),
            "critical": cargo(
                "critical", f"[{MAIN}]", spec="      priorityClassName: system-node-critical\n"
            ),
            "gpuenv": cargo(
                "gpuenv", "[{name: main, image: busybox, envFrom: [{configMapRef: {name: g}}]}]"
            ),
        }
        for text in bad.values():
            out = apply(kube_cluster, namespace, text)
            assert out.returncode == 0, out.stderr
        out = apply(kube_cluster, other, cargo("good", f"[{MAIN}]", replicas=2, gpus=4))
        assert out.returncode == 0, out.stderr

        def failed(name: str) -> dict[str, Any]:
            c = cond(get(custom, "cargos", namespace, name), "Failed")
            return c if c.get("status") == "True" else {}

        gpu_fail = wait(lambda: failed("gpus"), "cargo gpus Failed", operator, timeout=90)
        assert gpu_fail["reason"] == "InvalidSpec"
        assert "spec.containers[1].resources.limits[nvidia.com/gpu]" in gpu_fail["message"]
        # a kubelet evicts other tenants' pods for a critical one; envFrom could set
        # NVIDIA_VISIBLE_DEVICES=all: both fail before any pod, naming the field
        for name, field in (
            ("critical", "spec.priorityClassName"),
            ("gpuenv", "spec.containers[0].envFrom[0]"),
        ):
            refused = wait(lambda n=name: failed(n), f"cargo {name} Failed", operator, timeout=90)
            assert refused["reason"] == "InvalidSpec" and field in refused["message"], refused
        root_fail = wait(lambda: failed("root"), "cargo root Failed", operator, timeout=90)
        assert root_fail["reason"] == "PodSecurity", root_fail
        assert "spec.template.spec.hostPID" in root_fail["message"]
        assert "securityContext.privileged" in root_fail["message"]
        reasons = wait(
            lambda: warning_events(core_v1, namespace, "root"), "the Warning event", operator
        )
        assert any(r == "PodSecurity" and "hostPID" in m for r, m in reasons)
        wait(
            lambda: running(crane_pods(core_v1, other), 2),
            "the other namespace's cargo running",
            operator,
            timeout=120,
        )
        assert crane_pods(core_v1, namespace) == []
        # scheduling goes on afterwards too
        out = apply(kube_cluster, other, cargo("later", f"[{MAIN}]", replicas=1, gpus=4))
        assert out.returncode == 0, out.stderr
        wait(
            lambda: cond(get(custom, "cargos", other, "later"), "Placed").get("status") == "True",
            "a later cargo placed",
            operator,
            timeout=90,
        )
    finally:
        for ns in (namespace, other):
            for mc in custom.list_namespaced_custom_object(
                "crane.io", "v1alpha1", ns, "miniclusters"
            )["items"]:
                custom.delete_namespaced_custom_object(
                    "crane.io", "v1alpha1", ns, "miniclusters", mc["metadata"]["name"]
                )
        core_v1.delete_namespace(other, propagation_policy="Background")


def test_a_placed_cargo_edited_with_kubectl_never_gets_more_than_it_was_given(
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    operator: OperatorProcess,
    nodes: Any,
    namespace: str,
) -> None:
    """``gpusPerReplica`` raised on a running gang is refused by the CRD; a pod lost then
    restarts the gang (``OnFailure``), its pods made again asking the device plugin for the GPUs
    Crane placed them on, no more. A template edited to privileged after placement, then a pod
    lost: the gang's restart makes no pod beyond the namespace's level, the cargo fails
    (PodSecurity)."""
    nodes("edit", "NVIDIA-GeForce-RTX-4090", racks=1, per_rack=1)
    assert apply(kube_cluster, namespace, mc_yaml("mc", "RTX-4090", 0, 8)).returncode == 0
    for name in ("wide", "root"):
        body = cargo(name, f"[{MAIN}]", replicas=2, gpus=1, policy="OnFailure")
        out = apply(kube_cluster, namespace, body)
        assert out.returncode == 0, out.stderr
    try:
        wait(
            lambda: running(crane_pods(core_v1, namespace), 4), "both gangs running", operator, 120
        )
        edits = {
            "wide": {"spec": {"gpusPerReplica": 8}},
            "root": {
                "spec": {
                    "template": {
                        "spec": {
                            "hostPID": True,
                            "containers": [
                                {
                                    "name": "main",
                                    "image": "busybox",
                                    "securityContext": {"privileged": True},
                                }
                            ],
                        }
                    }
                }
            },
        }
        for name, edit in edits.items():
            try:
                custom.patch_namespaced_custom_object(
                    "crane.io", "v1alpha1", namespace, "cargos", name, edit
                )
            except ApiException as refused:  # the CRD keeps gpusPerReplica as placed
                assert name == "wide" and "gpusPerReplica is immutable" in str(refused.body)
            else:
                assert name == "root", "the API server took an edit of gpusPerReplica"
            core_v1.delete_namespaced_pod(f"{name}-1", namespace, grace_period_seconds=0)

        def remade() -> client.V1Pod | None:
            pods = crane_pods(core_v1, namespace, "crane.io/cargo=wide")
            pod = next((p for p in pods if p.metadata.name == "wide-1"), None)
            return pod if pod is not None and pod.metadata.deletion_timestamp is None else None

        pod = wait(remade, "pod wide-1 made again", operator, timeout=90)
        ids = pod.metadata.annotations["crane.io/gpu-ids"].split(",")
        assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == str(len(ids)) == "1"

        def failed() -> dict[str, Any]:
            c = cond(get(custom, "cargos", namespace, "root"), "Failed")
            return c if c.get("status") == "True" else {}

        root_fail = wait(failed, "cargo root Failed", operator, timeout=90)
        assert root_fail["reason"] == "PodSecurity", root_fail
        assert "spec.template.spec.hostPID" in root_fail["message"]
        for pod in crane_pods(core_v1, namespace, "crane.io/cargo=root"):
            assert not pod.spec.host_pid, "a pod beyond the namespace's level was created"
        assert_no_gpu_double_booked(core_v1)
    finally:
        custom.delete_namespaced_custom_object(
            "crane.io", "v1alpha1", namespace, "miniclusters", "mc"
        )
