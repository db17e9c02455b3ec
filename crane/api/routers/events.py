"""``/v1/events``: placements, preemption notices and completions as server-sent events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from crane.api.db import aware
from crane.api.deps import Ctx, StillValid
from crane.api.routers.miniclusters import PROBLEMS, STREAM_PROBLEMS
from crane.api.schemas import NAME_PATTERN, Event, Scope

router = APIRouter(tags=["events"], responses=PROBLEMS)
HEARTBEAT_SECONDS = 15.0


@router.get(
    "/events",
    operation_id="streamEvents",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Event per message"},
        **STREAM_PROBLEMS,
    },
)
async def stream(
    ctx: Ctx,
    request: Request,
    mini_cluster: Annotated[
        str | None, Query(alias="miniCluster", pattern=NAME_PATTERN, max_length=63)
    ] = None,
    cargo: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=63)] = None,
    follow: Annotated[
        bool, Query(description="false: send the kept events after Last-Event-ID, then close")
    ] = True,
    last_event_id: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            description="Resume after this event id; 0 replays every kept event (the last 1000)",
        ),
    ] = None,
) -> StreamingResponse:
    """Each message is ``id: <n>``, ``event: <type>`` and ``data: <Event JSON>``; comments keep
    it alive. With ``Last-Event-ID`` the kept events after it come first.

    An admin without ``?tenant=`` receives every tenant's events; a tenant's token, none from
    before its tenant was created (a deleted tenant's namesake inherits nothing). The stream
    ends when the token is revoked or expires (checked before each event and each keep-alive).
    A tenant holds at most ``max_streams_per_tenant`` streams and followed logs open: 429 past it.
    """
    if ctx.principal.scope is Scope.MINICLUSTER:
        if mini_cluster is not None:
            ctx.principal.check_minicluster(mini_cluster)
        mini_cluster = ctx.principal.minicluster
    every_tenant = ctx.principal.is_admin and "tenant" not in request.query_params
    tenant = ctx.tenant
    valid = StillValid(request, ctx.state)
    born = await run_in_threadpool(ctx.history_starts)

    def wanted(event: Event) -> bool:
        return (
            (every_tenant or event.tenant == tenant)
            and (born is None or aware(event.time) >= born)  # not a namesake tenant's past
            and (mini_cluster is None or event.mini_cluster == mini_cluster)
            and (cargo is None or event.cargo == cargo)
        )

    def message(seq: int, event: Event) -> str:
        data = event.model_dump_json(by_alias=True)
        return f"id: {seq}\nevent: {event.type.value}\ndata: {data}\n\n"

    async def body() -> AsyncIterator[str]:
        hub = ctx.state.hub
        with hub.subscribe_numbered() as queue:
            yield ": connected\n\n"
            sent = 0
            if last_event_id is not None:
                for seq, event in hub.since(last_event_id):
                    sent = seq
                    if wanted(event):
                        yield message(seq, event)
            if not follow:
                return
            while not await request.is_disconnected():
                try:  # asyncio.timeout: 3.11's wait_for may drop a cancellation (a client gone)
                    async with asyncio.timeout(HEARTBEAT_SECONDS):
                        seq, event = await queue.get()
                except TimeoutError:
                    if not await valid():
                        return
                    yield ": keep-alive\n\n"
                    continue
                if seq > sent and wanted(event):
                    if not await valid():
                        return
                    yield message(seq, event)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    stream = ctx.state.streams.take(ctx.principal).hold(body())
    return StreamingResponse(stream, media_type="text/event-stream", headers=headers)
