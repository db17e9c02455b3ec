"""The operator end to end: a real control plane (kube-apiserver, controller-manager, kwok GPU
nodes), the operator as a real process, driven by our kubectl and the kubernetes client.

Each test adds its own simulated nodes of a GPU family no other test uses, so capacity is
its own even though the cluster and the operator are shared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.operator_support import (
    GROUP,
    NOT_READY_ANNOTATION,
    REPO,
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
    node_labels,
    running,
    wait,
)

pytestmark = pytest.mark.e2e


# --- (a) apply: pods Running on the right nodes; kubectl columns -------------------------------


def test_elastic_training_example_runs_gangs_on_h100_within_a_rack(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
) -> None:
    apply(kube_cluster, namespace, (REPO / "examples" / "elastic-training.yaml").read_text())
    wait(lambda: running(crane_pods(core_v1, namespace), 4), "4 trainer pods Running", operator, 90)
    for pod in crane_pods(core_v1, namespace):
        labels = node_labels(core_v1, pod.spec.node_name)
        assert "H100" in labels["nvidia.com/gpu.product"]
        env = {e.name: e.value for e in pod.spec.containers[0].env}
        cargo = pod.metadata.labels["crane.io/cargo"]
        assert (
            env["MASTER_ADDR"] == f"{cargo}-0.llm-train.{namespace}.svc"
            and env["WORLD_SIZE"] == "2"
        )
        assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "4"
    for cargo in ("llm-train-0", "llm-train-1"):
        racks = {
            node_labels(core_v1, p.spec.node_name)["crane.io/rack"]
            for p in crane_pods(core_v1, namespace, f"crane.io/cargo={cargo}")
        }
        assert len(racks) == 1, f"{cargo} spans racks {racks} though one rack can hold it"
    core_v1.read_namespaced_service("llm-train", namespace)  # one Service for every cargo
    wait(
        lambda: (
            cond(get(custom, "miniclusters", namespace, "llm-train"), "Ready").get("status")
            == "True"
        ),
        "MiniCluster Ready",
        operator,
    )
    table = kube_cluster.kubectl("get", "mc,cg", "-n", namespace).stdout
    mc_row = next(
        line for line in table.splitlines() if line.startswith("minicluster.crane.io/llm-train")
    )
    assert mc_row.split()[1:8] == ["H100", "16", "16", "16", "0", "32", "2"], table
    assert "Running" in table and "llm-train-1" in table
    assert_no_gpu_double_booked(core_v1)
    assert 'crane_gpus_in_use{gpu_type="H100"}' in operator.metrics()
    assert operator.healthz() == 200
    delete_all(custom, core_v1, namespace, operator)


def test_automl_example_runs_trials_on_a100(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
) -> None:
    apply(kube_cluster, namespace, (REPO / "examples" / "automl.yaml").read_text())
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "2 trial pods Running", operator, 60)
    for pod in crane_pods(core_v1, namespace):
        assert "A100" in node_labels(core_v1, pod.spec.node_name)["nvidia.com/gpu.product"]
    trial = get(custom, "cargos", namespace, "trial-1")
    assert trial is not None and trial["status"]["phase"] == "Running"
    owners = trial["metadata"].get("ownerReferences") or []
    assert any(o["kind"] == "MiniCluster" and o["name"] == "automl" for o in owners)
    delete_all(custom, core_v1, namespace, operator)


def test_rack_local_32_gpu_gang_lands_in_one_rack(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("rackh100", "NVIDIA-H100-80GB-HBM3", racks=1, per_rack=4)
    apply(kube_cluster, namespace, (REPO / "examples" / "rack-local-gang.yaml").read_text())
    wait(lambda: running(crane_pods(core_v1, namespace), 4), "4 gang pods Running", operator, 90)
    racks = {
        node_labels(core_v1, p.spec.node_name)["crane.io/rack"]
        for p in crane_pods(core_v1, namespace)
    }
    assert len(racks) == 1
    delete_all(custom, core_v1, namespace, operator)


# --- (e) invalid objects are rejected by the API server with the CEL message --------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (mc_yaml("bad", "H100", 8, 4), "gpus.min must be <= gpus.max"),
        (mc_yaml("bad", "H100;x", 1, 4), "gpuType must be a GPU product"),
        (mc_yaml("bad", "H100", 1, 4, extra=", topology: {level: pod}"), "unknown topology level"),
        (mc_yaml("bad", "H100", 1, 4, extra=", replicas: 2"), "spec.replicas needs spec.template"),
        (cargo_yaml("bad", "mc", 1, 65), "gpusPerReplica must be between 0 and 64"),
        (cargo_yaml("bad", "mc", -1, 1), "replicas must be between 0 and 10000"),
        (cargo_yaml("bad", "mc", 1, 1, policy="Always"), "unknown restartPolicy"),
        (mc_yaml("a" * 51, "H100", 1, 4), "a MiniCluster's name is at most 50"),
        (mc_yaml("a.b", "H100", 1, 4), "(no dots)"),
        (cargo_yaml("c" * 58, "mc", 1, 1), "a Cargo's name is at most 57"),
        (cargo_yaml("c.d", "mc", 1, 1), "(no dots)"),
    ],
)
def test_invalid_objects_are_rejected_with_what_to_fix(
    operator: OperatorProcess,
    kube_cluster: Any,
    namespace: str,
    text: str,
    message: str,
) -> None:
    proc = kube_cluster.kubectl("apply", "-n", namespace, "-f", "-", input=text, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_names_at_the_limits_are_accepted(
    operator: OperatorProcess, kube_cluster: Any, namespace: str
) -> None:
    """The longest names the API takes (50 for a MiniCluster; its template cargos add
    ``-<index>``, so 57 for a Cargo) still make valid pods, labels and Services."""
    apply(kube_cluster, namespace, mc_yaml("m" * 50, "H100", 0, 4))
    apply(kube_cluster, namespace, cargo_yaml("c" * 57, "m" * 50, 0, 1))
    kube_cluster.kubectl("delete", "-n", namespace, "cargos,miniclusters", "--all", "--wait=false")


def test_a_minicluster_keeps_its_gpu_type_and_a_cargo_its_gpus_per_replica(
    operator: OperatorProcess, kube_cluster: Any, namespace: str
) -> None:
    """``gpuType`` cannot change under a reservation: an operator restart used to rebuild the
    reservation on the new type while the cargos stayed on the old one (twice gpus.max). Nor
    can a cargo's ``gpusPerReplica`` under its placed replicas (it was accepted and ignored)."""
    apply(kube_cluster, namespace, mc_yaml("typed", "H100", 0, 4))
    proc = kube_cluster.kubectl(
        "patch", "mc/typed", "-n", namespace, "--type=merge", "-p", '{"spec":{"gpuType":"A100"}}',
        check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "gpuType is immutable" in proc.stderr, proc.stderr
    kept = kube_cluster.kubectl(
        "get", "mc/typed", "-n", namespace, "-o", "jsonpath={.spec.gpuType}"
    )
    assert kept.stdout == "H100"
    kube_cluster.kubectl("delete", "-n", namespace, "mc/typed", "--wait=false")


# --- (h) deleting a MiniCluster removes everything ---------------------------------------------


def test_deleting_minicluster_removes_cargos_pods_services(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("delh200", "NVIDIA-H200-141GB-HBM3", racks=1, per_rack=2)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("gone", "H200", 8, 16)
        + "---\n"
        + cargo_yaml("g1", "gone", 2, 4)
        + "---\n"
        + cargo_yaml("g2", "gone", 1, 8),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 3), "3 pods Running", operator)
    for plural, name in (("miniclusters", "gone"), ("cargos", "g1"), ("cargos", "g2")):
        obj = get(custom, plural, namespace, name) or {}
        assert obj["metadata"].get("finalizers") == ["crane.io/finalizer"], obj["metadata"]
    kube_cluster.kubectl("delete", "mc/gone", "-n", namespace, "--wait=true", "--timeout=60s")
    wait(lambda: not crane_pods(core_v1, namespace), "pods gone", operator)
    wait(
        lambda: (
            not custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "cargos")["items"]
        ),
        "cargos gone",
        operator,
    )
    wait(
        lambda: (
            not [
                s
                for s in core_v1.list_namespaced_service(namespace).items
                if (s.metadata.labels or {}).get("crane.io/minicluster") == "gone"
            ]
        ),
        "services gone",
        operator,
    )
    assert get(custom, "miniclusters", namespace, "gone") is None


