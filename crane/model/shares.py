"""Tenant shares (DESIGN section 2, "Tenants and shares"): per tenant and GPU type, a
guaranteed share (``nominal``), a borrowing limit, a lending limit and a weight.

The same model is the spec of a ``TenantShare`` custom resource (Kubernetes), the share
fields of a tenant row (Docker) and the body of ``PUT /v1/tenants/{name}/shares``. The
engine (``crane.placement``) reads a :class:`ShareTable` built from them. How the numbers are
used is documented in ``docs/tenants.md``:

- a tenant's *use* of a GPU type is the GPUs of that type its MiniClusters reserve plus those
  their cargos borrow outside a reservation;
- use never goes above ``nominal + borrowingLimit`` (no limit when unset);
- of a tenant's unused guarantee, at most ``lendingLimit`` GPUs may be taken by other tenants
  (all of it when unset);
- idle GPUs go first to the waiting MiniCluster whose tenant has the lowest weighted share
  ``max(0, use - nominal) / weight`` of the MiniCluster's GPU type;
- a tenant below ``nominal`` reclaims it by preempting borrowed cargos of tenants above theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from crane.model.gpu import gpu_types, normalize_gpu_type
from crane.model.jsontypes import JsonTyped
from crane.model.specs import MAX_GPUS

MAX_WEIGHT = 1000.0
"""Largest weight of a share."""
MAX_SHARES = 32
"""Most GPU types one tenant's shares may name."""


class TenantShare(JsonTyped):
    """A tenant's share of one GPU type."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    gpu_type: str = Field(
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_. -]*$",
        description="the GPU type (family rule as in a MiniCluster's gpuType, e.g. H100)",
    )
    nominal: int = Field(
        default=0, ge=0, le=MAX_GPUS, description="GPUs guaranteed to the tenant (reclaimable)"
    )
    borrowing_limit: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GPUS,
        description="GPUs the tenant may use beyond nominal; unset: no limit",
    )
    lending_limit: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GPUS,
        description="GPUs of its unused nominal other tenants may use; unset: all of it",
    )
    weight: float = Field(
        default=1.0,
        gt=0,
        le=MAX_WEIGHT,
        description="the tenant's weight in the fair division of idle GPUs",
    )

    @model_validator(mode="after")
    def _check(self) -> TenantShare:
        if len(gpu_types(self.gpu_type)) != 1:
            raise ValueError(f"gpuType {self.gpu_type!r} must name one GPU type, not a list")
        normalize_gpu_type(self.gpu_type)
        if self.lending_limit is not None and self.lending_limit > self.nominal:
            raise ValueError(
                f"lendingLimit {self.lending_limit} is more than nominal {self.nominal}: "
                "a tenant can lend only what it is guaranteed"
            )
        return self


class TenantShares(JsonTyped):
    """Every share of one tenant, at most one per GPU type."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    shares: list[TenantShare] = Field(default_factory=list, max_length=MAX_SHARES)

    @model_validator(mode="after")
    def _unique(self) -> TenantShares:
        seen: set[str] = set()
        for share in self.shares:
            name = normalize_gpu_type(share.gpu_type)
            if name in seen:
                raise ValueError(f"gpuType {share.gpu_type} has more than one share")
            seen.add(name)
        return self


MAX_NAMESPACES = 256
"""Most namespaces one TenantShare may list."""


class SelectorRequirement(BaseModel):
    """One ``matchExpressions`` entry of a label selector."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    key: str = Field(min_length=1, max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list, max_length=64)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy the requirement (Kubernetes' rules)."""
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels


class LabelSelector(BaseModel):
    """A Kubernetes label selector; an empty one selects every namespace."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    match_labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    match_expressions: list[SelectorRequirement] = Field(default_factory=list, max_length=64)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every label and expression."""
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            r.matches(labels) for r in self.match_expressions
        )


class TenantShareSpec(TenantShares):
    """The spec of a ``TenantShare`` (``tenantshares.crane.io``, cluster-scoped): the tenant
    (named by the resource) is the namespaces listed in ``namespaces`` plus those
    ``namespaceSelector`` selects."""

    namespaces: list[str] = Field(default_factory=list, max_length=MAX_NAMESPACES)
    namespace_selector: LabelSelector | None = None

    @model_validator(mode="after")
    def _selects(self) -> TenantShareSpec:
        if not self.namespaces and self.namespace_selector is None:
            raise ValueError(
                "a TenantShare selects namespaces: set namespaces or namespaceSelector"
            )
        return self

    def selects(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """Whether the tenant includes ``namespace`` (whose labels are ``labels``)."""
        if namespace in self.namespaces:
            return True
        return self.namespace_selector is not None and self.namespace_selector.matches(labels)


def share_table(
    specs: Mapping[str, TenantShareSpec], namespaces: Mapping[str, Mapping[str, str]]
) -> ShareTable:
    """The engine's table from TenantShares (name -> spec) and the cluster's namespaces (name ->
    labels). A namespace two TenantShares select belongs to the first by name."""
    members: dict[str, str] = {}
    for tenant in sorted(specs):
        for namespace in sorted({*namespaces, *specs[tenant].namespaces}):
            if namespace not in members and specs[tenant].selects(
                namespace, namespaces.get(namespace, {})
            ):
                members[namespace] = tenant
    return ShareTable(
        shares={name: list(spec.shares) for name, spec in specs.items()},
        members=members,
        unselected="namespace:",
    )


@dataclass(frozen=True)
class ShareTable:
    """What the engine needs: each tenant's shares, and which tenant a MiniCluster key's
    prefix (namespace or tenant) belongs to. A prefix not in ``members`` is its own tenant
    (Docker mode: the prefix is the tenant)."""

    shares: Mapping[str, Sequence[TenantShare]] = field(default_factory=dict)
    members: Mapping[str, str] = field(default_factory=dict)
    unselected: str = ""
    """Prepended to a prefix no tenant selects, to make its own tenant (kube: a namespace no
    TenantShare selects is a tenant without shares, whatever its name)."""

    def tenant_of(self, key: str) -> str:
        """The tenant of MiniCluster ``prefix/name``."""
        prefix = key.partition("/")[0]
        return self.members.get(prefix, self.unselected + prefix)

    def __bool__(self) -> bool:
        return any(self.shares.values())
