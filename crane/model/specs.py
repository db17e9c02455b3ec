"""MiniCluster and Cargo specs and statuses (DESIGN section 2), shared by every backend.

Field names are snake_case in Python and camelCase on the wire (CRDs, REST API), as in
Kubernetes. Validation errors name the field and say how to fix it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from crane.model.conditions import Condition
from crane.model.gpu import normalize_gpu_type
from crane.model.jsontypes import JsonTyped
from crane.model.podtemplate import env_name_issue, template_errors
from crane.model.topology import TopologySpec

# Documented maxima of every count in a spec (docs/operator.md, "Limits"); the CRDs carry the
# same numbers, so kubectl, the API and the operator refuse the same input.
MAX_GPUS = 100_000
"""Largest gpus.min / gpus.max of a MiniCluster."""
MAX_REPLICAS = 10_000
"""Largest replica count: containers of a cargo, and template cargos of a MiniCluster."""
MAX_GPUS_PER_REPLICA = 64
"""Largest gpusPerReplica (one replica's GPUs are on one node)."""
MIN_PRIORITY = -(2**31)
MAX_PRIORITY = 1_000_000_000
"""Priority range, as for a Kubernetes PriorityClass of users' workloads."""
MAX_BACKOFF_LIMIT = 1_000
"""Largest backoffLimit (gang restarts with restartPolicy OnFailure)."""
MAX_GPU_TYPE_LENGTH = 128
"""Longest gpuType (one name or a comma-separated list), as the CRD's maxLength."""


STORED = "stored"
"""Validation context key: the spec is read back from Docker mode's database, where it was
checked when it was stored. Its template is taken as it is, so that a template rule added
since (a label or an env name now Crane's) fails that one cargo when the reconciler builds it
(``InvalidSpec``, as the operator does on Kubernetes) instead of every read of the row."""


def _check_template(template: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
    """The template unchanged, or a validation error naming every bad field.

    An empty template passes (a dry-run needs none); a cargo that runs needs containers,
    which the backends check before making pods. A stored spec's is not checked again
    (:data:`STORED`).
    """
    if isinstance(info.context, dict) and info.context.get(STORED):
        return template
    issues = template_errors(template, require_containers=bool(template))
    if issues:
        message = "; ".join(f"template.{i}" for i in issues)
        raise PydanticCustomError("pod_template", "{message}", {"message": message})
    return template


PodTemplate = Annotated[
    dict[str, Any],
    AfterValidator(_check_template),
    Field(description="a pod template (metadata + spec), as in a Deployment"),
]
"""A PodTemplateSpec, checked for structure and for GPU resources (Crane's to set)."""


class _Wire(JsonTyped):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class RestartPolicy(StrEnum):
    """What a failed replica does: ``Never`` fails the cargo, ``OnFailure`` restarts the gang
    (up to ``backoffLimit`` times)."""

    NEVER = "Never"
    ON_FAILURE = "OnFailure"


class GpuRange(_Wire):
    """A guaranteed minimum and an elastic maximum of GPUs."""

    min: int = Field(ge=0, le=MAX_GPUS, description="GPUs reserved as one topology-shaped whole")
    max: int = Field(
        ge=0, le=MAX_GPUS, description="GPUs the MiniCluster may use, borrowing beyond min"
    )

    @model_validator(mode="after")
    def _min_le_max(self) -> GpuRange:
        if self.min > self.max:
            raise ValueError(
                f"gpus.min ({self.min}) must be <= gpus.max ({self.max}): raise max or lower min"
            )
        return self


class CargoTemplate(_Wire):
    """The shape of the identical cargos a MiniCluster keeps (``spec.template``)."""

    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS, description="containers per cargo")
    gpus_per_replica: int = Field(default=1, ge=0, le=MAX_GPUS_PER_REPLICA)
    template: PodTemplate = Field(default_factory=dict)
    topology: TopologySpec = Field(default_factory=TopologySpec)
    restart_policy: RestartPolicy = RestartPolicy.NEVER
    backoff_limit: int = Field(default=3, ge=0, le=MAX_BACKOFF_LIMIT)

    @property
    def gpus(self) -> int:
        """GPUs of one cargo made from the template: ``replicas * gpusPerReplica``."""
        return self.replicas * self.gpus_per_replica


DEFAULT_RENDEZVOUS_PORT = 29400
"""Port of a MiniCluster's rendezvous store (torchrun's default c10d port)."""


class Rendezvous(_Wire):
    """The MiniCluster-wide rendezvous store Crane runs: one elastic torch world across cargos.

    Enabled, every replica of every cargo of the MiniCluster gets ``CRANE_RDZV_*`` and
    ``CRANE_NNODES`` (crane/model/world.py); the store runs the template's image.
    """

    enabled: bool = Field(
        default=False, description="run a rendezvous store for the MiniCluster's cargos"
    )
    port: int = Field(
        default=DEFAULT_RENDEZVOUS_PORT, ge=1, le=65535, description="the store's TCP port"
    )


class AppManager(_Wire):
    """A container that drives the MiniCluster through the API (gets CRANE_API_URL and a token)."""

    image: str
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        problems = [p for p in map(env_name_issue, env) if p is not None]
        if problems:
            message = "; ".join(f"env name {p}" for p in problems)
            raise PydanticCustomError("env_name", "{message}", {"message": message})
        return env


class MiniClusterSpec(_Wire):
    """A MiniCluster: ``gpus.min`` GPUs reserved as one topology-shaped whole, up to ``gpus.max``
    used by its cargos."""

    gpu_type: str = Field(
        min_length=1,
        max_length=MAX_GPU_TYPE_LENGTH,
        pattern=r"\S",
        description="a GPU family such as H100, a full product name, or an ordered list of "
        "acceptable types (H100,A100 or a YAML list); the reservation stays on one type",
    )
    gpus: GpuRange
    topology: TopologySpec = Field(default_factory=TopologySpec)
    priority: int = Field(default=0, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    template: CargoTemplate | None = None
    replicas: int | None = Field(
        default=None, ge=0, le=MAX_REPLICAS, description="template cargos to keep"
    )
    app_manager: AppManager | None = None
    rendezvous: Rendezvous | None = Field(
        default=None,
        description="a MiniCluster-wide torch rendezvous store (needs template: it runs the "
        "template's image)",
    )
    suspend: bool = Field(
        default=False,
        description="held: its cargos are stopped, its GPUs released and it is not admitted "
        "until set back to false (crane mc hold / release)",
    )

    @field_validator("gpu_type", mode="before")
    @classmethod
    def _gpu_type(cls, value: object) -> str:
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return normalize_gpu_type(list(value))
        if not isinstance(value, str):
            raise ValueError("gpuType must be a string or a list of strings")
        return normalize_gpu_type(value)

    @model_validator(mode="after")
    def _replicas_need_template(self) -> MiniClusterSpec:
        if self.replicas and self.template is None:
            raise ValueError("replicas needs a template: add spec.template or drop spec.replicas")
        if self.rendezvous is not None and self.rendezvous.enabled and self.template is None:
            raise ValueError(
                "rendezvous needs a template (the store runs its image): add spec.template "
                "or set rendezvous.enabled to false"
            )
        if self.template is not None and self.replicas is not None:
            wanted = self.replicas * self.template.gpus
            if wanted > self.gpus.max:
                raise ValueError(
                    f"replicas x template GPUs = {wanted} exceeds gpus.max ({self.gpus.max}): "
                    "raise gpus.max or lower replicas"
                )
        return self


class CargoSpec(_Wire):
    """A cargo: a gang of ``replicas`` containers of one MiniCluster, placed all or nothing."""

    mini_cluster: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="the MiniCluster this cargo belongs to",
    )
    replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS, description="containers in the gang")
    gpus_per_replica: int = Field(default=1, ge=0, le=MAX_GPUS_PER_REPLICA)
    template: PodTemplate = Field(default_factory=dict)
    topology: TopologySpec = Field(default_factory=TopologySpec)
    restart_policy: RestartPolicy = RestartPolicy.NEVER
    backoff_limit: int = Field(default=3, ge=0, le=MAX_BACKOFF_LIMIT)
    expected_duration_seconds: int | None = Field(
        default=None,
        ge=1,
        le=31_536_000,
        description="how long it is expected to run, if known: informs the estimated start of "
        "waiting MiniClusters (squeue --start); nothing is stopped then",
    )

    @property
    def gpus(self) -> int:
        """GPUs the cargo needs in all: ``replicas * gpusPerReplica``."""
        return self.replicas * self.gpus_per_replica


