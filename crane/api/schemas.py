"""The REST API's wire models: separate create, update and public shapes per noun.

Field names are snake_case in Python and camelCase on the wire, as in :mod:`crane.model`.
Backends take and return these models; routers never expose a table or a CR directly.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from crane.api.timestamps import Timestamp
from crane.model import (
    CargoSpec,
    CargoStatus,
    GpuRange,
    MiniClusterSpec,
    MiniClusterStatus,
    RestartPolicy,
    TopologySpec,
)
from crane.model.inventory import MAX_NODE_GPUS
from crane.model.jsontypes import JsonTyped
from crane.model.labels import Labels
from crane.model.podsecurity import PodSecurityLevel
from crane.model.specs import (
    MAX_BACKOFF_LIMIT,
    MAX_GPUS_PER_REPLICA,
    MAX_PRIORITY,
    MAX_REPLICAS,
    MIN_PRIORITY,
    PodTemplate,
)
from crane.model.world import reserved_name

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=50,
        pattern=NAME_PATTERN,
        description="lower-case letters, digits and '-'; starts and ends with a letter or digit",
        examples=["study-42"],
    ),
]
"""A DNS-1123 label short enough to suffix with ``-<cargo>-<replica>``."""

T = TypeVar("T")


def one_of(*fields: str) -> dict[str, Any]:
    """JSON Schema saying exactly one of ``fields`` (wire names) is given and not null."""
    return {
        "oneOf": [{"required": [f], "properties": {f: {"not": {"type": "null"}}}} for f in fields]
    }


class Wire(JsonTyped):
    """Base of the API's bodies: camelCase on the wire (snake_case accepted), no unknown fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Page(Wire, Generic[T]):
    """A list answer: ``items`` (this page) and ``count`` (all matching objects)."""

    items: list[T]
    count: int


# --- MiniClusters -------------------------------------------------------------------------


class MiniClusterCreate(Wire):
    """A MiniCluster to create in the caller's tenant: its name, spec and labels."""

    name: Name
    spec: MiniClusterSpec
    labels: Labels = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        why = reserved_name(name)
        if why is not None:
            raise ValueError(why)
        return name


class MiniClusterPatch(Wire):
    """A merge patch of the fields that may change after creation; omitted fields are kept."""

    gpus: GpuRange | None = None
    priority: int | None = Field(default=None, ge=MIN_PRIORITY, le=MAX_PRIORITY)
    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    topology: TopologySpec | None = None
    suspend: bool | None = Field(
        default=None, description="true holds it (GPUs released), false releases it"
    )
    labels: Labels | None = Field(
        default=None, description="replaces its labels (`{}` removes them all)"
    )


class MiniCluster(Wire):
    """A MiniCluster as the API shows it: its spec, observed status and metadata."""

    name: str
    tenant: str
    uid: str
    spec: MiniClusterSpec
    status: MiniClusterStatus = Field(default_factory=MiniClusterStatus)
    labels: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    generation: int = 1


# --- Cargos -------------------------------------------------------------------------------


class CargoShape(Wire):
    """A cargo to add to a known MiniCluster: a :class:`CargoSpec` without ``miniCluster``."""

    name: Name | None = Field(default=None, description="default: <minicluster>-<next index>")
    replicas: int = Field(default=1, ge=1, le=MAX_REPLICAS, description="containers in the gang")
    gpus_per_replica: int = Field(default=1, ge=0, le=MAX_GPUS_PER_REPLICA)
    template: PodTemplate = Field(default_factory=dict)
    topology: TopologySpec = Field(default_factory=TopologySpec)
    restart_policy: RestartPolicy = RestartPolicy.NEVER
    backoff_limit: int = Field(default=3, ge=0, le=MAX_BACKOFF_LIMIT)
    expected_duration_seconds: int | None = Field(
        default=None,
        ge=1,
        le=31_536_000,
        description="how long it is expected to run, if known (as in a Cargo's spec)",
    )

    def spec(self, minicluster: str) -> CargoSpec:
        """This shape as the :class:`CargoSpec` of a cargo of MiniCluster ``minicluster``."""
        return CargoSpec(
            mini_cluster=minicluster,
            replicas=self.replicas,
            gpus_per_replica=self.gpus_per_replica,
            template=self.template,
            topology=self.topology,
            restart_policy=self.restart_policy,
            backoff_limit=self.backoff_limit,
            expected_duration_seconds=self.expected_duration_seconds,
        )


