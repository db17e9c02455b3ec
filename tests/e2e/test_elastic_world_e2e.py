"""One elastic world per MiniCluster on Kubernetes (issue 13, items 1 and 2), end to end on the
test control plane (kwok runs no containers, so what a container would see is asserted on the
objects): every pod of every cargo carries the MiniCluster's rendezvous env and the notice
volume, the rendezvous Deployment and Service exist while the MiniCluster does and go with it,
and a cargo removed by ``kubectl scale`` gets its notice annotation before its pods are deleted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.e2e.operator_support import (
    REPO,
    OperatorProcess,
    apply,
    crane_pods,
    delete_all,
    get,
    mc_yaml,
    running,
    wait,
)

pytestmark = pytest.mark.e2e

NOTICE = "crane.io/notice"


def _env(pod: client.V1Pod) -> dict[str, str]:
    return {e.name: e.value for e in pod.spec.containers[0].env}


def _exists(read: Callable[[str, str], Any], name: str, namespace: str) -> bool:
    try:
        read(name, namespace)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


def test_example_runs_one_world_across_its_cargos_with_the_store(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    kube_api: client.ApiClient,
    custom: client.CustomObjectsApi,
    namespace: str,
) -> None:
    apply(kube_cluster, namespace, (REPO / "examples" / "elastic-training.yaml").read_text())
    wait(lambda: running(crane_pods(core_v1, namespace), 4), "4 trainer pods Running", operator, 90)
    mc = get(custom, "miniclusters", namespace, "llm-train") or {}
    uid = mc["metadata"]["uid"]
    envs = [_env(p) for p in crane_pods(core_v1, namespace)]
    assert {e["CRANE_CARGO"] for e in envs} == {"llm-train-0", "llm-train-1"}
    for env in envs:
        assert env["CRANE_RDZV_ENDPOINT"] == f"llm-train-rdzv.{namespace}.svc:29400"
        assert env["CRANE_RDZV_ID"] == uid
        assert env["CRANE_RDZV_BACKEND"] == "c10d"
        assert env["CRANE_NNODES"] == "2:8"  # 1 to 4 cargos of 2 replicas
        assert env["CRANE_NOTICE_FILE"] == "/crane/notice"
        assert env["WORLD_SIZE"] == "2", "the gang-local world stays per cargo"
    apps = client.AppsV1Api(kube_api)
    deployment = wait(
        lambda: (
            _exists(apps.read_namespaced_deployment, "llm-train-rdzv", namespace)
            and apps.read_namespaced_deployment("llm-train-rdzv", namespace)
        ),
        "the rendezvous Deployment",
        operator,
    )
    assert [o.uid for o in deployment.metadata.owner_references] == [uid]
    pod = deployment.spec.template.spec
    assert pod.containers[0].image == "pytorch:24.08-py3"
    assert pod.security_context.run_as_non_root is True
    assert not (pod.containers[0].resources.limits or {}), "the store asks for no GPU"
    service = wait(
        lambda: (
            _exists(core_v1.read_namespaced_service, "llm-train-rdzv", namespace)
            and core_v1.read_namespaced_service("llm-train-rdzv", namespace)
        ),
        "the rendezvous Service",
        operator,
    )
    assert [p.port for p in service.spec.ports] == [29400]
    wait(
        lambda: running(crane_pods(core_v1, namespace, "crane.io/rendezvous=llm-train"), 1),
        "the store's pod Running (placed by kube-scheduler, no GPU)",
        operator,
        90,
    )
    assert [o.uid for o in service.metadata.owner_references] == [uid]
    delete_all(custom, core_v1, namespace, operator)
    wait(
        lambda: (
            not _exists(apps.read_namespaced_deployment, "llm-train-rdzv", namespace)
            and not _exists(core_v1.read_namespaced_service, "llm-train-rdzv", namespace)
        ),
        "the store's Deployment and Service gone with the MiniCluster",
        operator,
        90,
    )


def test_a_cargo_removed_by_scale_gets_its_notice_before_its_pods_go(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("worldb100", "NVIDIA-B100", racks=1, per_rack=2)
    template = (
        ", replicas: 2, rendezvous: {enabled: true}, template: {replicas: 2, gpusPerReplica: 2,"
        " template: {spec: {terminationGracePeriodSeconds: 20,"
        " containers: [{name: main, image: busybox}]}}}"
    )
    apply(kube_cluster, namespace, mc_yaml("shr", "B100", 4, 16, extra=template))
    wait(lambda: running(crane_pods(core_v1, namespace), 4), "2 cargos of 2 pods", operator)
    for pod in crane_pods(core_v1, namespace):
        volumes = {v.name: v for v in pod.spec.volumes}
        [item] = volumes["crane-notice"].downward_api.items
        assert (item.path, item.field_ref.field_path) == (
            "notice",
            f"metadata.annotations['{NOTICE}']",
        )
        assert NOTICE not in (pod.metadata.annotations or {}), "no notice before there is one"
    listed = core_v1.list_namespaced_pod(namespace, label_selector="crane.io/cargo=shr-1")
    since = listed.metadata.resource_version
    asked = datetime.now(UTC)
    kube_cluster.kubectl("scale", "mc/shr", "-n", namespace, "--replicas=1")
    notices: dict[str, dict[str, Any]] = {}
    for event in watch.Watch().stream(
        core_v1.list_namespaced_pod,
        namespace,
        label_selector="crane.io/cargo=shr-1",
        resource_version=since,
        timeout_seconds=60,
    ):
        pod = event["object"]
        text = (pod.metadata.annotations or {}).get(NOTICE)
        if pod.metadata.name not in notices:
            assert pod.metadata.deletion_timestamp is None or text, "deleted before its notice"
            if text:
                notices[pod.metadata.name] = json.loads(text)
        if len(notices) == 2:
            break
    assert set(notices) == {"shr-1-0", "shr-1-1"}
    for notice in notices.values():
        assert notice["reason"] == "Removed" and "shr-1" in notice["message"]
        deadline = datetime.fromisoformat(notice["deadline"])
        assert asked < deadline <= datetime.now(UTC) + timedelta(seconds=20)
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "shr-1's pods gone", operator, 90)
    left = crane_pods(core_v1, namespace)
    assert {p.metadata.labels["crane.io/cargo"] for p in left} == {"shr-0"}
    assert all(NOTICE not in (p.metadata.annotations or {}) for p in left)
    delete_all(custom, core_v1, namespace, operator)
