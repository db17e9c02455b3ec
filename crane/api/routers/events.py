"""``/v1/events``: placements, preemption notices and completions as server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from crane.api.deps import Ctx
from crane.api.routers.miniclusters import PROBLEMS
from crane.api.schemas import NAME_PATTERN, Event, Scope

router = APIRouter(tags=["events"], responses=PROBLEMS)
HEARTBEAT_SECONDS = 15.0


@router.get(
    "/events",
    operation_id="streamEvents",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Event per message"}},
)
async def stream(
    ctx: Ctx,
    request: Request,
    mini_cluster: Annotated[
        str | None, Query(alias="miniCluster", pattern=NAME_PATTERN, max_length=63)
    ] = None,
) -> StreamingResponse:
    """Each message is ``event: <type>`` and ``data: <Event JSON>``; comments keep it alive.

    An admin without ``?tenant=`` receives every tenant's events.
    """
    if ctx.principal.scope is Scope.MINICLUSTER:
        if mini_cluster is not None:
            ctx.principal.check_minicluster(mini_cluster)
        mini_cluster = ctx.principal.minicluster
    every_tenant = ctx.principal.is_admin and "tenant" not in request.query_params
    tenant = ctx.tenant

    def wanted(event: Event) -> bool:
        return (every_tenant or event.tenant == tenant) and (
            mini_cluster is None or event.mini_cluster == mini_cluster
        )

    async def body() -> AsyncIterator[str]:
        with ctx.state.hub.subscribe() as queue:
            yield ": connected\n\n"
            while not await request.is_disconnected():
                try:
                    event = await asyncio.wait_for(queue.get(), HEARTBEAT_SECONDS)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if wanted(event):
                    data = event.model_dump_json(by_alias=True)
                    yield f"event: {event.type.value}\ndata: {data}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)
