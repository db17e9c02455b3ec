"""Types shared by every part of Crane. Imports nothing of Kubernetes, Docker, FastAPI or SQL."""

from crane.model.conditions import Condition, ConditionStatus, find_condition, set_condition
from crane.model.gpu import (
    VENDOR_TOKENS,
    UnknownGpuTypeError,
    describe_products,
    family_of,
    gpu_type_matches,
    gpu_types,
    normalize_gpu_type,
)
from crane.model.inventory import NodeInventory, parse_islands
from crane.model.specs import (
    AppManager,
    CargoPhase,
    CargoSpec,
    CargoStatus,
    CargoTemplate,
    GpuRange,
    MiniClusterSpec,
    MiniClusterStatus,
    ReplicaPlacement,
    RestartPolicy,
)
from crane.model.topology import ALIASES, TopologyLevels, TopologyMode, TopologySpec

__all__ = [
    "ALIASES",
    "VENDOR_TOKENS",
    "AppManager",
    "CargoPhase",
    "CargoSpec",
    "CargoStatus",
    "CargoTemplate",
    "Condition",
    "ConditionStatus",
    "GpuRange",
    "MiniClusterSpec",
    "MiniClusterStatus",
    "NodeInventory",
    "ReplicaPlacement",
    "RestartPolicy",
    "TopologyLevels",
    "TopologyMode",
    "TopologySpec",
    "UnknownGpuTypeError",
    "describe_products",
    "family_of",
    "find_condition",
    "gpu_type_matches",
    "gpu_types",
    "normalize_gpu_type",
    "parse_islands",
    "set_condition",
]