# --- (b) kubectl scale in cargo units -----------------------------------------------------------


def test_kubectl_scale_grows_and_shrinks_in_cargo_units(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("scaleb200", "NVIDIA-B200", racks=1, per_rack=4)
    template = (
        ", replicas: 1, template: {replicas: 2, gpusPerReplica: 2, template: {spec: "
        "{terminationGracePeriodSeconds: 1, containers: [{name: main, image: busybox}]}}}"
    )
    apply(kube_cluster, namespace, mc_yaml("el", "B200", 4, 16, extra=template))
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "1 cargo of 2 pods", operator)
    kube_cluster.kubectl("scale", "mc/el", "-n", namespace, "--replicas=3")
    wait(lambda: running(crane_pods(core_v1, namespace), 6), "3 cargos of 2 pods", operator)
    cargos = {
        c["metadata"]["name"]
        for c in custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "cargos")["items"]
    }
    assert cargos == {"el-0", "el-1", "el-2"}
    # 5 cargos x 2 replicas x 2 GPUs = 20 > gpus.max 16: the API server refuses the scale
    over = kube_cluster.kubectl("scale", "mc/el", "-n", namespace, "--replicas=5", check=False)
    assert over.returncode != 0 and "exceeds spec.gpus.max" in over.stderr, over.stderr
    assert (get(custom, "miniclusters", namespace, "el") or {})["spec"]["replicas"] == 3
    kube_cluster.kubectl("scale", "mc/el", "-n", namespace, "--replicas=2")
    wait(lambda: running(crane_pods(core_v1, namespace), 4), "the highest cargo removed", operator)
    wait(lambda: get(custom, "cargos", namespace, "el-2") is None, "el-2 gone", operator)
    kube_cluster.kubectl("scale", "cg/el-0", "-n", namespace, "--replicas=3")
    wait(
        lambda: running(crane_pods(core_v1, namespace, "crane.io/cargo=el-0"), 3),
        "el-0 grown to 3",
        operator,
    )
    kube_cluster.kubectl("scale", "cg/el-0", "-n", namespace, "--replicas=1")
    wait(
        lambda: running(crane_pods(core_v1, namespace, "crane.io/cargo=el-0"), 1),
        "el-0 shrunk to 1",
        operator,
    )
    status = wait(
        lambda: (
            (get(custom, "miniclusters", namespace, "el") or {}).get("status", {}).get("replicas")
            == 2
        ),
        "status.replicas 2",
        operator,
    )
    assert status
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)


