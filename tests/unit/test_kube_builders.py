"""Pods, services and template cargos built from specs and placements."""

from __future__ import annotations

from typing import Any

import pytest

from crane.kube import app_manager, rendezvous
from crane.kube.builders import (
    InvalidTemplateError,
    build_pod,
    build_service,
    build_template_cargo,
    validate_template,
)
from crane.kube.dra import DraNode
from crane.kube.nodes import busy_ids, inventory, node_view, with_dra
from crane.model.podtemplate import NO_DEVICES
from crane.model.specs import (
    AppManager,
    CargoSpec,
    CargoTemplate,
    MiniClusterSpec,
    ReplicaPlacement,
)

META = {"name": "job", "namespace": "team", "uid": "u-1"}
SPEC = CargoSpec.model_validate(
    {
        "miniCluster": "mc",
        "replicas": 2,
        "gpusPerReplica": 4,
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {
                "containers": [
                    {
                        "name": "main",
                        "image": "img",
                        "env": [{"name": "KEEP", "value": "1"}],
                    }
                ],
                "tolerations": [{"key": "other", "operator": "Exists"}],
            },
        },
    }
)


def test_pod_runs_its_replica_on_its_node_with_its_gpus() -> None:
    pod = build_pod(META, SPEC, ReplicaPlacement(replica=1, node="n7", gpu_ids=[4, 5, 6, 7]))
    assert pod["metadata"]["name"] == "job-1"
    assert pod["metadata"]["labels"] == {
        "app": "x",
        "crane.io/minicluster": "mc",
        "crane.io/cargo": "job",
        "crane.io/replica": "1",
    }
    assert pod["metadata"]["annotations"]["crane.io/gpu-ids"] == "4,5,6,7"
    assert pod["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    spec = pod["spec"]
    assert spec["nodeName"] == "n7" and spec["subdomain"] == "mc" and spec["hostname"] == "job-1"
    assert {"key": "crane.io/managed", "operator": "Exists"} in spec["tolerations"]
    assert {"key": "other", "operator": "Exists"} in spec["tolerations"]
    main = spec["containers"][0]
    assert main["resources"]["limits"]["nvidia.com/gpu"] == "4"
    env = {e["name"]: e["value"] for e in main["env"]}
    assert env == {
        "CRANE_MINICLUSTER": "mc",
        "CRANE_CARGO": "job",
        "CRANE_REPLICA": "1",
        "RANK": "1",
        "CRANE_REPLICAS": "2",
        "WORLD_SIZE": "2",
        "MASTER_ADDR": "job-0.mc.team.svc",
        "MASTER_PORT": "29500",
        "CRANE_GPU_IDS": "4,5,6,7",
        "CRANE_NOTICE_FILE": "/crane/notice",
        "KEEP": "1",
    }


def test_one_headless_service_per_minicluster_selects_all_its_replicas() -> None:
    svc = build_service({"name": "mc", "namespace": "team", "uid": "m-1"})
    assert svc["metadata"]["name"] == "mc"
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["selector"] == {"crane.io/minicluster": "mc"}
    assert svc["spec"]["publishNotReadyAddresses"] is True
    owner = svc["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("MiniCluster", "m-1"), "gone with its MiniCluster"


def test_template_without_containers_says_what_to_fix() -> None:
    spec = CargoSpec.model_validate({"miniCluster": "mc"})
    with pytest.raises(InvalidTemplateError, match="at least one container"):
        validate_template(spec)


def test_template_cargo_is_owned_by_its_minicluster() -> None:
    body = build_template_cargo(
        {"name": "mc", "namespace": "t", "uid": "m"}, CargoTemplate(replicas=2), 3
    )
    assert body["metadata"]["name"] == "mc-3"
    assert body["spec"]["miniCluster"] == "mc" and body["spec"]["replicas"] == 2
    assert body["metadata"]["ownerReferences"][0]["kind"] == "MiniCluster"


def test_node_becomes_inventory_with_islands_and_topology_labels() -> None:
    node = {
        "metadata": {
            "name": "n1",
            "labels": {
                "crane.io/managed": "true",
                "crane.io/rack": "r1",
                "noise": "x",
                "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
            },
            "annotations": {"crane.io/gpu-islands": "0-3,4-7"},
        },
        "status": {
            "allocatable": {"nvidia.com/gpu": "8"},
            "conditions": [
                {"type": "Ready", "status": "False", "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ],
        },
    }
    view = node_view(node, ["crane.io/rack"])
    assert view.managed and not view.ready and view.not_ready_since is not None
    inv = inventory(view, busy_ids(8, {7}, 2))
    assert inv.islands == ((0, 1, 2, 3), (4, 5, 6, 7))
    assert inv.labels == {"crane.io/rack": "r1"}
    assert inv.busy_gpu_ids == frozenset({5, 6}), "foreign pods get GPUs Crane does not use"


def test_bad_islands_annotation_falls_back_to_one_island() -> None:
    node = {
        "metadata": {"name": "n", "annotations": {"crane.io/gpu-islands": "0-9"}},
        "status": {"capacity": {"nvidia.com/gpu": "4"}},
    }
    assert node_view(node, []).islands == ((0, 1, 2, 3),)


def _visible_devices(pod_spec: dict[str, Any]) -> list[str | None]:
    return [
        e.get("value")
        for c in pod_spec["containers"]
        for e in c.get("env") or []
        if e.get("name") == "NVIDIA_VISIBLE_DEVICES"
    ]


def test_the_rendezvous_store_sees_no_gpu_of_its_node() -> None:
    """It runs the template's (CUDA) image, which says NVIDIA_VISIBLE_DEVICES=all, and may run
    on a GPU node: the NVIDIA runtime would hand it every GPU there, other tenants' too."""
    spec = MiniClusterSpec.model_validate(
        {
            "gpuType": "H100",
            "gpus": {"min": 0, "max": 8},
            "template": {"template": {"spec": {"containers": [{"name": "m", "image": "cuda"}]}}},
            "rendezvous": {"enabled": True},
        }
    )
    deployment = rendezvous.build_deployment(META, spec)
    assert _visible_devices(deployment["spec"]["template"]["spec"]) == [NO_DEVICES]


def test_the_app_manager_sees_no_gpu_whatever_its_env_says() -> None:
    am = AppManager(image="cuda", env={"NVIDIA_VISIBLE_DEVICES": "all", "KEEP": "1"})
    pod = app_manager.build_pod(META, am, "http://crane")
    assert _visible_devices(pod["spec"]) == [NO_DEVICES]
    assert {"name": "KEEP", "value": "1"} in pod["spec"]["containers"][0]["env"]


@pytest.mark.parametrize("count", ["100000000", "65", "-5"])
def test_a_node_reporting_an_impossible_gpu_count_is_left_out_at_once(count: str) -> None:
    """A device plugin that reported ``nvidia.com/gpu: 100000000`` made the decision pass
    build a hundred million GPU ids for one node (23 s of CPU before anything was placed, every
    tenant waiting), and a negative count raised in the pass. Such a node is left out (no GPUs)
    with a warning."""
    node = {
        "metadata": {
            "name": "n",
            "labels": {"crane.io/managed": "true", "nvidia.com/gpu.product": "H100"},
        },
        "status": {"allocatable": {"nvidia.com/gpu": count}},
    }
    view = node_view(node, [])
    assert (view.gpu_count, view.islands) == (0, ())
    assert inventory(view).gpu_count == 0
    assert (
        node_view({**node, "status": {"allocatable": {"nvidia.com/gpu": "64"}}}, []).gpu_count == 64
    )


def test_a_dra_driver_publishing_more_gpus_than_a_node_has_leaves_it_out() -> None:
    node = {
        "metadata": {"name": "n", "labels": {"crane.io/managed": "true"}},
        "status": {"allocatable": {}},
    }
    many = DraNode("gpu.nvidia.com", "n", tuple(f"gpu-{i}" for i in range(65)), "H100", ())
    assert with_dra(node_view(node, []), many).gpu_count == 0
    eight = DraNode("gpu.nvidia.com", "n", tuple(f"gpu-{i}" for i in range(8)), "H100", ())
    assert with_dra(node_view(node, []), eight).gpu_count == 8
