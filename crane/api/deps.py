"""Request dependencies: the app's state, the caller, the tenant it acts in, list paging."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from crane.api.auth import Principal, authenticate
from crane.api.backend import Backend
from crane.api.db import TenantRow, aware
from crane.api.errors import NotFound, Unauthorized
from crane.api.events import EventHub
from crane.api.idempotency import run_once
from crane.api.schemas import NAME_PATTERN
from crane.api.settings import ApiSettings
from crane.api.streams import StreamSlots
from crane.api.tenancy import Viewer


@dataclass
class AppState:
    """What the routes share: settings, database, backend, event hub, open streams, and this
    server's instance id (``crane.api.instances``)."""

    settings: ApiSettings
    db: Engine
    backend: Backend
    hub: EventHub
    streams: StreamSlots
    instance: str


def app_state(request: Request) -> AppState:
    """The app's :class:`AppState` (a dependency)."""
    state: AppState = request.app.state.crane
    return state


State = Annotated[AppState, Depends(app_state)]


async def principal(
    request: Request,
    state: State,
    authorization: Annotated[str | None, Header(description="Bearer <token>")] = None,
) -> Principal:
    """The caller authenticated by its bearer token (a dependency); 401 without a valid one."""
    who = await run_in_threadpool(authenticate, state.db, authorization)
    request.state.principal = who
    return who


Caller = Annotated[Principal, Depends(principal)]


class StillValid:
    """Whether the token of a long-lived answer (an event stream, a followed log) still works:
    a token revoked or expired while the answer streams ends it, as it ends every other call.

    The token is looked up again at most once per ``every`` seconds (0: at every check).
    """

    def __init__(self, request: Request, state: AppState, every: float = 0.0) -> None:
        self._db = state.db
        self._header = request.headers.get("authorization")
        self._every = every
        self._checked = time.monotonic()

    async def __call__(self) -> bool:
        """False once the caller's token no longer authenticates."""
        now = time.monotonic()
        if now - self._checked < self._every:
            return True
        self._checked = now
        try:
            await run_in_threadpool(authenticate, self._db, self._header)
        except Unauthorized:
            return False
        return True


def tenant_exists(db: Engine, name: str) -> bool:
    """Whether tenant ``name`` exists now (blocking: a database read)."""
    with Session(db) as session:
        return session.get(TenantRow, name) is not None


@dataclass
class Context:
    """A tenant-scoped call: who, in which tenant, against what."""

    principal: Principal
    tenant: str
    state: AppState

    @property
    def backend(self) -> Backend:
        """The backend calls go to."""
        return self.state.backend

    @property
    def viewer(self) -> Viewer:
        """What this caller may see by name (see :mod:`crane.api.tenancy`)."""
        return Viewer(self.principal, self.tenant)

    def history_starts(self) -> datetime | None:
        """When the past this caller may read begins (blocking: a database read). An admin
        reads all of it; a tenant's token, what happened since its tenant was created, so a
        tenant made again under a deleted one's name inherits none of its events or usage."""
        if self.principal.is_admin:
            return None
        with Session(self.state.db) as session:
            row = session.get(TenantRow, self.tenant)
        return aware(row.created_at) if row is not None else None

    @property
    def idempotency_principal(self) -> str:
        """Whose idempotency keys these are: ``tenant/token id``."""
        return f"{self.tenant}/{self.principal.token_id}"

    async def once(
        self, key: str | None, fp: str, call: Callable[[], Awaitable[tuple[int, Any]]]
    ) -> Response:
        """``call`` at most once per ``Idempotency-Key`` of this caller (:func:`run_once`)."""
        principal = self.idempotency_principal
        return await run_once(self.state.db, self.state.instance, principal, key, fp, call)


async def context(
    request: Request,
    state: State,
    who: Caller,
    tenant: Annotated[
        str | None,
        Query(
            pattern=NAME_PATTERN,
            max_length=63,
            description="the tenant to act in; default: the token's (admin: 'default')",
        ),
    ] = None,
) -> Context:
    """The call's :class:`Context` (a dependency): the caller and the tenant it acts in.

    Raises NotFound when that tenant does not exist (or is not the caller's). The database is
    asked at every call, never a cache: another server on the same database may have deleted
    the tenant a moment ago.
    """
    name = who.tenant_for(tenant, state.settings.default_tenant)
    if not await run_in_threadpool(tenant_exists, state.db, name):
        raise NotFound(f"tenant {name!r} not found: an admin creates it with POST /v1/tenants")
    request.state.tenant = name
    return Context(who, name, state)


Ctx = Annotated[Context, Depends(context)]


@dataclass(frozen=True)
class Paging:
    """One page of a list: at most ``limit`` items after skipping ``offset``."""

    limit: int
    offset: int


def paging(
    limit: Annotated[int, Query(ge=1, le=1000, description="items per page")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="items to skip")] = 0,
) -> Paging:
    """The ``limit`` and ``offset`` query parameters as a :class:`Paging` (a dependency)."""
    return Paging(limit, offset)


Pages = Annotated[Paging, Depends(paging)]

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="a retry with the same key returns the first answer and does nothing twice",
    ),
]
