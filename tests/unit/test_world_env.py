"""One elastic world per MiniCluster: the env every replica gets, the same on both backends."""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from crane.docker import labels as L
from crane.docker.containers import ReplicaSpec, container_template, write_notice
from crane.kube import rendezvous
from crane.kube.builders import build_pod, rendezvous_host
from crane.model.podsecurity import PodSecurityLevel, violations
from crane.model.podtemplate import CRANE_ENV
from crane.model.specs import CargoSpec, MiniClusterSpec, ReplicaPlacement
from crane.model.world import node_bounds, notice_text, world_env

TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "trainer:1"}]}}


def mc_spec(
    gpus: tuple[int, int] = (8, 24), replicas: int = 2, gpus_per_replica: int = 4, **extra: Any
) -> MiniClusterSpec:
    return MiniClusterSpec.model_validate(
        {
            "gpuType": "H100",
            "gpus": {"min": gpus[0], "max": gpus[1]},
            "template": {
                "replicas": replicas,
                "gpusPerReplica": gpus_per_replica,
                "template": TEMPLATE,
            },
            "replicas": 1,
            "rendezvous": {"enabled": True},
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("gpus", "replicas", "per_replica", "bounds"),
    [
        ((8, 24), 2, 4, (2, 6)),  # cargos of 8 GPUs: 1 to 3 cargos of 2 nodes
        ((16, 24), 1, 8, (1, 3)),  # whole cargos only: 24 // 8 = 3; min one cargo, not 16 // 8
        ((32, 32), 2, 4, (2, 8)),  # a shrink under gpus.min leaves a world that forms
        ((0, 20), 2, 4, (2, 4)),  # min 0 still needs one cargo; 20 // 8 = 2 cargos
        ((4, 8), 2, 0, (2, 2)),  # GPU-less template: up to spec.replicas cargos
    ],
)
def test_nodes_are_replicas_of_whole_template_cargos(
    gpus: tuple[int, int], replicas: int, per_replica: int, bounds: tuple[int, int]
) -> None:
    assert node_bounds(mc_spec(gpus, replicas, per_replica)) == bounds


def test_world_env_names_the_minicluster_store_and_bounds() -> None:
    assert world_env("uid-7", mc_spec(), "llm-rdzv.team.svc") == {
        "CRANE_RDZV_ENDPOINT": "llm-rdzv.team.svc:29400",
        "CRANE_RDZV_ID": "uid-7",
        "CRANE_RDZV_BACKEND": "c10d",
        "CRANE_NNODES": "2:6",
        "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1",
    }


def test_no_world_unless_asked() -> None:
    spec = mc_spec(rendezvous={"enabled": False})
    assert world_env("uid-7", spec, "h") == {}
    assert world_env("uid-7", spec.model_copy(update={"rendezvous": None}), "h") == {}


def test_rendezvous_needs_a_template_and_a_port_in_range() -> None:
    with pytest.raises(ValidationError, match="rendezvous needs a template"):
        MiniClusterSpec.model_validate(
            {"gpuType": "H100", "gpus": {"min": 1, "max": 2}, "rendezvous": {"enabled": True}}
        )
    with pytest.raises(ValidationError, match="port"):
        mc_spec(rendezvous={"enabled": True, "port": 70000})


def kube_env(cargo: str, replica: int, spec: MiniClusterSpec) -> dict[str, str]:
    cargo_spec = CargoSpec(
        mini_cluster="llm", replicas=2, gpus_per_replica=4, template=dict(TEMPLATE)
    )
    world = world_env("uid-7", spec, rendezvous_host("team", "llm"))
    pod = build_pod(
        {"name": cargo, "namespace": "team", "uid": f"{cargo}-uid"},
        cargo_spec,
        ReplicaPlacement(replica=replica, node="n1", gpu_ids=[0, 1, 2, 3]),
        world,
    )
    return {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}


def docker_env(cargo: str, replica: int, spec: MiniClusterSpec) -> dict[str, str]:
    return ReplicaSpec(
        tenant="team",
        minicluster="llm",
        minicluster_uid="uid-7",
        cargo=cargo,
        cargo_uid=f"{cargo}-uid",
        replica=replica,
        replicas=2,
        gpu_ids=(0, 1, 2, 3),
        simulated=False,
        template=container_template(TEMPLATE),
        restart_policy="Never",
        world=world_env("uid-7", spec, "llm-rdzv"),
    ).env()


def test_every_replica_of_every_cargo_joins_one_world_on_both_backends() -> None:
    spec = mc_spec()
    worlds = {
        (backend, cargo, replica): env(cargo, replica, spec)
        for backend, env in (("kube", kube_env), ("docker", docker_env))
        for cargo in ("llm-0", "llm-1")
        for replica in (0, 1)
    }
    rdzv = {"CRANE_RDZV_ID", "CRANE_RDZV_BACKEND", "CRANE_NNODES", "CRANE_NOTICE_FILE"}
    for env in worlds.values():
        assert {k: env[k] for k in rdzv} == {
            "CRANE_RDZV_ID": "uid-7",
            "CRANE_RDZV_BACKEND": "c10d",
            "CRANE_NNODES": "2:6",
            "CRANE_NOTICE_FILE": "/crane/notice",
        }
    # the endpoint is one per backend: the Service's DNS name, or the network alias
    assert {e["CRANE_RDZV_ENDPOINT"] for k, e in worlds.items() if k[0] == "kube"} == {
        "llm-rdzv.team.svc:29400"
    }
    assert {e["CRANE_RDZV_ENDPOINT"] for k, e in worlds.items() if k[0] == "docker"} == {
        "llm-rdzv:29400"
    }
    # the gang-local world stays per cargo, and both backends give the same variables
    for cargo in ("llm-0", "llm-1"):
        kube, docker = worlds[("kube", cargo, 1)], worlds[("docker", cargo, 1)]
        # on Kubernetes the device plugin, not the pod spec, sets NVIDIA_VISIBLE_DEVICES
        assert set(docker) - set(kube) == {"CRANE_TENANT", "NVIDIA_VISIBLE_DEVICES"}
        same = set(kube) - {"MASTER_ADDR", "CRANE_RDZV_ENDPOINT"}
        assert {k: kube[k] for k in same} == {k: docker[k] for k in same}
        assert kube["WORLD_SIZE"] == "2" and kube["RANK"] == "1"
        assert kube["MASTER_ADDR"] == f"{cargo}-0.llm.team.svc"
        assert docker["MASTER_ADDR"] == L.replica_alias(cargo, 0)


def test_a_template_may_not_set_a_variable_crane_sets() -> None:
    """``RANK``, ``MASTER_ADDR``, ``CRANE_RDZV_ENDPOINT``... in a template were stored and then
    replaced by Crane's value without a word (a tenant pointing ``CRANE_RDZV_ENDPOINT`` at another
    MiniCluster's store saw its own instead, a user setting ``MASTER_PORT`` got 29500): refused,
    naming the variable, in a MiniCluster's template and in a cargo's, on both backends (the
    specs are shared)."""
    for name in ("CRANE_RDZV_ENDPOINT", "CRANE_RDZV_ID", "MASTER_ADDR", "RANK", "CRANE_NNODES"):
        template = {"spec": {"containers": [{"name": "m", "image": "t", "env": [{"name": name}]}]}}
        with pytest.raises(ValidationError, match=f"env\\[0\\]: {name} is Crane's"):
            CargoSpec.model_validate({"miniCluster": "llm", "template": template})
        with pytest.raises(ValidationError, match=f"{name} is Crane's"):
            mc_spec(template={"replicas": 1, "gpusPerReplica": 4, "template": template})
    port = {"spec": {"containers": [{"name": "m", "image": "t", "env": [{"name": "MASTER_PORT"}]}]}}
    with pytest.raises(ValidationError, match=r"crane\.io/master-port"):
        CargoSpec.model_validate({"miniCluster": "llm", "template": port})
    # a name of the user's own, even one that starts with CRANE_, is the user's
    mine = {
        "spec": {
            "containers": [
                {"name": "m", "image": "t", "env": [{"name": "CRANE_CHECKPOINT", "value": "/c"}]}
            ]
        }
    }
    CargoSpec.model_validate({"miniCluster": "llm", "template": mine})


def test_the_refused_names_are_every_variable_crane_sets() -> None:
    spec = mc_spec()
    kube, docker = kube_env("llm-0", 1, spec), docker_env("llm-0", 1, spec)
    # NVIDIA_VISIBLE_DEVICES has its own refusal (it hands out GPUs)
    assert (set(kube) | set(docker)) - {"NVIDIA_VISIBLE_DEVICES"} == CRANE_ENV


def test_pods_see_their_notice_annotation_as_a_file() -> None:
    pod = build_pod(
        {"name": "llm-0", "namespace": "team", "uid": "u"},
        CargoSpec(mini_cluster="llm", template=dict(TEMPLATE)),
        ReplicaPlacement(replica=0, node="n1", gpu_ids=[0]),
    )
    [volume] = pod["spec"]["volumes"]
    assert volume["downwardAPI"]["items"] == [
        {"path": "notice", "fieldRef": {"fieldPath": "metadata.annotations['crane.io/notice']"}}
    ]
    assert pod["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "crane-notice", "mountPath": "/crane", "readOnly": True}
    ]
    assert violations(pod, PodSecurityLevel.RESTRICTED) == violations(
        {"spec": {"containers": [{"name": "main", "image": "trainer:1"}]}},
        PodSecurityLevel.RESTRICTED,
    )


def test_notice_says_why_and_until_when() -> None:
    text = notice_text("Preempted", "make room", datetime(2026, 1, 1, 12, 0, tzinfo=UTC), 45)
    assert text.endswith("\n")
    assert json.loads(text) == {
        "reason": "Preempted",
        "message": "make room",
        "deadline": "2026-01-01T12:00:45+00:00",
    }


def test_docker_notice_is_a_file_in_the_container() -> None:
    class Container:
        def __init__(self) -> None:
            self.uploads: list[tuple[str, bytes]] = []

        def put_archive(self, path: str, data: bytes) -> bool:
            self.uploads.append((path, data))
            return True

    box = Container()
    write_notice(box, "hello\n")  # type: ignore[arg-type]
    [(path, data)] = box.uploads
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.extractfile("crane/notice")
        assert path == "/" and member is not None and member.read() == b"hello\n"


def test_kube_store_is_a_restricted_gpu_less_deployment_and_a_service() -> None:
    meta = {"name": "llm", "namespace": "team", "uid": "uid-7"}
    spec = mc_spec(rendezvous={"enabled": True, "port": 29411})
    deployment = rendezvous.build_deployment(meta, spec)
    service = rendezvous.build_service(meta, spec)
    assert deployment["metadata"]["name"] == service["metadata"]["name"] == "llm-rdzv"
    for obj in (deployment, service):
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-7"
        assert obj["metadata"]["labels"]["crane.io/minicluster"] == "llm"
    pod = deployment["spec"]["template"]
    assert violations(pod, PodSecurityLevel.RESTRICTED) == []
    [container] = pod["spec"]["containers"]
    assert container["image"] == "trainer:1"
    assert "TCPStore('0.0.0.0', 29411" in container["command"][2]
    assert "nvidia.com/gpu" not in json.dumps(container)
    assert "nodeName" not in pod["spec"]
    # any node will do (it asks for no GPU), nodes without GPUs first
    assert pod["spec"]["tolerations"] == [{"key": "crane.io/managed", "operator": "Exists"}]
    [pref] = pod["spec"]["affinity"]["nodeAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert pref["preference"]["matchExpressions"] == [
        {"key": "crane.io/managed", "operator": "DoesNotExist"}
    ]
    assert service["spec"]["ports"][0]["port"] == 29411
    assert service["spec"]["selector"] == {"crane.io/rendezvous": "llm"}
    assert pod["metadata"]["labels"]["crane.io/rendezvous"] == "llm"
