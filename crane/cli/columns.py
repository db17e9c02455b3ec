"""Table columns of each noun, shared by the commands that print them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crane.cli.gpumap import mc_status
from crane.cli.render import Column

if TYPE_CHECKING:
    from crane.client import Cargo, CargoGrant, MiniCluster, TokenPublic


def age(when: datetime | None) -> str:
    """``42s``, ``5m``, ``3h``, ``2d``, like kubectl's AGE."""
    if when is None:
        return "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = max(int((datetime.now(UTC) - when).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def until(when: datetime | None) -> str:
    """An estimated start as ``in 10m`` (``now`` once passed), ``-`` when unknown."""
    if when is None:
        return "-"
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = int((when - datetime.now(UTC)).total_seconds())
    if seconds <= 0:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return f"in {seconds}s"


MINICLUSTER = [
    Column("name", lambda m: m.name),
    Column("gpu", lambda m: m.spec.gpu_type),
    Column("min", lambda m: m.spec.gpus.min),
    Column("max", lambda m: m.spec.gpus.max),
    Column("reserved", lambda m: m.status.reserved_gpus),
    Column("in-use", lambda m: m.status.in_use_gpus),
    Column("borrowed", lambda m: m.status.borrowed_gpus),
    Column("cargos", lambda m: f"{m.status.ready_cargos}/{m.status.cargos}"),
    Column("status", mc_status),
    Column("behind", lambda m: ",".join(m.status.waits_behind) or "-"),
    Column("start", lambda m: until(m.status.estimated_start)),
    Column("age", lambda m: age(m.created_at)),
]

CARGO = [
    Column("name", lambda c: c.name),
    Column("minicluster", lambda c: c.spec.mini_cluster),
    Column("replicas", lambda c: c.spec.replicas),
    Column("gpus", lambda c: c.spec.gpus),
    Column("phase", lambda c: str(c.status.phase)),
    Column("borrowed", lambda c: any(p.borrowed for p in c.status.placement)),
    Column("nodes", lambda c: sorted({p.node for p in c.status.placement})),
    Column("age", lambda c: age(c.created_at)),
    Column("message", lambda c: c.status.message),
]

GRANT = [
    Column("cargo", lambda g: g.name),
    Column("gpus", lambda g: g.gpus),
    Column("added", lambda g: g.added),
    Column("phase", lambda g: g.phase),
    Column("reason", lambda g: g.reason),
]

TOKEN = [
    Column("id", lambda t: t.id),
    Column("scope", lambda t: str(t.scope)),
    Column("tenant", lambda t: t.tenant),
    Column("minicluster", lambda t: t.mini_cluster),
    Column("description", lambda t: t.description),
    Column("created", lambda t: age(t.created_at)),
    Column("expires", lambda t: t.expires_at),
    Column("revoked", lambda t: t.revoked),
]


def of(obj: MiniCluster | Cargo | CargoGrant | TokenPublic) -> list[Column]:
    """The columns for one kind of object."""
    from crane.client import Cargo, CargoGrant, MiniCluster

    if isinstance(obj, MiniCluster):
        return MINICLUSTER
    if isinstance(obj, Cargo):
        return CARGO
    if isinstance(obj, CargoGrant):
        return GRANT
    return TOKEN


def with_tenant(cols: list[Column]) -> list[Column]:
    """``cols`` with a TENANT column first (``-A``)."""
    return [Column("tenant", lambda o: o.tenant), *cols]
