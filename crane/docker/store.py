"""Docker mode's tables: SQL is the truth for hosts, MiniClusters, cargos and placements.

A cargo's placement is written (and committed) before any of its containers is created, so a
restarted reconciler knows every GPU it gave out and adopts containers instead of starting them
twice.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy import UniqueConstraint
from sqlmodel import Field, Session, SQLModel, col, select

from crane.api.db import UNREADABLE_TIME, StoredTime
from crane.docker.hosts import HostSpec
from crane.model import CargoPhase, CargoSpec, MiniClusterSpec, ReplicaPlacement
from crane.model.conditions import Condition, set_condition
from crane.model.podsecurity import PodSecurityLevel, parse_level
from crane.model.shares import ShareTable, TenantShare, TenantShares
from crane.model.specs import STORED

ACTIVE = {CargoPhase.PLACED.value, CargoPhase.RUNNING.value}
"""Phases of a placed cargo."""


log = logging.getLogger(__name__)


def utcnow() -> datetime:
    """Now, in UTC (a time zone aware datetime)."""
    return datetime.now(UTC)


def new_uid() -> str:
    """A new random UUID4 as a string, for a row's ``uid``."""
    return str(uuid.uuid4())


class HostRow(SQLModel, table=True):
    """A Docker host: its :class:`HostSpec` as JSON and whether it drains."""

    __tablename__ = "docker_hosts"

    name: str = Field(primary_key=True, max_length=63)
    spec: str = Field(description="HostSpec as JSON")
    draining: bool = False
    preempt: bool = Field(default=False, description="the drain moves or fails its cargos")
    created_at: datetime = Field(default_factory=utcnow, sa_type=StoredTime)

    def host(self) -> HostSpec:
        """The stored spec, parsed; its template is not checked again (``specs.STORED``)."""
        return HostSpec.model_validate_json(self.spec)


class MiniClusterRow(SQLModel, table=True):
    """A MiniCluster of Docker mode: spec, reservation, admission and conditions."""

    __tablename__ = "docker_miniclusters"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_docker_mc_tenant_name"),)

    uid: str = Field(default_factory=new_uid, primary_key=True, max_length=36)
    tenant: str = Field(max_length=63, index=True)
    name: str = Field(max_length=63)
    spec: str = Field(description="MiniClusterSpec as JSON")
    labels: str = "{}"
    generation: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=StoredTime)
    deleting: bool = False
    reservation: str = Field(default="{}", description="node -> reserved GPU ids, as JSON")
    admitted: bool = False
    queue_position: int | None = None
    waits_behind: str = Field(
        default="[]", description="the MiniClusters (tenant/name) it waits for, as JSON"
    )
    estimated_start: datetime | None = Field(default=None, sa_type=StoredTime)
    message: str = ""
    conditions: str = Field(default="[]", description="Condition list as JSON")

    @property
    def key(self) -> str:
        """``tenant/name``."""
        return f"{self.tenant}/{self.name}"

    def mc_spec(self) -> MiniClusterSpec:
        """The stored spec, parsed; its template is not checked again (``specs.STORED``)."""
        return MiniClusterSpec.model_validate_json(self.spec, context={STORED: True})

    def reserved(self) -> dict[str, list[int]]:
        """The reservation: node -> reserved GPU ids."""
        return {k: list(v) for k, v in json.loads(self.reservation).items()}


class CargoRow(SQLModel, table=True):
    """A cargo of Docker mode: spec, phase, placement and how it ended."""

    __tablename__ = "docker_cargos"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_docker_cargo_tenant_name"),)

    uid: str = Field(default_factory=new_uid, primary_key=True, max_length=36)
    tenant: str = Field(max_length=63, index=True)
    name: str = Field(max_length=63)
    minicluster: str = Field(max_length=63, index=True)
    spec: str = Field(description="CargoSpec as JSON")
    phase: str = CargoPhase.PENDING.value
    placement: str = Field(default="[]", description="ReplicaPlacement list as JSON")
    restarts: int = 0
    message: str = ""
    created_at: datetime = Field(default_factory=utcnow, sa_type=StoredTime)
    placed_at: datetime | None = Field(default=None, sa_type=StoredTime)
    started_at: datetime | None = Field(default=None, sa_type=StoredTime)
    finished_at: datetime | None = Field(default=None, sa_type=StoredTime)
    exit_code: int | None = None
    deleting: bool = False
    grace_seconds: int = 10
    conditions: str = Field(default="[]", description="Condition list as JSON")

    @property
    def key(self) -> str:
        """``tenant/name``."""
        return f"{self.tenant}/{self.name}"

    def cargo_spec(self) -> CargoSpec:
        """The stored spec, parsed; its template is not checked again (``specs.STORED``)."""
        return CargoSpec.model_validate_json(self.spec, context={STORED: True})

    def placements(self) -> list[ReplicaPlacement]:
        """Where each replica was placed (empty until placed)."""
        return [ReplicaPlacement.model_validate(p) for p in json.loads(self.placement)]

    def set_placements(self, placements: list[ReplicaPlacement]) -> None:
        """Store ``placements`` as the row's placement."""
        self.placement = json.dumps([p.model_dump(mode="json") for p in placements])