# --- (c) a MiniCluster whose min does not fit waits with the reason ----------------------------


def test_minicluster_queued_with_reason_until_capacity_frees(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("queuev100", "Tesla-V100-SXM2-32GB", racks=1, per_rack=2)
    apply(kube_cluster, namespace, mc_yaml("first", "V100", 12, 12))
    wait(
        lambda: (
            cond(get(custom, "miniclusters", namespace, "first"), "Admitted").get("status")
            == "True"
        ),
        "first admitted",
        operator,
    )
    apply(kube_cluster, namespace, mc_yaml("second", "V100", 8, 8))
    queued = wait(
        lambda: (
            (get(custom, "miniclusters", namespace, "second") or {})
            .get("status", {})
            .get("queuePosition")
        ),
        "second queued",
        operator,
    )
    assert queued >= 1  # the queue is cluster-wide: other tests' MiniClusters may wait too
    second = get(custom, "miniclusters", namespace, "second")
    assert second is not None
    assert cond(second, "Admitted")["reason"] == "Queued"
    assert "needs 8 V100" in second["status"]["message"]
    wide = kube_cluster.kubectl("get", "mc/second", "-n", namespace, "-o", "wide").stdout
    assert "needs 8 V100" in wide
    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "miniclusters", "first")
    wait(
        lambda: (
            cond(get(custom, "miniclusters", namespace, "second"), "Admitted").get("status")
            == "True"
        ),
        "second admitted once first is gone",
        operator,
    )
    delete_all(custom, core_v1, namespace, operator)


# --- (d) priority preemption of borrowed cargos, with notice -----------------------------------


