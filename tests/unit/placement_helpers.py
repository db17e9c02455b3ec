"""Small clusters for the placement tests."""

from __future__ import annotations

from crane.model.fleet import FleetSpec, NodeGroup, expand
from crane.model.inventory import NodeInventory
from crane.model.topology import TopologyMode, TopologySpec
from crane.placement import CargoRequest, Engine, MiniClusterRequest

H100 = "NVIDIA-H100-80GB-HBM3"


def cluster(racks: int = 2, nodes_per_rack: int = 4, blocks: int = 1) -> Engine:
    """One zone of H100 nodes (8 GPUs, islands 0-3,4-7)."""
    engine = Engine()
    group = NodeGroup(
        name="h100",
        product=H100,
        islands="0-3,4-7",
        blocks_per_zone=blocks,
        racks_per_block=racks,
        nodes_per_rack=nodes_per_rack,
    )
    for node in expand(FleetSpec(groups=[group])):
        engine.upsert_node(node)
    return engine


def two_nodes(gpus: int = 4) -> Engine:
    """An engine with nodes n0 (rack r0) and n1 (rack r1) of ``gpus`` GPUs each."""
    engine = Engine()
    for name, rack in (("n0", "r0"), ("n1", "r1")):
        engine.upsert_node(node(name, rack, gpus=gpus))
    return engine


def node(name: str, rack: str, gpus: int = 8, **kw: object) -> NodeInventory:
    return NodeInventory(
        name=name,
        gpu_product=H100,
        gpu_count=gpus,
        labels={"crane.io/rack": rack, "crane.io/block": "b0"},
        **kw,  # type: ignore[arg-type]
    )


def topo(level: str, required: bool = True) -> TopologySpec:
    mode = TopologyMode.REQUIRED if required else TopologyMode.PREFERRED
    return TopologySpec(level=level, mode=mode)


def mc(key: str, min_gpus: int, max_gpus: int, **kw: object) -> MiniClusterRequest:
    return MiniClusterRequest(key=key, gpu_type="H100", min_gpus=min_gpus, max_gpus=max_gpus, **kw)  # type: ignore[arg-type]


def cargo(key: str, minicluster: str, replicas: int, gpus: int, **kw: object) -> CargoRequest:
    return CargoRequest(
        key=key, minicluster=minicluster, replicas=replicas, gpus_per_replica=gpus, **kw
    )  # type: ignore[arg-type]


def rack_of(engine: Engine, node_name: str) -> str:
    return node_name.rsplit("-", 1)[0]