class CargoCreate(Wire):
    """A Cargo to create; ``spec.miniCluster`` names a MiniCluster of the same tenant."""

    name: Name | None = Field(default=None, description="default: <minicluster>-<next index>")
    spec: CargoSpec


class Cargo(Wire):
    """A Cargo as the API shows it: its spec, observed status and metadata."""

    name: str
    tenant: str
    uid: str
    spec: CargoSpec
    status: CargoStatus = Field(default_factory=CargoStatus)
    created_at: datetime


# --- grow, shrink, explain, dry-run ---------------------------------------------------------


MAX_EXEC_OUTPUT = 1 << 20
"""The most bytes of output an exec answers (stdout and stderr together); past it, a 409."""


class ExecRequest(Wire):
    """A command to run in one replica's container, as ``kubectl exec`` does (no TTY, no stdin)."""

    replica: int = Field(default=0, ge=0, le=MAX_REPLICAS - 1, description="the replica's index")
    command: list[Annotated[str, Field(max_length=4096)]] = Field(
        min_length=1, max_length=256, description="program and arguments, not run by a shell"
    )
    timeout_seconds: int = Field(
        default=60, ge=1, le=3600, description="seconds after which the command is abandoned"
    )


class ExecResult(Wire):
    """What the command wrote (stdout and stderr, interleaved; at most 1 MiB) and its exit
    code."""

    exit_code: int
    output: str


