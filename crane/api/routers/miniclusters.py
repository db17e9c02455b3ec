"""MiniClusters: CRUD, ``:grow``, ``:shrink``, ``:explain``.

The ``{name}:verb`` routes come first: ``{name}`` would otherwise match ``x:grow`` as a name.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from crane.api.deps import Ctx, IdempotencyKey, Pages, tenant_exists
from crane.api.errors import NotFound
from crane.api.idempotency import fingerprint
from crane.api.podsecurity import check_templates
from crane.api.schemas import (
    NAME_PATTERN,
    ExplainResult,
    GrowRequest,
    GrowResult,
    MiniCluster,
    MiniClusterCreate,
    MiniClusterPatch,
    Page,
    Problem,
    Scope,
    ShrinkRequest,
    ShrinkResult,
)
from crane.api.tenancy import explain_for, minicluster_for

PROBLEMS: dict[int | str, dict[str, Any]] = {
    s: {"model": Problem, "content": {"application/problem+json": {}}}
    for s in (400, 401, 403, 404, 409, 413, 422, 503)
}
"""Every problem status a ``/v1`` operation may answer: 400 an unreadable body, 413 one over the
body limit, 503 the backend out of reach."""
STREAM_PROBLEMS: dict[int | str, dict[str, Any]] = {429: PROBLEMS[400]}
"""What a stream operation adds: 429, the tenant's open streams at the server's limit."""
router = APIRouter(prefix="/miniclusters", tags=["miniclusters"], responses=PROBLEMS)
McName = Annotated[str, Path(pattern=NAME_PATTERN, max_length=63)]


def _wire(model: MiniCluster | GrowResult | ShrinkResult) -> dict[str, object]:
    return model.model_dump(mode="json", by_alias=True)


@router.post(
    "/{name}:grow", operation_id="growMiniCluster", response_model=GrowResult, status_code=200
)
async def grow(
    name: McName, body: GrowRequest, ctx: Ctx, request: Request, key: IdempotencyKey = None
) -> Response:
    """Add cargos in whole units: granted, partial or denied, with reasons."""
    ctx.principal.check_minicluster(name)
    await check_templates(
        ctx,
        ((["body", "cargos", i, "template"], c.template) for i, c in enumerate(body.cargos or [])),
    )

    async def call() -> tuple[int, object]:
        return 200, _wire(await ctx.backend.grow(ctx.tenant, name, body))

    fp = fingerprint("POST", request.url.path, body.model_dump(mode="json"))
    return await ctx.once(key, fp, call)


@router.post(
    "/{name}:shrink",
    operation_id="shrinkMiniCluster",
    response_model=ShrinkResult,
    status_code=200,
)
async def shrink(
    name: McName, body: ShrinkRequest, ctx: Ctx, request: Request, key: IdempotencyKey = None
) -> Response:
    """Remove the named cargos or the N newest, honouring their grace period."""
    ctx.principal.check_minicluster(name)

    async def call() -> tuple[int, object]:
        return 200, _wire(await ctx.backend.shrink(ctx.tenant, name, body))

    fp = fingerprint("POST", request.url.path, body.model_dump(mode="json"))
    return await ctx.once(key, fp, call)


@router.get("/{name}:explain", operation_id="explainMiniCluster", response_model=ExplainResult)
async def explain(name: McName, ctx: Ctx) -> ExplainResult:
    """Why it waits, in numbers, and the state of each of its cargos."""
    ctx.principal.check_minicluster(name)
    return explain_for(await ctx.backend.explain(ctx.tenant, name), ctx.viewer)


@router.post("", operation_id="createMiniCluster", response_model=MiniCluster, status_code=201)
async def create(
    body: MiniClusterCreate, ctx: Ctx, request: Request, key: IdempotencyKey = None
) -> Response:
    """Create a MiniCluster; 409 when the name is taken. It is admitted (``min`` GPUs reserved)
    when they fit, else it waits in the queue.

    A tenant deleted while the create ran (its check of the tenant passed before the delete)
    takes the new MiniCluster with it: 404, and nothing of it is left. The tenant delete drops
    the tenant before it looks for MiniClusters, so one of the two always sees the other.
    """
    ctx.principal.require(Scope.ADMIN, Scope.TENANT)
    if body.spec.template is not None:
        await check_templates(
            ctx, [(["body", "spec", "template", "template"], body.spec.template.template)]
        )

    async def call() -> tuple[int, object]:
        made = await ctx.backend.create_minicluster(ctx.tenant, body)
        if not await run_in_threadpool(tenant_exists, ctx.state.db, ctx.tenant):
            await ctx.backend.delete_minicluster(ctx.tenant, body.name)
            raise NotFound(f"tenant {ctx.tenant!r} was deleted while the MiniCluster was created")
        return 201, _wire(made)

    fp = fingerprint("POST", request.url.path, body.model_dump(mode="json"))
    return await ctx.once(key, fp, call)


@router.get("", operation_id="listMiniClusters", response_model=Page[MiniCluster])
async def list_(ctx: Ctx, pages: Pages) -> Page[MiniCluster]:
    """The tenant's MiniClusters, oldest first (a MiniCluster token sees its own only)."""
    items = await ctx.backend.list_miniclusters(ctx.tenant)
    if ctx.principal.scope is Scope.MINICLUSTER:
        items = [mc for mc in items if mc.name == ctx.principal.minicluster]
    shown = [
        minicluster_for(mc, ctx.viewer) for mc in items[pages.offset : pages.offset + pages.limit]
    ]
    return Page(items=shown, count=len(items))


@router.get("/{name}", operation_id="getMiniCluster", response_model=MiniCluster)
async def get(name: McName, ctx: Ctx) -> MiniCluster:
    """One MiniCluster: its spec and status (reservation, GPUs in use, queue position)."""
    ctx.principal.check_minicluster(name)
    return minicluster_for(await ctx.backend.get_minicluster(ctx.tenant, name), ctx.viewer)


@router.patch("/{name}", operation_id="patchMiniCluster", response_model=MiniCluster)
async def patch(name: McName, body: MiniClusterPatch, ctx: Ctx) -> MiniCluster:
    """Change gpus, priority, replicas, topology or labels; omitted fields stay."""
    ctx.principal.check_minicluster(name)
    ctx.principal.require(Scope.ADMIN, Scope.TENANT)
    return await ctx.backend.patch_minicluster(ctx.tenant, name, body)


@router.delete("/{name}", operation_id="deleteMiniCluster", status_code=204)
async def delete(name: McName, ctx: Ctx) -> Response:
    """Delete it and its cargos (each after its grace period)."""
    ctx.principal.check_minicluster(name)
    ctx.principal.require(Scope.ADMIN, Scope.TENANT)
    await ctx.backend.delete_minicluster(ctx.tenant, name)
    return Response(status_code=204)
