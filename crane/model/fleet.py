"""A compact description of a GPU fleet and its expansion into node inventories.

Used by the kwok node generator (``crane.kube.fleet``) and by the benchmarks, so tests,
demos and measurements describe clusters the same way. Example (YAML)::

    groups:
      - name: h100
        product: NVIDIA-H100-80GB-HBM3
        gpusPerNode: 8
        islands: "0-3,4-7"
        zones: 2
        blocksPerZone: 4
        racksPerBlock: 8
        nodesPerRack: 4
        nodesPerClique: 2
      - name: a100
        dra: true       # GPUs in ResourceSlices (DRA driver), not nvidia.com/gpu
        product: NVIDIA-A100-SXM4-80GB
        gpusPerNode: 4
        nodesPerRack: 16
    workers: 1      # an untainted node without GPUs, for pods kube-scheduler places
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from crane.model.gpu import is_product_name
from crane.model.inventory import ISLANDS_ANNOTATION, MAX_NODE_GPUS, NodeInventory, parse_islands
from crane.model.topology import DEFAULT_LEVEL_KEYS


class NodeGroup(BaseModel):
    """Identical nodes laid out as zones x blocks x racks x nodes, optionally in NVLink cliques."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
    product: str
    gpus_per_node: int = Field(default=8, ge=0, le=MAX_NODE_GPUS)
    memory_mib: int = Field(default=81559, ge=0)
    islands: str = ""
    zones: int = Field(default=1, ge=1)
    blocks_per_zone: int = Field(default=1, ge=1)
    racks_per_block: int = Field(default=1, ge=1)
    nodes_per_rack: int = Field(default=1, ge=1)
    nodes_per_clique: int = Field(default=0, ge=0, description="0: no nvidia.com/gpu.clique label")
    labels: dict[str, str] = Field(default_factory=dict)
    dra: bool = False
    """The nodes' GPUs are published in ResourceSlices, as NVIDIA's DRA driver for GPUs does
    (no ``nvidia.com/gpu`` capacity); otherwise through the device plugin's capacity."""

    @field_validator("product")
    @classmethod
    def _known_product(cls, value: str) -> str:
        if not is_product_name(value):
            raise ValueError(
                f"unknown GPU product {value!r}: use a GFD name like NVIDIA-H100-80GB-HBM3"
            )
        return value

    @model_validator(mode="after")
    def _islands_cover_gpus(self) -> NodeGroup:
        parse_islands(self.islands, self.gpus_per_node)
        return self

    @property
    def node_count(self) -> int:
        """How many nodes the group has: zones x blocks x racks x nodes per rack."""
        return self.zones * self.blocks_per_zone * self.racks_per_block * self.nodes_per_rack


class FleetSpec(BaseModel):
    """A fleet: groups of GPU nodes, plus worker nodes without GPUs."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    groups: list[NodeGroup] = Field(min_length=1)
    workers: int = Field(default=0, ge=0)
    """Untainted nodes without GPUs (``worker-<i>``), where kube-scheduler places pods that are
    not Crane's, such as app managers."""

    @property
    def node_count(self) -> int:
        """How many GPU nodes the groups have (workers not counted)."""
        return sum(g.node_count for g in self.groups)

    @property
    def gpu_count(self) -> int:
        """How many GPUs the fleet has in all."""
        return sum(g.node_count * g.gpus_per_node for g in self.groups)


def expand_group(group: NodeGroup) -> list[tuple[NodeInventory, dict[str, str]]]:
    """Each node of a group with its annotations (``crane.io/gpu-islands``)."""
    islands = parse_islands(group.islands, group.gpus_per_node)
    keys = DEFAULT_LEVEL_KEYS
    out: list[tuple[NodeInventory, dict[str, str]]] = []
    for z in range(group.zones):
        for b in range(group.blocks_per_zone):
            for r in range(group.racks_per_block):
                for n in range(group.nodes_per_rack):
                    name = f"{group.name}-z{z}-b{b}-r{r}-n{n}"
                    labels = {
                        keys["zone"]: f"zone-{z}",
                        keys["block"]: f"{group.name}-z{z}-b{b}",
                        keys["rack"]: f"{group.name}-z{z}-b{b}-r{r}",
                        keys["node"]: name,
                        **group.labels,
                    }
                    if group.nodes_per_clique:
                        clique = n // group.nodes_per_clique
                        labels[keys["nvlink"]] = f"{group.name}-z{z}-b{b}-r{r}-c{clique}"
                    node = NodeInventory(
                        name=name,
                        gpu_product=group.product,
                        gpu_count=group.gpus_per_node,
                        islands=islands,
                        labels=labels,
                    )
                    out.append((node, {ISLANDS_ANNOTATION: group.islands} if group.islands else {}))
    return out


def expand(spec: FleetSpec) -> list[NodeInventory]:
    """Every node of the fleet, in a stable order."""
    return [node for group in spec.groups for node, _ in expand_group(group)]