class GrowRequest(Wire):
    """Add ``count`` cargos shaped like the MiniCluster's template, or the given ``cargos``."""

    model_config = ConfigDict(json_schema_extra=one_of("count", "cargos"))

    count: int | None = Field(default=None, ge=1, le=256)
    cargos: list[CargoShape] | None = Field(default=None, min_length=1, max_length=256)
    allow_pending: bool = Field(
        default=False,
        description="also add cargos that fit within gpus.max but cannot be placed now; "
        "they wait Pending instead of being denied",
    )
    wait: bool = Field(
        default=False, description="answer when the added cargos run, or at the timeout"
    )
    timeout_seconds: float = Field(default=60.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _one_of(self) -> GrowRequest:
        if (self.count is None) == (self.cargos is None):
            raise ValueError(
                "give either count (template cargos) or cargos (explicit shapes), not both"
            )
        return self


class GrowOutcome(StrEnum):
    """Whether a grow added every requested cargo, some of them, or none."""

    GRANTED = "granted"
    PARTIAL = "partial"
    DENIED = "denied"


class CargoGrant(Wire):
    """What became of one requested cargo; ``name`` is null for a denied, never created one."""

    name: str | None
    gpus: int
    added: bool
    phase: str = Field(description="Pending, Placed, Running, ... or Denied")
    reason: str = ""


class GrowResult(Wire):
    """The answer to a grow: what became of each requested cargo, and why any was denied."""

    result: GrowOutcome
    requested: int
    added: int
    cargos: list[CargoGrant]
    reasons: list[str] = Field(default_factory=list, description="why cargos were denied or wait")
    timed_out: bool = Field(default=False, description="wait=true and not every cargo ran in time")

    @classmethod
    def of(
        cls, grants: list[CargoGrant], reasons: list[str], timed_out: bool = False
    ) -> GrowResult:
        """Granted when every requested cargo was added, partial when some, else denied."""
        added = sum(g.added for g in grants)
        outcome = (
            GrowOutcome.GRANTED
            if added == len(grants)
            else GrowOutcome.PARTIAL
            if added
            else GrowOutcome.DENIED
        )
        return cls(
            result=outcome,
            requested=len(grants),
            added=added,
            cargos=grants,
            reasons=reasons,
            timed_out=timed_out,
        )


class ShrinkRequest(Wire):
    """Remove the named ``cargos``, or the ``count`` newest ones."""

    model_config = ConfigDict(json_schema_extra=one_of("cargos", "count"))

    cargos: list[Name] | None = Field(default=None, min_length=1)
    count: int | None = Field(default=None, ge=1, le=256)
    grace_period_seconds: int | None = Field(default=None, ge=0, le=3600)

    @model_validator(mode="after")
    def _one_of(self) -> ShrinkRequest:
        if (self.count is None) == (self.cargos is None):
            raise ValueError("give either cargos (names) or count (newest first), not both")
        return self


class ShrinkResult(Wire):
    """The answer to a shrink: the cargos removed and their grace period."""

    removed: list[str]
    grace_period_seconds: int | None = None


class DomainFitOut(Wire):
    """The topology domain (node, rack, ...) that comes closest to fitting, and its GPUs."""

    level: str
    domain: str
    free_gpus: int
    preemptible_gpus: int = 0


class ExplanationOut(Wire):
    """The engine's :class:`crane.placement.types.Explanation` on the wire."""

    sentence: str
    needed_gpus: int
    gpu_type: str
    level: str
    required: bool
    best: DomainFitOut | None = None
    total_free_gpus: int = 0
    preemptible_cargos: list[str] = Field(
        default_factory=list,
        description="borrowed cargos whose preemption would help, by key (tenant/name); a "
        "tenant sees only its own, the others are counted in otherPreemptibleCargos",
    )
    other_preemptible_cargos: int = Field(
        default=0, description="preemptible cargos of other tenants (or MiniClusters), counted"
    )
    preemptible_gpus: int = 0
    detail: str = ""


class CargoExplain(Wire):
    """Why one cargo of a MiniCluster is in its phase (a waiting one: what it waits for)."""

    name: str
    phase: str
    message: str = ""
    explanation: ExplanationOut | None = None


class ExplainResult(Wire):
    """Whether a MiniCluster is admitted, its queue position, why it or its cargos wait."""

    name: str
    admitted: bool
    message: str = Field(description="one sentence a person can act on")
    queue_position: int | None = None
    explanation: ExplanationOut | None = None
    cargos: list[CargoExplain] = Field(default_factory=list)


class DryRunRequest(Wire):
    """Place a hypothetical MiniCluster or Cargo against the live state; nothing changes."""

    model_config = ConfigDict(json_schema_extra=one_of("miniCluster", "cargo"))

    mini_cluster: MiniClusterSpec | None = None
    cargo: CargoSpec | None = None

    @model_validator(mode="after")
    def _one_of(self) -> DryRunRequest:
        if (self.mini_cluster is None) == (self.cargo is None):
            raise ValueError("give either miniCluster or cargo")
        return self


class DryRunPlacement(Wire):
    """Where a dry run would place one replica: its node and GPU ids."""

    replica: int
    node: str
    gpu_ids: list[int]
    borrowed: bool = False


class DryRunResult(Wire):
    """What would happen to the hypothetical object now, and where its replicas would run."""

    outcome: str = Field(description="Admitted, Placed, Queued, Pending or Rejected")
    fits: bool
    message: str
    reservation: dict[str, list[int]] = Field(default_factory=dict)
    placements: list[DryRunPlacement] = Field(default_factory=list)
    explanation: ExplanationOut | None = None


# --- nodes, usage, events -----------------------------------------------------------------


class GpuSlotOut(Wire):
    """One GPU: the MiniCluster that reserves or uses it and the cargo running on it.

    Another tenant's MiniCluster and cargo show as ``other``.
    """

    id: int
    reserved_for: str | None = None
    mini_cluster: str | None = None
    cargo: str | None = None
    busy: bool = Field(default=False, description="held by something other than Crane")


class NodeOut(Wire):
    """A GPU node (kube mode) or Docker host (Docker mode) and what holds each GPU."""

    name: str
    gpu_product: str
    gpu_count: int
    ready: bool = True
    schedulable: bool = True
    labels: dict[str, str] = Field(default_factory=dict)
    islands: list[list[int]] = Field(
        default_factory=list, description="GPU ids per NVLink/NUMA island; empty: one island"
    )
    gpus: list[GpuSlotOut] = Field(default_factory=list)


def _no_control_characters(value: str) -> str:
    """``value``, or a validation error naming its first control character (a NUL byte, a line
    break, an escape): such a string never names a Docker API or a file, and it would forge
    lines wherever it is shown."""
    bad = next((char for char in value if unicodedata.category(char) == "Cc"), None)
    if bad is not None:
        raise PydanticCustomError(
            "control_character",
            "must not contain control characters (found {char} at {at})",
            {"char": f"U+{ord(bad):04X}", "at": value.index(bad)},
        )
    return value


Printable = Annotated[str, AfterValidator(_no_control_characters)]
"""A string without control characters: what the server hands to the Docker client."""


class HostCreate(Wire):
    """A Docker host to add in Docker mode; ``labels`` are topology labels (``rack=r2``)."""

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=NAME_PATTERN)]
    docker_host: Printable = Field(
        min_length=1,
        max_length=500,
        pattern=r"^(tcp|unix|ssh|http|https)://",
        description="the Docker API: tcp://host:2376, unix:///var/run/docker.sock",
    )
    gpu_type: Printable = Field(
        min_length=1, max_length=100, description="H100 or a GFD product name (required)"
    )
    gpus: int = Field(
        ge=1,
        le=MAX_NODE_GPUS,
        description="GPUs of the host (required, at least 1): Crane places GPU work only, so a "
        "host without GPUs is refused",
    )
    islands: str = Field(default="", max_length=200, description="GPU islands, e.g. 0-3,4-7")
    labels: Labels = Field(default_factory=dict)
    tls_ca: Printable | None = Field(default=None, description="CA file on the server")
    tls_cert: Printable | None = Field(default=None, description="client certificate file")
    tls_key: Printable | None = Field(default=None, description="client key file")
    address: Printable | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="the IP address or DNS name other hosts reach this host by: MiniClusters' "
        "containers there run with host networking (docs/docker-mode.md)",
    )