class ReplicaPlacement(_Wire):
    """Where one replica runs: its node and exact GPU ids; ``borrowed`` GPUs are preemptible."""

    replica: int = Field(ge=0)
    node: str
    gpu_ids: list[int] = Field(default_factory=list)
    borrowed: bool = False


class MiniClusterStatus(_Wire):
    """What the scheduler reports of a MiniCluster: reservation, GPUs in use, cargos, queue."""

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
    waits_behind: list[str] = Field(
        default_factory=list, description="MiniClusters ahead in the queue it waits for"
    )
    estimated_start: datetime | None = Field(
        default=None, description="when it is expected to be admitted (running cargos' ends)"
    )
    message: str = ""
    observed_generation: int | None = None
    app_manager_token_id: str | None = Field(
        default=None, description="id of the app manager's API token, revoked when the MC goes"
    )


class CargoPhase(StrEnum):
    """Where a cargo is: Pending, Placed, Running, then Succeeded, Failed or Preempted."""

    PENDING = "Pending"
    PLACED = "Placed"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    PREEMPTED = "Preempted"


class CargoStatus(_Wire):
    """What the scheduler reports of a cargo: phase, placement per replica, restarts, times."""

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
    exit_code: int | None = Field(
        default=None,
        description="how it ended, like sacct's ExitCode: 0 when every replica succeeded, the "
        "exit code of the replica that failed it, None while it runs or when no code is known",
    )
    observed_generation: int | None = None
