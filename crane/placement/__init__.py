"""The placement engine: pure, deterministic, synchronous. Imports nothing of Kubernetes,
Docker, FastAPI or SQL."""

from crane.placement.admission import QueueingStrategy
from crane.placement.engine import Engine
from crane.placement.types import (
    AdmissionDecision,
    CargoDecision,
    CargoRequest,
    DomainFit,
    Explanation,
    GpuSlot,
    MiniClusterRequest,
    MiniClusterUsage,
    Outcome,
    PreemptionPlan,
)

__all__ = [
    "AdmissionDecision",
    "CargoDecision",
    "CargoRequest",
    "DomainFit",
    "Engine",
    "Explanation",
    "GpuSlot",
    "MiniClusterRequest",
    "MiniClusterUsage",
    "Outcome",
    "PreemptionPlan",
    "QueueingStrategy",
]