def test_higher_priority_preempts_borrowed_cargos_with_notice(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("preempta30", "NVIDIA-A30", racks=1, per_rack=2)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("low", "A30", 0, 16)
        + "---\n"
        + cargo_yaml("b1", "low", 1, 8, grace=3)
        + "---\n"
        + cargo_yaml("b2", "low", 1, 8, grace=3),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "borrowers Running", operator)
    apply(kube_cluster, namespace, mc_yaml("high", "A30", 16, 16, priority=10))
    for name in ("b1", "b2"):
        wait(
            lambda name=name: (
                cond(get(custom, "cargos", namespace, name), "Preempted").get("status") == "True"
            ),
            f"{name} preempted",
            operator,
        )
    notice = cond(get(custom, "cargos", namespace, "b1"), "Preempted")
    assert "high" in notice["message"] and "grace period" in notice["message"]
    events = core_v1.list_namespaced_event(namespace).items
    assert any(e.reason == "Preempted" and e.involved_object.name in ("b1", "b2") for e in events)
    wait(
        lambda: (
            cond(get(custom, "miniclusters", namespace, "high"), "Admitted").get("status") == "True"
        ),
        "high admitted",
        operator,
    )
    assert not [
        p
        for p in crane_pods(core_v1, namespace)
        if p.status.phase == "Running" and not p.metadata.deletion_timestamp
    ]
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)


# --- (f) SIGKILL while placing 50 cargos ---------------------------------------------------------


def test_operator_killed_while_placing_50_cargos_places_each_once(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("killl4", "NVIDIA-L4", racks=2, per_rack=4)
    apply(kube_cluster, namespace, mc_yaml("many", "L4", 32, 64))
    text = "---\n".join(cargo_yaml(f"c{i}", "many", 1, 1) for i in range(50))
    apply(kube_cluster, namespace, text)
    wait(lambda: len(crane_pods(core_v1, namespace)) >= 5, "the first pods", operator)
    operator.kill()
    operator.start()
    wait(
        lambda: running(crane_pods(core_v1, namespace), 50),
        "50 pods Running after the restart",
        operator,
        120,
    )
    pods = crane_pods(core_v1, namespace)
    assert sorted(p.metadata.name for p in pods) == sorted(f"c{i}-0" for i in range(50))
    for i in range(50):
        placement = (get(custom, "cargos", namespace, f"c{i}") or {})["status"]["placement"]
        assert len(placement) == 1
        pod = next(p for p in pods if p.metadata.name == f"c{i}-0")
        assert pod.spec.node_name == placement[0]["node"]
    assert_no_gpu_double_booked(core_v1)
    delete_all(custom, core_v1, namespace, operator)


# --- (g) node NotReady past the grace period ----------------------------------------------------


def test_node_not_ready_moves_onfailure_cargo_and_fails_never_cargo(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    names = nodes("lostt4", "Tesla-T4", racks=1, per_rack=4, gpus=4)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("ft", "T4", 0, 16)
        + "---\n"
        + cargo_yaml("resilient", "ft", 1, 2, "OnFailure")
        + "---\n"
        + cargo_yaml("fragile", "ft", 1, 2, "Never"),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 2), "both cargos Running", operator)
    hosts = {p.spec.node_name for p in crane_pods(core_v1, namespace)}
    for host in hosts:
        core_v1.patch_node(host, {"metadata": {"annotations": {NOT_READY_ANNOTATION: "true"}}})
    wait(
        lambda: all(not ready for n in hosts for ready in [_ready(core_v1, n)]),
        f"kwok to turn {hosts} NotReady (hack/kwok/stages.yaml honours {NOT_READY_ANNOTATION})",
        operator,
        15,
    )
    wait(
        lambda: (
            (get(custom, "cargos", namespace, "fragile") or {}).get("status", {}).get("phase")
            == "Failed"
        ),
        "fragile failed",
        operator,
        60,
    )
    failed = cond(get(custom, "cargos", namespace, "fragile"), "Failed")
    assert failed["reason"] == "NodeLost" and "NotReady" in failed["message"]

    def resilient_moved() -> bool:
        pods = crane_pods(core_v1, namespace, "crane.io/cargo=resilient")
        return running(pods, 1) and pods[0].spec.node_name not in hosts

    wait(resilient_moved, "resilient placed again on a healthy node", operator, 60)
    assert (get(custom, "cargos", namespace, "resilient") or {})["status"]["restarts"] == 1
    assert set(names) - hosts
    delete_all(custom, core_v1, namespace, operator)