def unreadable(row: CargoRow | MiniClusterRow) -> str | None:
    """Why a row (edited in the database by hand, or written by a newer version) cannot be
    read: its spec, phase, placement, reservation, conditions or a time do not parse; None when it
    can. The reconciler leaves such a row as it is and goes on with the others."""
    times = ("created_at", "placed_at", "started_at", "finished_at", "estimated_start")
    for field in times:
        if getattr(row, field, None) == UNREADABLE_TIME:
            return f"{field} is not a time"
    try:
        if isinstance(row, CargoRow):
            row.cargo_spec()
            row.placements()
            CargoPhase(row.phase)
        else:
            row.mc_spec()
            row.reserved()
        stored_conditions(row.conditions)
    except (ValueError, TypeError, AttributeError) as err:
        return " ".join(f"{type(err).__name__}: {err}".split())[:300]
    return None


Row = TypeVar("Row", CargoRow, MiniClusterRow)
"""A cargo or MiniCluster row."""


def readable(rows: list[Row]) -> list[Row]:
    """``rows`` without those that cannot be read (:func:`unreadable`): a list, a usage
    snapshot or a MiniCluster's counts go on with the others."""
    return [r for r in rows if unreadable(r) is None]


def stored_conditions(text: str) -> list[Condition]:
    """The conditions a row stores."""
    return [Condition.model_validate(c) for c in json.loads(text or "[]")]


def merged_conditions(stored: str, current: list[Condition]) -> list[Condition]:
    """``current`` laid over what is stored: a condition whose status did not change keeps its
    stored transition time; stored types not in ``current`` stay."""
    out = stored_conditions(stored)
    for cond in current:
        out = set_condition(out, cond)
    return out


def dump_conditions(conditions: list[Condition]) -> str:
    """Conditions as a row stores them."""
    return json.dumps([c.model_dump(mode="json", by_alias=True) for c in conditions])


TENANTS = sa.table(
    "tenants",
    sa.column("name", sa.String),
    sa.column("shares", sa.Text),
    sa.column("pod_security", sa.String),
)
"""The tenant rows' share and Pod Security fields (the API's table; Docker mode's engine and
reconciler read them)."""


def share_table(session: Session) -> ShareTable:
    """Every tenant's shares, as the engine reads them; a row whose shares do not parse (written
    by hand) counts as none and is logged."""
    out: dict[str, list[TenantShare]] = {}
    for name, text in session.connection().execute(sa.select(TENANTS.c.name, TENANTS.c.shares)):
        try:
            parsed = TenantShares.model_validate({"shares": json.loads(text or "[]")})
        except ValueError as err:
            log.warning("tenant %s: shares ignored: %s", name, err)
            continue
        if parsed.shares:
            out[name] = parsed.shares
    return ShareTable(shares=out)


def pod_security_levels(session: Session) -> dict[str, PodSecurityLevel]:
    """Every tenant's Pod Security level as an admin set it last (``PATCH /v1/tenants``); a
    tenant without a row has the default (:func:`crane.model.podsecurity.parse_level`)."""
    rows = session.connection().execute(sa.select(TENANTS.c.name, TENANTS.c.pod_security))
    return {name: parse_level(level) for name, level in rows}


def hosts(session: Session) -> list[HostRow]:
    """Every host, oldest first."""
    return list(session.exec(select(HostRow).order_by(col(HostRow.created_at))))


def miniclusters(session: Session, tenant: str | None = None) -> list[MiniClusterRow]:
    """The MiniClusters, oldest first; only ``tenant``'s when given."""
    query = select(MiniClusterRow).order_by(col(MiniClusterRow.created_at))
    if tenant is not None:
        query = query.where(MiniClusterRow.tenant == tenant)
    return list(session.exec(query))


def cargos(
    session: Session, tenant: str | None = None, minicluster: str | None = None
) -> list[CargoRow]:
    """The cargos, oldest first; only ``tenant``'s and ``minicluster``'s when given."""
    query = select(CargoRow).order_by(col(CargoRow.created_at))
    if tenant is not None:
        query = query.where(CargoRow.tenant == tenant)
    if minicluster is not None:
        query = query.where(CargoRow.minicluster == minicluster)
    return list(session.exec(query))


def minicluster(session: Session, tenant: str, name: str) -> MiniClusterRow | None:
    """MiniCluster ``name`` of ``tenant``, or None."""
    query = select(MiniClusterRow).where(
        MiniClusterRow.tenant == tenant, MiniClusterRow.name == name
    )
    return session.exec(query).first()


def cargo(session: Session, tenant: str, name: str) -> CargoRow | None:
    """Cargo ``name`` of ``tenant``, or None."""
    return session.exec(
        select(CargoRow).where(CargoRow.tenant == tenant, CargoRow.name == name)
    ).first()
