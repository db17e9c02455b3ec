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
    crane_pods,
    delete_all,
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