def test_a_node_deleted_under_a_running_gang_fails_it_as_a_lost_node(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    """``kubectl delete node`` under a running gang: the cargo fails ``NodeLost`` saying the node
    was deleted (not that someone deleted its pod), its pods go and its GPUs are free again."""
    nodes("gonel4", "NVIDIA-L4", racks=1, per_rack=2, gpus=4)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("gone", "L4", 0, 8) + "---\n" + cargo_yaml("victim", "gone", 1, 2, "Never"),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 1), "victim Running", operator)
    host = crane_pods(core_v1, namespace)[0].spec.node_name
    core_v1.delete_node(host)

    def failed() -> dict[str, Any]:
        c = cond(get(custom, "cargos", namespace, "victim"), "Failed")
        return c if c.get("status") == "True" else {}

    lost = wait(failed, "victim Failed", operator, 60)
    assert lost["reason"] == "NodeLost", lost
    assert lost["message"] == f"node {host} was deleted", lost
    wait(lambda: not crane_pods(core_v1, namespace), "victim's pod gone", operator, 60)
    status = (get(custom, "cargos", namespace, "victim") or {})["status"]
    assert status.get("placement") in (None, []), status
    delete_all(custom, core_v1, namespace, operator)


def _ready(core: client.CoreV1Api, name: str) -> bool:
    node = core.read_node_status(name)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


# --- ResourceQuota on requests.nvidia.com/gpu at admission; lowering max ------------------------


