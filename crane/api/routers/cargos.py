"""Cargos: create, list, get, delete, and a replica's logs (streamed with ``follow``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from crane.api.deps import Ctx, IdempotencyKey, Pages, StillValid
from crane.api.errors import NotFound, Unreadable
from crane.api.idempotency import fingerprint
from crane.api.podsecurity import check_templates
from crane.api.routers.miniclusters import PROBLEMS, STREAM_PROBLEMS
from crane.api.schemas import (
    NAME_PATTERN,
    Cargo,
    CargoCreate,
    ExecRequest,
    ExecResult,
    Page,
    Scope,
)
from crane.api.streams import while_valid
from crane.model.specs import MAX_REPLICAS

router = APIRouter(prefix="/cargos", tags=["cargos"], responses=PROBLEMS)
CargoName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)]
LOG_RECHECK_SECONDS = 1.0
"""How often a followed log looks its token up again, lines or none (a revoked one ends the
stream)."""


async def _visible(ctx: Ctx, name: str) -> Cargo:
    """The cargo, or 404: for a MiniCluster token, one of another MiniCluster answers the very
    same 404 as one that does not exist (no existence oracle)."""
    try:
        cargo = await ctx.backend.get_cargo(ctx.tenant, name)
    except NotFound:
        if ctx.principal.scope is Scope.MINICLUSTER:
            raise NotFound(f"cargo {name!r} not found") from None
        raise
    ctx.principal.check_minicluster(cargo.spec.mini_cluster, "cargo", name)
    return cargo


@router.post("", operation_id="createCargo", response_model=Cargo, status_code=201)
async def create(
    body: CargoCreate, ctx: Ctx, request: Request, key: IdempotencyKey = None
) -> Response:
    """Add one cargo to a MiniCluster; it waits Pending until it can be placed whole."""
    ctx.principal.check_minicluster(body.spec.mini_cluster)
    await check_templates(ctx, [(["body", "spec", "template"], body.spec.template)])

    async def call() -> tuple[int, object]:
        cargo = await ctx.backend.create_cargo(ctx.tenant, body)
        return 201, cargo.model_dump(mode="json", by_alias=True)

    fp = fingerprint("POST", request.url.path, body.model_dump(mode="json"))
    return await ctx.once(key, fp, call)


@router.get("", operation_id="listCargos", response_model=Page[Cargo])
async def list_(
    ctx: Ctx,
    pages: Pages,
    mini_cluster: Annotated[
        str | None, Query(alias="miniCluster", pattern=NAME_PATTERN, max_length=63)
    ] = None,
) -> Page[Cargo]:
    """The tenant's cargos, oldest first; ``miniCluster`` keeps those of one MiniCluster."""
    if ctx.principal.scope is Scope.MINICLUSTER:
        if mini_cluster is not None:
            ctx.principal.check_minicluster(mini_cluster)
        mini_cluster = ctx.principal.minicluster
    items = await ctx.backend.list_cargos(ctx.tenant, mini_cluster)
    return Page(items=items[pages.offset : pages.offset + pages.limit], count=len(items))


@router.post(
    "/{name}:exec",
    operation_id="execCargo",
    response_model=ExecResult,
    summary="Exec",
    responses=STREAM_PROBLEMS,
)
async def exec_(name: CargoName, body: ExecRequest, ctx: Ctx) -> ExecResult:
    """Run a command in one replica's container (like ``kubectl exec``): its output and exit
    code; 409 ``exec-unsupported`` where the replica cannot run one (simulated kwok nodes).
    While it runs it counts against the tenant's open streams (``max_streams_per_tenant``;
    429 past it): each exec holds a thread of the server until its command ends or times out."""
    await _visible(ctx, name)
    slot = ctx.state.streams.take(ctx.principal)
    try:
        return await ctx.backend.exec_replica(ctx.tenant, name, body)
    finally:
        slot.release()


@router.get("/{name}", operation_id="getCargo", response_model=Cargo)
async def get(name: CargoName, ctx: Ctx) -> Cargo:
    """One cargo: its spec and status (phase, placement, conditions)."""
    return await _visible(ctx, name)


@router.delete("/{name}", operation_id="deleteCargo", status_code=204)
async def delete(
    name: CargoName,
    ctx: Ctx,
    grace_period_seconds: Annotated[
        int | None, Query(alias="gracePeriodSeconds", ge=0, le=3600)
    ] = None,
) -> Response:
    """Stop it (SIGTERM, then the grace period) and free its GPUs."""
    try:
        await _visible(ctx, name)
    except Unreadable:  # its spec, so its MiniCluster for a MiniCluster token, cannot be read
        ctx.principal.require(Scope.ADMIN, Scope.TENANT)
    await ctx.backend.delete_cargo(ctx.tenant, name, grace_period_seconds)
    return Response(status_code=204)


@router.get(
    "/{name}/logs",
    operation_id="getCargoLogs",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "log lines"}, **STREAM_PROBLEMS},
)
async def logs(
    name: CargoName,
    ctx: Ctx,
    request: Request,
    replica: Annotated[
        int, Query(ge=0, le=MAX_REPLICAS - 1, description="the replica's index")
    ] = 0,
    follow: bool = False,
    tail: Annotated[int | None, Query(ge=0, le=100_000)] = None,
    since_seconds: Annotated[
        int | None,
        Query(
            alias="sinceSeconds",
            ge=1,
            le=31_536_000,
            description="only lines written in the last that many seconds",
        ),
    ] = None,
) -> StreamingResponse:
    """One replica's log; ``follow`` streams until the container ends, you disconnect, or the
    token is revoked or expires (noticed within a second, lines or none). A followed log
    counts against the tenant's open streams (``max_streams_per_tenant``; 429 past it)."""
    await _visible(ctx, name)
    valid = StillValid(request, ctx.state, every=LOG_RECHECK_SECONDS)

    async def wanted() -> bool:
        # a client gone before the first line is noticed here: nothing else listens yet
        return not await request.is_disconnected() and await valid()

    slot = ctx.state.streams.take(ctx.principal) if follow else None
    with slot or contextlib.nullcontext():
        lines = while_valid(
            ctx.backend.cargo_logs(ctx.tenant, name, replica, follow, tail, since_seconds),
            wanted,
            LOG_RECHECK_SECONDS,
        )
        first = await anext(lines, None)

    async def body() -> AsyncIterator[str]:
        if first is None:
            return
        yield first if first.endswith("\n") else first + "\n"
        async for line in lines:
            yield line if line.endswith("\n") else line + "\n"

    stream = slot.hold(body()) if slot is not None else body()
    return StreamingResponse(stream, media_type="text/plain; charset=utf-8")