class HostState(StrEnum):
    """A Docker host takes new cargos while Active; a Draining host takes none."""

    ACTIVE = "Active"
    DRAINING = "Draining"


class Host(Wire):
    """A Docker host of Docker mode: its GPUs, state and whether its Docker API answers."""

    name: str
    docker_host: str
    gpu_type: str
    gpus: int
    islands: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    simulated: bool = Field(description="declared GPUs: CUDA_VISIBLE_DEVICES, no device request")
    address: str | None = Field(
        default=None, description="how other hosts reach it; set: host networking"
    )
    state: HostState
    preempt: bool = Field(default=False, description="the drain preempts the host's cargos")
    ready: bool = Field(description="the Docker API answered the last reconcile pass")
    message: str = ""
    cargos: int = Field(default=0, description="placed or running cargos on this host")
    created_at: datetime


class UsageRow(Wire):
    """GPU-seconds used in the window by one MiniCluster (with byCargo: one cargo)."""

    tenant: str
    mini_cluster: str
    gpu_seconds: float
    cargos: int = Field(description="cargos with an allocation in the window")
    cargo: str | None = Field(default=None, description="with byCargo: the cargo of this row")
    started_at: datetime | None = Field(
        default=None, description="with byCargo: when the cargo first held GPUs in the window"
    )
    ended_at: datetime | None = Field(
        default=None, description="with byCargo: when it last released them (None: holds them)"
    )
    state: str | None = Field(
        default=None,
        description="with byCargo, like sacct's State: Running while it holds GPUs, else how it "
        "ended (Succeeded, Failed, Preempted, Deleted)",
    )
    exit_code: int | None = Field(
        default=None, description="with byCargo, like sacct's ExitCode: where the cargo ended"
    )


class UsageReport(Wire):
    """GPU usage from ``since`` to ``until``, one row per MiniCluster or cargo."""

    items: list[UsageRow]
    count: int
    since: datetime
    until: datetime


class EventType(StrEnum):
    """What happened: a MiniCluster was admitted, or a cargo changed phase or was deleted."""

    ADMITTED = "Admitted"
    PLACED = "Placed"
    RUNNING = "Running"
    PREEMPTING = "Preempting"
    PREEMPTED = "Preempted"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DELETED = "Deleted"


class Event(Wire):
    """One change a client may react to; sent on ``/v1/events`` as a server-sent event."""

    type: EventType
    tenant: str
    mini_cluster: str
    cargo: str | None = None
    gpus: int = Field(default=0, description="GPUs the cargo holds (Placed) or held")
    message: str = ""
    exit_code: int | None = Field(
        default=None, description="Succeeded and Failed: the cargo's exit code, where known"
    )
    time: datetime


# --- tenants and tokens ---------------------------------------------------------------------


class Scope(StrEnum):
    """What a token may act on: everything (admin), one tenant, or one MiniCluster."""

    ADMIN = "admin"
    TENANT = "tenant"
    MINICLUSTER = "minicluster"


