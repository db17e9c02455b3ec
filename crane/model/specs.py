"""MiniCluster and Cargo specs and statuses (DESIGN section 2), shared by every backend.

Field names are snake_case in Python and camelCase on the wire (CRDs, REST API), as in
Kubernetes. Validation errors name the field and say how to fix it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from crane.model.conditions import Condition
from crane.model.gpu import normalize_gpu_type
from crane.model.topology import TopologySpec


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RestartPolicy(StrEnum):
    NEVER = "Never"
    ON_FAILURE = "OnFailure"


class GpuRange(_Wire):
    """A guaranteed minimum and an elastic maximum of GPUs."""

    min: int = Field(ge=0, description="GPUs reserved as one topology-shaped whole")
    max: int = Field(ge=0, description="GPUs the MiniCluster may use, borrowing beyond min")

    @model_validator(mode="after")
    def _min_le_max(self) -> GpuRange:
        if self.min > self.max:
            raise ValueError(
                f"gpus.min ({self.min}) must be <= gpus.max ({self.max}): raise max or lower min"
            )
        return self


class CargoTemplate(_Wire):
    """The shape of the identical cargos a MiniCluster keeps (``spec.template``)."""

    replicas: int = Field(default=1, ge=1, description="containers per cargo")
    gpus_per_replica: int = Field(default=1, ge=0)
    template: dict[str, Any] = Field(default_factory=dict, description="a pod template")
    topology: TopologySpec = Field(default_factory=TopologySpec)
    restart_policy: RestartPolicy = RestartPolicy.NEVER
    backoff_limit: int = Field(default=3, ge=0)

    @property
    def gpus(self) -> int:
        return self.replicas * self.gpus_per_replica


class AppManager(_Wire):
    """A container that drives the MiniCluster through the API (gets CRANE_API_URL and a token)."""

    image: str
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)


class MiniClusterSpec(_Wire):
    gpu_type: str = Field(description="a GPU family such as H100, or a full product name")
    gpus: GpuRange
    topology: TopologySpec = Field(default_factory=TopologySpec)
    priority: int = 0
    template: CargoTemplate | None = None
    replicas: int | None = Field(default=None, ge=0, description="template cargos to keep")
    app_manager: AppManager | None = None

    @field_validator("gpu_type")
    @classmethod
    def _gpu_type(cls, value: str) -> str:
        return normalize_gpu_type(value)

    @model_validator(mode="after")
    def _replicas_need_template(self) -> MiniClusterSpec:
        if self.replicas and self.template is None:
            raise ValueError("replicas needs a template: add spec.template or drop spec.replicas")
        if self.template is not None and self.replicas is not None:
            wanted = self.replicas * self.template.gpus
            if wanted > self.gpus.max:
                raise ValueError(
                    f"replicas x template GPUs = {wanted} exceeds gpus.max ({self.gpus.max}): "
                    "raise gpus.max or lower replicas"
                )
        return self


class CargoSpec(_Wire):
    mini_cluster: str = Field(min_length=1, description="the MiniCluster this cargo belongs to")
    replicas: int = Field(default=1, ge=0, description="containers in the gang")
    gpus_per_replica: int = Field(default=1, ge=0)
    template: dict[str, Any] = Field(default_factory=dict, description="a pod template")
    topology: TopologySpec = Field(default_factory=TopologySpec)
    restart_policy: RestartPolicy = RestartPolicy.NEVER
    backoff_limit: int = Field(default=3, ge=0)

    @property
    def gpus(self) -> int:
        return self.replicas * self.gpus_per_replica


class ReplicaPlacement(_Wire):
    """Where one replica runs: its node and exact GPU ids; ``borrowed`` GPUs are preemptible."""

    replica: int = Field(ge=0)
    node: str
    gpu_ids: list[int] = Field(default_factory=list)
    borrowed: bool = False


class MiniClusterStatus(_Wire):
    conditions: list[Condition] = Field(default_factory=list)
    reserved_gpus: int = 0
    in_use_gpus: int = 0
    borrowed_gpus: int = 0
    reservation: dict[str, list[int]] = Field(
        default_factory=dict, description="node -> reserved GPU ids"
    )
    cargos: int = 0
    ready_cargos: int = 0
    replicas: int = 0
    selector: str = ""
    queue_position: int | None = None
    message: str = ""
    observed_generation: int | None = None
    app_manager_token_id: str | None = Field(
        default=None, description="id of the app manager's API token, revoked when the MC goes"
    )


class CargoPhase(StrEnum):
    PENDING = "Pending"
    PLACED = "Placed"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    PREEMPTED = "Preempted"


class CargoStatus(_Wire):
    phase: CargoPhase = CargoPhase.PENDING
    conditions: list[Condition] = Field(default_factory=list)
    placement: list[ReplicaPlacement] = Field(default_factory=list)
    replicas: int = 0
    selector: str = ""
    restarts: int = 0
    message: str = ""
    placed_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    observed_generation: int | None = None
