import pytest
from pydantic import ValidationError

from crane.model.fleet import FleetSpec, NodeGroup, expand, expand_group

H100 = "NVIDIA-H100-80GB-HBM3"


def test_expansion_counts_and_names() -> None:
    spec = FleetSpec.model_validate(
        {
            "groups": [
                {
                    "name": "h100",
                    "product": H100,
                    "gpusPerNode": 8,
                    "islands": "0-3,4-7",
                    "zones": 2,
                    "blocksPerZone": 2,
                    "racksPerBlock": 3,
                    "nodesPerRack": 4,
                },
                {"name": "a100", "product": "NVIDIA-A100-SXM4-80GB", "gpusPerNode": 4},
            ]
        }
    )
    assert spec.node_count == 2 * 2 * 3 * 4 + 1
    assert spec.gpu_count == 48 * 8 + 4
    nodes = expand(spec)
    assert len(nodes) == 49
    assert len({n.name for n in nodes}) == 49
    assert nodes[0].name == "h100-z0-b0-r0-n0"
    assert nodes[47].name == "h100-z1-b1-r2-n3"
    assert nodes[48].name == "a100-z0-b0-r0-n0"
    assert nodes[0].islands == ((0, 1, 2, 3), (4, 5, 6, 7))
    assert nodes[48].islands == ((0, 1, 2, 3),)
    assert {n.gpu_count for n in nodes[:48]} == {8}


def test_expansion_labels() -> None:
    group = NodeGroup(
        name="h100",
        product=H100,
        zones=2,
        racks_per_block=2,
        nodes_per_rack=2,
        labels={"team": "ml"},
    )
    node = expand_group(group)[-1][0]
    assert node.name == "h100-z1-b0-r1-n1"
    assert node.labels == {
        "topology.kubernetes.io/zone": "zone-1",
        "crane.io/block": "h100-z1-b0",
        "crane.io/rack": "h100-z1-b0-r1",
        "kubernetes.io/hostname": "h100-z1-b0-r1-n1",
        "team": "ml",
    }
    assert node.gpu_product == H100


def test_cliques_group_nodes_of_a_rack() -> None:
    group = NodeGroup(
        name="gb", product="NVIDIA-GB200", nodes_per_rack=4, nodes_per_clique=2, islands="0-3,4-7"
    )
    expanded = expand_group(group)
    cliques = [n.labels["nvidia.com/gpu.clique"] for n, _ in expanded]
    assert cliques == ["gb-z0-b0-r0-c0", "gb-z0-b0-r0-c0", "gb-z0-b0-r0-c1", "gb-z0-b0-r0-c1"]
    assert expanded[0][1] == {"crane.io/gpu-islands": "0-3,4-7"}
    plain = expand_group(NodeGroup(name="p", product=H100))
    assert "nvidia.com/gpu.clique" not in plain[0][0].labels
    assert plain[0][1] == {}


def test_group_validation_messages() -> None:
    with pytest.raises(ValidationError, match="unknown GPU product '--'"):
        NodeGroup(name="q", product="--")
    assert NodeGroup(name="q", product="Quadro").product == "Quadro"
    with pytest.raises(ValidationError, match="name"):
        NodeGroup(name="Bad_Name", product=H100)
    with pytest.raises(ValidationError, match=r"must cover GPU ids 0..7 exactly once \(missing"):
        NodeGroup(name="h", product=H100, islands="0-3")
    with pytest.raises(ValidationError, match="groups"):
        FleetSpec(groups=[])
