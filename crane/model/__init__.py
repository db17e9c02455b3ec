"""Types shared by every part of Crane. Imports nothing of Kubernetes, Docker, FastAPI or SQL."""

from crane.model.conditions import Condition, ConditionStatus, find_condition, set_condition
from crane.model.gpu import (
    KNOWN_FAMILIES,
    UnknownGpuTypeError,
    family_of,
    gpu_type_matches,
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
    "KNOWN_FAMILIES",
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
    "family_of",
    "find_condition",
    "gpu_type_matches",
    "normalize_gpu_type",
    "parse_islands",
    "set_condition",
]
