"""The kwok GPU node generator (crane.kube.fleet) and the fleet specs shipped in hack/fleets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from crane.kube.fleet import fleet_manifests, load_spec, main, node_resources
from crane.model.fleet import expand
from crane.model.inventory import parse_islands

FLEETS = Path(__file__).resolve().parents[2] / "hack" / "fleets"


def by_name(spec_file: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in fleet_manifests(load_spec(FLEETS / spec_file))}


def test_small_fleet_has_four_h100_and_two_a100_nodes_and_a_worker() -> None:
    nodes = by_name("small.yaml")
    products = sorted(
        n["metadata"]["labels"].get("nvidia.com/gpu.product", "-") for n in nodes.values()
    )
    assert products == ["-"] + ["NVIDIA-A100-SXM4-80GB"] * 2 + ["NVIDIA-H100-80GB-HBM3"] * 4
    racks = {
        n["metadata"]["labels"]["crane.io/rack"]
        for n in nodes.values()
        if n["metadata"]["name"].startswith("h100")
    }
    assert racks == {"h100-z0-b0-r0", "h100-z0-b0-r1"}


def test_h100_node_is_a_kwok_gpu_node_with_topology_and_islands() -> None:
    node = by_name("small.yaml")["h100-z0-b0-r1-n0"]
    meta, spec, status = node["metadata"], node["spec"], node["status"]
    assert node["kind"] == "Node"
    assert meta["annotations"] == {"kwok.x-k8s.io/node": "fake", "crane.io/gpu-islands": "0-3,4-7"}
    assert meta["labels"] == {
        "topology.kubernetes.io/zone": "zone-0",
        "crane.io/block": "h100-z0-b0",
        "crane.io/rack": "h100-z0-b0-r1",
        "kubernetes.io/hostname": "h100-z0-b0-r1-n0",
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.memory": "81559",
        "crane.io/managed": "true",
    }
    assert spec["taints"] == [{"key": "crane.io/managed", "value": "true", "effect": "NoSchedule"}]
    assert status["capacity"] == status["allocatable"]
    assert status["capacity"]["nvidia.com/gpu"] == "8"
    assert set(status["capacity"]) == {"cpu", "memory", "pods", "nvidia.com/gpu"}


def test_worker_is_an_untainted_kwok_node_without_gpus() -> None:
    node = by_name("small.yaml")["worker-0"]
    assert node["metadata"]["annotations"] == {"kwok.x-k8s.io/node": "fake"}
    assert "crane.io/managed" not in node["metadata"]["labels"]
    assert node["spec"]["taints"] == []
    assert set(node["status"]["capacity"]) == {"cpu", "memory", "pods"}


def test_node_without_islands_has_no_islands_annotation() -> None:
    node = by_name("small.yaml")["a100-z0-b0-r0-n1"]
    assert "crane.io/gpu-islands" not in node["metadata"]["annotations"]
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "4"


def test_manifests_follow_the_model_expansion() -> None:
    spec = load_spec(FLEETS / "medium.yaml")
    manifests = fleet_manifests(spec)
    inventory = expand(spec)
    assert [m["metadata"]["name"] for m in manifests] == [n.name for n in inventory]
    for m, n in zip(manifests, inventory, strict=True):
        labels = m["metadata"]["labels"]
        assert labels.items() >= n.labels.items()
        assert int(m["status"]["capacity"]["nvidia.com/gpu"]) == n.gpu_count
        islands = m["metadata"]["annotations"].get("crane.io/gpu-islands", "")
        assert parse_islands(islands, n.gpu_count) == n.islands
    cliques = {m["metadata"]["labels"].get("nvidia.com/gpu.clique") for m in manifests}
    assert "h100-z1-b1-r3-c1" in cliques


def test_bench_fleet_is_a_thousand_nodes_of_eight_gpus() -> None:
    spec = load_spec(FLEETS / "bench-1000.yaml")
    manifests = fleet_manifests(spec)
    assert len(manifests) == 1000 == len({m["metadata"]["name"] for m in manifests})
    assert {m["status"]["capacity"]["nvidia.com/gpu"] for m in manifests} == {"8"}
    products = {m["metadata"]["labels"]["nvidia.com/gpu.product"] for m in manifests}
    assert len(products) >= 3
    assert spec.gpu_count == 8000


def test_resources_scale_with_gpus() -> None:
    assert node_resources(8) == {
        "cpu": "128",
        "memory": "2048Gi",
        "pods": "110",
        "nvidia.com/gpu": "8",
    }
    assert node_resources(0)["cpu"] == "16"


def test_repeated_group_names_are_refused(tmp_path: Path) -> None:
    group = {"name": "h100", "product": "NVIDIA-H100-80GB-HBM3"}
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"groups": [group, group]}))
    with pytest.raises(ValueError, match="group names repeat"):
        load_spec(path)


def test_unknown_product_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "product": "--"}]}))
    with pytest.raises(ValueError, match=r"fleet\.yaml.*unknown GPU product"):
        load_spec(path)


def test_cli_prints_the_nodes_as_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(FLEETS / "small.yaml")]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert len(docs) == 7
    assert all(d["kind"] == "Node" for d in docs)


def test_cli_reports_a_bad_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
