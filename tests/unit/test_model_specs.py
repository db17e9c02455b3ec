from typing import Any

import pytest
from pydantic import ValidationError

from crane.model.specs import (
    AppManager,
    CargoPhase,
    CargoSpec,
    CargoStatus,
    GpuRange,
    MiniClusterSpec,
    MiniClusterStatus,
    ReplicaPlacement,
    RestartPolicy,
)
from crane.model.topology import TopologyMode


def mc(**spec: Any) -> MiniClusterSpec:
    return MiniClusterSpec.model_validate(
        {"gpuType": "H100", "gpus": {"min": 8, "max": 16}, **spec}
    )


def test_minicluster_camel_case_in_and_out() -> None:
    spec = mc(
        gpuType="h100",
        topology={"level": "rack", "mode": "Required"},
        template={
            "replicas": 2,
            "gpusPerReplica": 4,
            "restartPolicy": "OnFailure",
            "backoffLimit": 1,
        },
        replicas=2,
        appManager={"image": "am:1", "env": {"A": "b"}},
        priority=5,
    )
    assert spec.gpu_type == "H100"
    assert spec.topology.mode is TopologyMode.REQUIRED
    assert spec.template is not None
    assert spec.template.gpus_per_replica == 4
    assert spec.template.gpus == 8
    assert spec.template.restart_policy is RestartPolicy.ON_FAILURE
    assert spec.app_manager is not None and spec.app_manager.image == "am:1"
    wire = spec.model_dump(by_alias=True, mode="json", exclude_none=True)
    assert wire["gpuType"] == "H100"
    assert wire["gpus"] == {"min": 8, "max": 16}
    assert wire["topology"] == {"level": "rack", "mode": "Required"}
    assert wire["template"]["gpusPerReplica"] == 4
    assert wire["template"]["restartPolicy"] == "OnFailure"
    assert wire["template"]["backoffLimit"] == 1
    assert wire["appManager"]["env"] == {"A": "b"}
    assert "gpu_type" not in wire and "app_manager" not in wire
    assert MiniClusterSpec.model_validate(wire) == spec


def test_python_names_are_accepted_too() -> None:
    spec = MiniClusterSpec(gpu_type="A100", gpus=GpuRange(min=0, max=4))
    assert spec.gpu_type == "A100"
    assert spec.topology.level == "node"
    assert spec.replicas is None and spec.template is None


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValidationError, match="gpu_count"):
        mc(gpu_count=3)


def test_min_above_max_names_both_and_the_fix() -> None:
    with pytest.raises(ValidationError) as err:
        mc(gpus={"min": 9, "max": 4})
    message = str(err.value)
    assert "gpus.min (9) must be <= gpus.max (4)" in message
    assert "raise max or lower min" in message


def test_negative_gpus_refused() -> None:
    with pytest.raises(ValidationError, match="min"):
        GpuRange(min=-1, max=4)


def test_replicas_without_template() -> None:
    with pytest.raises(ValidationError, match=r"replicas needs a template: add spec\.template"):
        mc(replicas=2)
    assert mc(replicas=0).replicas == 0


def test_replicas_times_template_above_max() -> None:
    with pytest.raises(ValidationError) as err:
        mc(template={"replicas": 2, "gpusPerReplica": 4}, replicas=3)
    message = str(err.value)
    assert "replicas x template GPUs = 24 exceeds gpus.max (16)" in message
    assert "raise gpus.max or lower replicas" in message
    assert mc(template={"replicas": 2, "gpusPerReplica": 4}, replicas=2).replicas == 2


def test_unknown_topology_alias_names_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        mc(topology={"level": "pod"})
    message = str(err.value)
    assert "topology.level" in message
    assert "use one of zone, block, rack, nvlink, node" in message


def test_unknown_gpu_type_names_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        mc(gpuType="H100;rm")
    assert "gpuType" in str(err.value)
    assert "nvidia.com/gpu.product" in str(err.value)


def test_cargo_wire_aliases() -> None:
    cargo = CargoSpec.model_validate(
        {
            "miniCluster": "train",
            "replicas": 4,
            "gpusPerReplica": 8,
            "topology": {"level": "block", "mode": "Required"},
            "restartPolicy": "OnFailure",
        }
    )
    assert (cargo.mini_cluster, cargo.gpus) == ("train", 32)
    assert cargo.restart_policy is RestartPolicy.ON_FAILURE
    wire = cargo.model_dump(by_alias=True, mode="json")
    assert wire["miniCluster"] == "train"
    assert wire["gpusPerReplica"] == 8
    assert wire["backoffLimit"] == 3
    with pytest.raises(ValidationError, match="miniCluster"):
        CargoSpec.model_validate({"miniCluster": ""})
    with pytest.raises(ValidationError, match="gpusPerReplica"):
        CargoSpec.model_validate({"miniCluster": "x", "gpusPerReplica": -1})


def test_statuses_on_the_wire() -> None:
    status = CargoStatus(
        phase=CargoPhase.PLACED,
        placement=[ReplicaPlacement(replica=0, node="n1", gpu_ids=[0, 1], borrowed=True)],
    )
    wire = status.model_dump(by_alias=True, mode="json")
    assert wire["phase"] == "Placed"
    assert wire["placement"] == [{"replica": 0, "node": "n1", "gpuIds": [0, 1], "borrowed": True}]
    assert wire["placedAt"] is None
    mcs = MiniClusterStatus.model_validate(
        {"reservedGpus": 8, "queuePosition": 2, "reservation": {"n1": [0, 1]}}
    )
    assert (mcs.reserved_gpus, mcs.queue_position, mcs.reservation) == (8, 2, {"n1": [0, 1]})


@pytest.mark.parametrize("name", ["A=B", "", "T\u00e4g", "NVIDIA_VISIBLE_DEVICES=all"])
def test_an_app_manager_env_name_kubernetes_refuses_is_refused_here(name: str) -> None:
    """Else the MiniCluster is stored and its app manager's pod is refused later."""
    with pytest.raises(ValidationError, match="env name"):
        AppManager(image="busybox", env={name: "x"})
    assert AppManager(image="busybox", env={"RANK_HINT.x-y z": "x"}).env
