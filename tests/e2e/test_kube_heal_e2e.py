"""A clumsy user's hand edits on the objects Crane made for a MiniCluster, end to end on the
test control plane: what Crane needs comes back promptly, without waiting for the next pod."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.operator_support import (
    REPO,
    OperatorProcess,
    apply,
    cargo_yaml,
    crane_pods,
    delete_all,
    get,
    mc_yaml,
    running,
    wait,
)

pytestmark = pytest.mark.e2e


def _uid(read: Callable[[str, str], Any], name: str, namespace: str) -> str | None:
    """The uid of the object ``name``, or None when there is none."""
    try:
        return str(read(name, namespace).metadata.uid)
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def test_services_deleted_by_hand_come_back_without_a_new_pod(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
) -> None:
    apply(kube_cluster, namespace, (REPO / "examples" / "elastic-training.yaml").read_text())
    wait(lambda: running(crane_pods(core_v1, namespace), 4), "4 trainer pods Running", operator, 90)
    read = core_v1.read_namespaced_service
    before = wait(
        lambda: (
            all(_uid(read, s, namespace) for s in ("llm-train", "llm-train-rdzv"))
            and {s: _uid(read, s, namespace) for s in ("llm-train", "llm-train-rdzv")}
        ),
        "the headless and the rendezvous Services",
        operator,
    )
    pods = {p.metadata.uid for p in crane_pods(core_v1, namespace)}
    kube_cluster.kubectl("delete", "svc", "llm-train", "llm-train-rdzv", "-n", namespace)
    for name, old in before.items():
        wait(
            lambda name=name, old=old: _uid(read, name, namespace) not in (None, old),
            f"Service {name} made again after `kubectl delete svc`",
            operator,
            30,
        )
    headless = read("llm-train", namespace)
    assert headless.spec.cluster_ip == "None" and headless.spec.selector == {
        "crane.io/minicluster": "llm-train"
    }
    assert {p.metadata.uid for p in crane_pods(core_v1, namespace)} == pods, (
        "the Services came back without any pod being replaced"
    )
    delete_all(custom, core_v1, namespace, operator)


def test_a_pod_relabelled_by_hand_is_reported_and_its_replica_recovers(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("relabel", "NVIDIA-RELABEL", racks=1, per_rack=1)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("rl", "RELABEL", 0, 8) + "---\n" + cargo_yaml("rl-job", "rl", 1, 4),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 1), "the replica Running", operator)
    kube_cluster.kubectl(
        "label", "pod", "rl-job-0", "crane.io/cargo-", "crane.io/replica-", "-n", namespace
    )

    def warned() -> list[str]:
        events = core_v1.list_namespaced_event(
            namespace, field_selector="involvedObject.name=rl-job"
        ).items
        return [e.message for e in events if e.type == "Warning" and "rl-job-0" in e.message]

    said = wait(warned, "a Warning event on the cargo naming the relabelled pod", operator, 45)
    assert "label" in said[0], said
    wait(
        lambda: running(crane_pods(core_v1, namespace, "crane.io/cargo=rl-job"), 1),
        "replica 0 Running with its labels again",
        operator,
        45,
    )
    assert (get(custom, "cargos", namespace, "rl-job") or {})["status"]["phase"] == "Running"
    delete_all(custom, core_v1, namespace, operator)
