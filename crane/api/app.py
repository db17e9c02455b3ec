"""The FastAPI application: ``/v1`` routers, problem+json errors, audit, metrics, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

import crane
from crane.api import dashboard, instances, problems
from crane.api.audit import AuditMiddleware
from crane.api.auth import bootstrap
from crane.api.backend import Backend
from crane.api.db import make_engine, migrate
from crane.api.deps import AppState
from crane.api.events import EventHub
from crane.api.factory import make_backend
from crane.api.headers import SecurityHeaders
from crane.api.hygiene import BodyLimit, CatchAll, HeadAsGet
from crane.api.logsafe import install as escape_logged_values
from crane.api.metrics import Metrics, MetricsMiddleware
from crane.api.routers import access, cargos, cluster, events, health, hosts, miniclusters
from crane.api.settings import ApiSettings
from crane.api.streams import StreamSlots


def create_app(settings: ApiSettings, backend: Backend | None = None) -> FastAPI:
    """The API for ``settings``; ``backend`` defaults to the configured one."""
    escape_logged_values()
    db = make_engine(settings.database_url)
    chosen = backend if backend is not None else make_backend(settings)
    hub = EventHub(chosen, db, settings.event_buffer)
    instance = instances.new_instance()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(migrate, db)
        minted = await run_in_threadpool(
            bootstrap, db, settings.default_tenant, settings.bootstrap_token
        )
        if minted is not None and settings.bootstrap_token is None:
            print(
                f"crane: admin token (shown once, keep it): {minted}", file=sys.stderr, flush=True
            )
        await run_in_threadpool(instances.beat, db, instance)
        await chosen.start()
        pump = asyncio.create_task(hub.run(), name="crane-events")
        alive = asyncio.create_task(instances.keep_alive(db, instance), name="crane-heartbeat")
        try:
            yield
        finally:
            for task in (pump, alive):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await chosen.close()
            with contextlib.suppress(SQLAlchemyError):
                await run_in_threadpool(instances.forget, db, instance)
            db.dispose()

    app = FastAPI(
        title="Crane API",
        version=crane.__version__,
        description="Elastic GPU MiniClusters and all-or-nothing Cargos.",
        lifespan=lifespan,
    )
    app.state.crane = AppState(
        settings, db, chosen, hub, StreamSlots(settings.max_streams_per_tenant), instance
    )
    problems.install(app)
    v1 = APIRouter(prefix="/v1")
    for router in (miniclusters, cargos, cluster, hosts, events, access):
        v1.include_router(router.router)
    app.include_router(v1)
    app.include_router(health.router)
    dashboard.install(app)
    metrics = Metrics()
    app.add_route("/metrics", metrics.render, include_in_schema=False)
    app.add_middleware(HeadAsGet)
    app.add_middleware(CatchAll)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(AuditMiddleware, engine=db)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(SecurityHeaders)  # outermost: on every answer, errors included
    return app
