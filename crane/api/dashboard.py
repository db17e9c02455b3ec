"""The web dashboard at ``/``: static assets, a cookie session, and the headers that guard it.

The page is plain ES modules and CSS shipped in the wheel (``crane/api/static``): no build step,
no CDN. Signing in exchanges a token for an ``HttpOnly; SameSite=Strict`` session cookie
(``POST /ui/session``), so the token never sits in a URL or in script-readable storage, and
``EventSource`` (which cannot send an ``Authorization`` header) reaches ``/v1/events``.

:class:`CookieAuth` turns a valid session cookie into the session's bearer token for ``/v1``
calls that carry no ``Authorization`` header; every scope and tenant rule of the API applies
unchanged. Changes made with the cookie (POST, PUT, PATCH, DELETE) must also send the
``X-Crane-CSRF`` header, which a cross-site form or image cannot set, or they are refused 403.
:class:`crane.api.headers.SecurityHeaders` adds the page's CSP (no inline script),
``frame-ancestors 'none'``, ``nosniff`` and ``Referrer-Policy`` to its responses.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Header, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from crane.api.auth import Principal, authenticate
from crane.api.errors import CraneError, Forbidden, Unauthorized, problem_body
from crane.api.schemas import Wire

COOKIE = "crane_session"
CSRF_HEADER = "x-crane-csrf"
SESSION_SECONDS = 12 * 3600
SESSIONS_PER_TOKEN = 32
"""Live dashboard sessions one token may hold; a sign-in past it signs the oldest out."""
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STATIC = Path(str(resources.files("crane.api").joinpath("static")))
ASSETS = "/ui/assets"


@dataclass
class Sessions:
    """Signed-in browsers: a random session id -> the token it stands for, until it expires.

    Kept in memory: a restart of the server signs every browser out, and nothing about a
    session is ever written to disk. One token holds at most ``per_token`` sessions, so a
    script signing in in a loop cannot grow the server without end.
    """

    ttl: float = SESSION_SECONDS
    per_token: int = SESSIONS_PER_TOKEN
    _by_id: dict[str, tuple[str, float]] = field(default_factory=dict)

    def open(self, token: str) -> str:
        """A new session for ``token``; returns its id (the cookie's value). When ``token``
        already holds ``per_token`` sessions, the oldest of them is signed out."""
        self._expire()
        held = [s for s, (t, _) in self._by_id.items() if t == token]
        for sid in held[: max(0, len(held) - self.per_token + 1)]:
            del self._by_id[sid]
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = (token, time.monotonic() + self.ttl)
        return sid

    def token(self, sid: str) -> str | None:
        """The token of a live session, or None."""
        found = self._by_id.get(sid)
        if found is None:
            return None
        if found[1] <= time.monotonic():
            del self._by_id[sid]
            return None
        return found[0]

    def close(self, sid: str) -> None:
        """Forget a session (signing out)."""
        self._by_id.pop(sid, None)

    def _expire(self) -> None:
        now = time.monotonic()
        for sid in [s for s, (_, until) in self._by_id.items() if until <= now]:
            del self._by_id[sid]


def _cookie(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                return None
            morsel = jar.get(COOKIE)
            if morsel is not None:
                return morsel.value
    return None


def _has(scope: Scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope.get("headers", ()))


async def _problem(send: Send, err: CraneError) -> None:
    body = JSONResponse(problem_body(err), status_code=err.status).body
    await send(
        {
            "type": "http.response.start",
            "status": err.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class CookieAuth:
    """``/v1`` calls with the dashboard's session cookie and no ``Authorization`` header act
    with the session's token; changes also need the ``X-Crane-CSRF`` header (else 403)."""

    def __init__(self, app: ASGIApp, sessions: Sessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Act with the session's token on cookie-authenticated ``/v1`` calls; pass the rest on."""
        if (
            scope["type"] != "http"
            or not scope["path"].startswith("/v1/")
            or _has(scope, b"authorization")
        ):
            await self.app(scope, receive, send)
            return
        sid = _cookie(scope)
        token = self.sessions.token(sid) if sid else None
        if token is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] in MUTATING and not _has(scope, CSRF_HEADER.encode()):
            await _problem(
                send,
                Forbidden(
                    "a change made with the dashboard's session cookie needs the "
                    "X-Crane-CSRF header; API clients send 'Authorization: Bearer <token>'"
                ),
            )
            return
        # in place: the audit and metrics middleware outside read the same scope
        scope["headers"] = [*scope["headers"], (b"authorization", f"Bearer {token}".encode())]
        await self.app(scope, receive, send)


class SessionCreate(Wire):
    """Sign in: the token to exchange for a session cookie."""

    token: str = Field(min_length=1, max_length=300)


class SessionOut(Wire):
    """Whether a session is signed in and who it acts as (never the token)."""

    signed_in: bool
    token_id: str | None = None
    scope: str | None = None
    tenant: str | None = None
    mini_cluster: str | None = None


def _out(who: Principal) -> SessionOut:
    return SessionOut(
        signed_in=True,
        token_id=who.token_id,
        scope=who.scope.value,
        tenant=who.tenant,
        mini_cluster=who.minicluster,
    )


def _sessions(request: Request) -> Sessions:
    sessions: Sessions = request.app.state.dashboard_sessions
    return sessions


def _require_csrf(value: str | None) -> None:
    if not value:
        raise Forbidden("send the X-Crane-CSRF header with dashboard session requests")


router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    """The dashboard's single page (it routes by the URL's fragment)."""
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


@router.post("/ui/session", response_model=SessionOut, response_model_exclude_none=True)
async def sign_in(
    body: SessionCreate,
    request: Request,
    response: Response,
    csrf: Annotated[str | None, Header(alias="X-Crane-CSRF")] = None,
) -> SessionOut:
    """Exchange a token for an ``HttpOnly; SameSite=Strict`` session cookie."""
    _require_csrf(csrf)
    state = request.app.state.crane
    who = await run_in_threadpool(authenticate, state.db, f"Bearer {body.token.strip()}")
    sid = _sessions(request).open(body.token.strip())
    response.set_cookie(
        COOKIE,
        sid,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return _out(who)


@router.get("/ui/session", response_model=SessionOut, response_model_exclude_none=True)
async def current(request: Request) -> SessionOut:
    """Who the session cookie signs in as; ``signedIn: false`` when none is (or its token was
    revoked meanwhile): the page then shows the sign-in form."""
    sid = request.cookies.get(COOKIE)
    token = _sessions(request).token(sid) if sid else None
    if token is None:
        return SessionOut(signed_in=False)
    try:
        who = await run_in_threadpool(authenticate, request.app.state.crane.db, f"Bearer {token}")
    except Unauthorized:
        return SessionOut(signed_in=False)
    return _out(who)


@router.delete("/ui/session", status_code=204)
async def sign_out(
    request: Request, csrf: Annotated[str | None, Header(alias="X-Crane-CSRF")] = None
) -> Response:
    """Forget the session and clear its cookie."""
    _require_csrf(csrf)
    sid = request.cookies.get(COOKIE)
    if sid:
        _sessions(request).close(sid)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def install(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` and its assets under ``/ui/assets`` from ``app``."""
    sessions = Sessions()
    app.state.dashboard_sessions = sessions
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="dashboard-assets")
    app.add_middleware(CookieAuth, sessions=sessions)