def test_gpu_quota_keeps_minicluster_queued_with_the_quota_named(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("quotal40s", "NVIDIA-L40S", racks=1, per_rack=3)
    core_v1.create_namespaced_resource_quota(
        namespace,
        client.V1ResourceQuota(
            metadata=client.V1ObjectMeta(name="gpus"),
            spec=client.V1ResourceQuotaSpec(hard={"requests.nvidia.com/gpu": "8"}),
        ),
    )
    apply(kube_cluster, namespace, mc_yaml("big", "L40S", 16, 16))
    message = wait(
        lambda: (
            (get(custom, "miniclusters", namespace, "big") or {}).get("status", {}).get("message")
        ),
        "big queued with a message",
        operator,
    )
    big = get(custom, "miniclusters", namespace, "big")
    assert cond(big, "Admitted")["status"] == "False"
    assert "quota" in message and "8" in message, message
    core_v1.patch_namespaced_resource_quota(
        "gpus", namespace, {"spec": {"hard": {"requests.nvidia.com/gpu": "16"}}}
    )
    wait(
        lambda: (
            cond(get(custom, "miniclusters", namespace, "big"), "Admitted").get("status") == "True"
        ),
        "big admitted once the quota allows 16",
        operator,
    )
    delete_all(custom, core_v1, namespace, operator)


def test_lowering_max_preempts_borrowed_cargos(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    nodes("maxa40", "NVIDIA-A40", racks=1, per_rack=3)
    apply(
        kube_cluster,
        namespace,
        mc_yaml("elastic", "A40", 8, 24)
        + "---\n"
        + cargo_yaml("own", "elastic", 1, 8)
        + "---\n"
        + cargo_yaml("extra1", "elastic", 1, 8)
        + "---\n"
        + cargo_yaml("extra2", "elastic", 1, 8),
    )
    wait(lambda: running(crane_pods(core_v1, namespace), 3), "3 cargos Running", operator)
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "miniclusters", "elastic", {"spec": {"gpus": {"max": 8}}}
    )

    def preempted() -> list[str]:
        return [
            name
            for name in ("own", "extra1", "extra2")
            if cond(get(custom, "cargos", namespace, name), "Preempted").get("status") == "True"
        ]

    victims = wait(lambda: len(preempted()) == 2 and preempted(), "2 cargos preempted", operator)
    (survivor,) = {"own", "extra1", "extra2"} - set(victims)
    notice = cond(get(custom, "cargos", namespace, victims[0]), "Preempted")
    assert "max of 8" in notice["message"], notice
    wait(
        lambda: (
            len([p for p in crane_pods(core_v1, namespace) if p.status.phase == "Running"]) == 1
        ),
        "one cargo left running",
        operator,
    )
    alive = [p for p in crane_pods(core_v1, namespace) if p.status.phase == "Running"]
    assert [p.metadata.labels["crane.io/cargo"] for p in alive] == [survivor]
    wait(
        lambda: (
            ((get(custom, "miniclusters", namespace, "elastic") or {}).get("status") or {}).get(
                "inUseGpus", 99
            )
            <= 8
        ),
        "the MiniCluster's status to show at most 8 GPUs in use",
        operator,
    )
    delete_all(custom, core_v1, namespace, operator)


def test_app_manager_without_api_flags_says_which_flags_to_set(
    operator: OperatorProcess,
    custom: client.CustomObjectsApi,
    core_v1: client.CoreV1Api,
    kube_cluster: Any,
    namespace: str,
) -> None:
    apply(
        kube_cluster,
        namespace,
        mc_yaml("am-noapi", "H100", 0, 8, extra=", appManager: {image: crane-am:test}"),
    )
    ready = wait(
        lambda: cond(get(custom, "miniclusters", namespace, "am-noapi"), "AppManagerReady"),
        "AppManagerReady",
        operator,
    )
    assert ready["status"] == "False" and ready["reason"] == "ApiNotConfigured", ready
    assert "--api-url" in ready["message"] and "--api-token" in ready["message"], ready
    assert crane_pods(core_v1, namespace, "crane.io/app-manager=true") == []


def test_request_larger_than_any_rack_is_unschedulable_and_does_not_block_a_small_one(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    """Issue 14: a MiniCluster needing 32 GPUs within one rack (racks hold 16) used to hold
    the queue's head, and a small one behind it waited; any product a node advertises
    (here NVIDIA-RTX-A6000, once refused as unknown) can be asked for."""
    nodes("racka6000", "NVIDIA-RTX-A6000", racks=1, per_rack=2)  # the rack holds 16
    apply(
        kube_cluster,
        namespace,
        mc_yaml("huge", "RTX-A6000", 32, 32, extra=", topology: {level: rack, mode: Required}"),
    )
    apply(kube_cluster, namespace, mc_yaml("small", "RTX-A6000", 8, 8))
    wait(
        lambda: (
            cond(get(custom, "miniclusters", namespace, "small"), "Admitted").get("status")
            == "True"
        ),
        "small admitted while huge can never fit",
        operator,
    )
    huge = wait(
        lambda: (
            (got := get(custom, "miniclusters", namespace, "huge")) is not None
            and cond(got, "Admitted").get("reason") == "Unschedulable"
            and got
        ),
        "huge Unschedulable",
        operator,
    )
    assert huge["status"].get("queuePosition") is None
    assert "the largest rack has 16 RTX-A6000 GPUs in all" in huge["status"]["message"]
    delete_all(custom, core_v1, namespace, operator)


def test_a_pod_the_api_server_refuses_fails_its_cargo_and_frees_its_gpus(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    """A template Crane and the CRD accept but the API server refuses as a pod (a container
    name with capitals) used to leave the cargo Placed, holding its GPUs for good and asking
    for the pod every 15 s, with the reason only in the operator's log."""
    nodes("refusedp100", "Tesla-P100-PCIE-16GB", racks=1, per_rack=1)
    apply(kube_cluster, namespace, mc_yaml("refused", "P100", 0, 8))
    bad = cargo_yaml("bad-name", "refused", 1, 8).replace("name: main", "name: Main_X")
    apply(kube_cluster, namespace, bad)
    failed = wait(
        lambda: (
            (got := get(custom, "cargos", namespace, "bad-name")) is not None
            and got.get("status", {}).get("phase") == "Failed"
            and got
        ),
        "the cargo with the refused pod Failed",
        operator,
    )
    assert cond(failed, "Failed").get("reason") == "InvalidSpec"
    assert "Main_X" in failed["status"]["message"] and "RFC 1123" in failed["status"]["message"]
    assert not failed["status"].get("placement"), "its GPUs are let go"
    wait(  # the event is written after the status the wait above saw
        lambda: any(
            e.type == "Warning" and "Main_X" in (e.message or "")
            for e in core_v1.list_namespaced_event(
                namespace, field_selector="involvedObject.name=bad-name"
            ).items
        ),
        "a Warning event naming Main_X",
        operator,
    )
    apply(kube_cluster, namespace, cargo_yaml("good-name", "refused", 1, 8))
    wait(
        lambda: running(crane_pods(core_v1, namespace, "crane.io/cargo=good-name"), 1),
        "the next cargo Running on the GPUs the refused one held",
        operator,
    )
    log = operator.log_path.read_text(errors="replace")
    assert log.count('Pod \\"bad-name-0\\" is invalid') == 1, "the pod was asked for once"
    delete_all(custom, core_v1, namespace, operator)
