"""The GPU map (``/nodes``), ``placement:dryrun`` and ``usage``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from crane.api import usage
from crane.api.auth import Principal
from crane.api.deps import Ctx
from crane.api.errors import Invalid
from crane.api.routers.miniclusters import PROBLEMS
from crane.api.schemas import (
    NAME_PATTERN,
    DryRunRequest,
    DryRunResult,
    GpuSlotOut,
    NodeOut,
    Page,
    Scope,
    UsageReport,
)
from crane.api.tenancy import dry_run_for
from crane.api.timestamps import Timestamp

router = APIRouter(tags=["cluster"], responses=PROBLEMS)
OTHER = "other"


def _redact(gpu: GpuSlotOut, who: Principal, tenant: str) -> None:
    """Show the caller its own objects by name and everything else as ``other``; admins see all."""
    if who.is_admin:
        return

    def name(key: str | None) -> str | None:
        if key is None:
            return None
        owner, _, rest = key.partition("/")
        return rest if owner == tenant else OTHER

    gpu.reserved_for, gpu.mini_cluster, gpu.cargo = (
        name(gpu.reserved_for),
        name(gpu.mini_cluster),
        name(gpu.cargo),
    )
    if who.scope is Scope.MINICLUSTER:
        if gpu.reserved_for not in (None, who.minicluster):
            gpu.reserved_for = OTHER
        if gpu.mini_cluster not in (None, who.minicluster):
            gpu.mini_cluster = OTHER
            gpu.cargo = gpu.cargo and OTHER


@router.get("/nodes", operation_id="listNodes", response_model=Page[NodeOut])
async def nodes(ctx: Ctx) -> Page[NodeOut]:
    """Every node and GPU: which MiniCluster reserves it, which cargo runs on it."""
    items = await ctx.backend.nodes()
    for node in items:
        for gpu in node.gpus:
            _redact(gpu, ctx.principal, ctx.tenant)
    return Page(items=items, count=len(items))


@router.post("/placement:dryrun", operation_id="dryRunPlacement", response_model=DryRunResult)
async def dry_run(body: DryRunRequest, ctx: Ctx) -> DryRunResult:
    """Where a MiniCluster or Cargo would go now, or why it would wait; changes nothing."""
    if body.cargo is not None:
        ctx.principal.check_minicluster(body.cargo.mini_cluster)
        await ctx.backend.get_minicluster(ctx.tenant, body.cargo.mini_cluster)  # else 404
    return dry_run_for(await ctx.backend.dry_run(ctx.tenant, body), ctx.viewer)


@router.get("/usage", operation_id="getUsage", response_model=UsageReport)
async def get_usage(
    ctx: Ctx,
    request: Request,
    since: Annotated[
        Timestamp | None, Query(description="window start; default: 24 hours before until")
    ] = None,
    until: Annotated[Timestamp | None, Query(description="window end; default: now")] = None,
    mini_cluster: Annotated[
        str | None, Query(alias="miniCluster", pattern=NAME_PATTERN, max_length=63)
    ] = None,
    by_cargo: Annotated[
        bool, Query(alias="byCargo", description="one row per cargo, like sacct")
    ] = False,
) -> UsageReport:
    """GPU-seconds per tenant and MiniCluster from recorded allocation intervals.

    The window defaults to the last 24 hours; an admin without ``?tenant=`` sees every tenant.
    A tenant's token counts nothing from before its tenant was created (a deleted tenant's
    namesake inherits none of its usage).
    """
    end = _utc(until) if until else datetime.now(UTC)
    start = _utc(since) if since else end - timedelta(days=1)
    if start >= end:
        raise Invalid(f"since ({start.isoformat()}) must be before until ({end.isoformat()})")
    if ctx.principal.scope is Scope.MINICLUSTER:
        if mini_cluster is not None:
            ctx.principal.check_minicluster(mini_cluster)
        mini_cluster = ctx.principal.minicluster
    tenant = None if ctx.principal.is_admin and "tenant" not in request.query_params else ctx.tenant
    born = await run_in_threadpool(ctx.history_starts)
    counted_from = max(start, born) if born is not None else start  # not a namesake's past
    rows = (
        await run_in_threadpool(
            usage.report, ctx.state.db, counted_from, end, tenant, mini_cluster, by_cargo
        )
        if counted_from < end
        else []
    )
    return UsageReport(items=rows, count=len(rows), since=start, until=end)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