class TenantCreate(Wire):
    """A tenant to create, with the Pod Security Standards level of its templates."""

    name: Name
    pod_security: PodSecurityLevel = Field(
        default=PodSecurityLevel.BASELINE,
        description="Pod Security Standards level of the tenant's templates "
        "(privileged, baseline, restricted)",
    )


class TenantPatch(Wire):
    """What an admin may change on a tenant."""

    pod_security: PodSecurityLevel = Field(description="privileged, baseline or restricted")


class TenantShareStatus(Wire):
    """A tenant's share of one GPU type and how much of it the tenant uses now."""

    gpu_type: str
    nominal: int = Field(description="GPUs guaranteed to the tenant")
    borrowing_limit: int | None = Field(
        default=None, description="GPUs it may use beyond nominal; null: no limit"
    )
    lending_limit: int | None = Field(
        default=None, description="GPUs of its unused nominal others may use; null: all"
    )
    weight: float = Field(description="weight in the fair division of idle GPUs")
    in_use: int = Field(default=0, description="GPUs its MiniClusters reserve or borrow")
    borrowing: int = Field(default=0, description="GPUs in use beyond nominal")


class Tenant(Wire):
    """A tenant, its Pod Security Standards level and its GPU shares with their use."""

    name: str
    created_at: datetime
    pod_security: PodSecurityLevel = PodSecurityLevel.BASELINE
    shares: list[TenantShareStatus] = Field(
        default_factory=list, description="its shares per GPU type with their use"
    )


NOT_NULL: dict[str, Any] = {"not": {"type": "null"}}
TOKEN_SCOPES: dict[str, Any] = {
    "oneOf": [
        {
            "properties": {
                "scope": {"const": "admin"},
                "tenant": {"type": "null"},
                "miniCluster": {"type": "null"},
            }
        },
        {
            "required": ["tenant"],
            "properties": {
                "scope": {"const": "tenant"},
                "tenant": NOT_NULL,
                "miniCluster": {"type": "null"},
            },
        },
        {
            "required": ["tenant", "miniCluster"],
            "properties": {
                "scope": {"const": "minicluster"},
                "tenant": NOT_NULL,
                "miniCluster": NOT_NULL,
            },
        },
    ]
}
"""Which fields each scope takes, as :meth:`TokenCreate._scope_fields` checks them."""


class TokenCreate(Wire):
    """A token to mint: admin; tenant (needs ``tenant``); minicluster (needs both names)."""

    model_config = ConfigDict(json_schema_extra=TOKEN_SCOPES)

    scope: Scope
    tenant: Name | None = Field(
        default=None, description="required for tenant and minicluster scopes"
    )
    mini_cluster: Name | None = Field(
        default=None, description="required for the minicluster scope"
    )
    description: str = Field(
        default="",
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f]*$",
        description="no control characters",
    )
    expires_at: Timestamp | None = Field(
        default=None,
        description="when it stops working; a date-time with a time zone",
    )

    @model_validator(mode="after")
    def _scope_fields(self) -> TokenCreate:
        if self.scope is not Scope.ADMIN and self.tenant is None:
            raise ValueError(f"a {self.scope.value} token needs a tenant")
        if (self.scope is Scope.MINICLUSTER) != (self.mini_cluster is not None):
            raise ValueError("miniCluster is given exactly for the minicluster scope")
        if self.scope is Scope.ADMIN and self.tenant is not None:
            raise ValueError("an admin token has no tenant: leave tenant out")
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            raise ValueError(f"expiresAt {self.expires_at:%Y-%m-%d %H:%M}Z is in the past")
        return self


class TokenPublic(Wire):
    """A token without its secret: scope, description, expiry and whether it is revoked."""

    id: str
    scope: Scope
    tenant: str | None
    mini_cluster: str | None
    description: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked: bool = False


class TokenCreated(TokenPublic):
    """A newly minted token, with its secret (shown only in this answer)."""

    token: str = Field(description="the secret; shown only in this answer")


class AuditEntry(Wire):
    """One audited request: who (token, tenant) did what to which object, and its status."""

    id: int
    time: datetime
    token_id: str | None
    tenant: str | None
    action: str
    target: str
    status: int
    detail: str = ""


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


class Health(Wire):
    """Whether the server can serve requests (``ok``), and if not, why."""

    status: Literal["ok", "unavailable"]
    detail: str = ""
