"""Render every error as ``application/problem+json`` (RFC 9457) with a detail to act on."""

from __future__ import annotations

import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Match, Route

from crane.api.errors import CraneError, FieldError, Invalid, problem_body

MEDIA = "application/problem+json"


def _response(
    request: Request, err: CraneError, headers: dict[str, str] | None = None
) -> JSONResponse:
    request.state.error_detail = err.detail
    if err.status == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    return JSONResponse(
        problem_body(err), status_code=err.status, media_type=MEDIA, headers=headers
    )


def _field(loc: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _validation(exc: RequestValidationError) -> Invalid:
    fields = [
        FieldError(list(e["loc"]), str(e["msg"]).removeprefix("Value error, "))
        for e in exc.errors()
    ]
    summary = "; ".join(f"{_field(tuple(f.loc))}: {f.msg}" for f in fields[:3])
    more = f" (and {len(fields) - 3} more)" if len(fields) > 3 else ""
    return Invalid(f"{summary}{more}. Fix the request and send it again.", fields)


def _unreadable(request: Request, exc: RequestValidationError) -> CraneError | None:
    """A 400 saying why the body could not be read as JSON at all, if that is what failed: sent
    with another Content-Type (or none), or not valid JSON. Else None: the fields are at fault."""
    body_errors = [e for e in exc.errors() if tuple(e["loc"][:1]) == ("body",)]
    if not body_errors:
        return None
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    json_media = media == "application/json" or media.endswith("+json")
    length = request.headers.get("content-length", "0")
    sent = (length.isdigit() and int(length) > 0) or "transfer-encoding" in request.headers
    if sent and not json_media:
        got = f"Content-Type {media!r}" if media else "no Content-Type"
        return CraneError(
            f"the body must be JSON sent with Content-Type: application/json; this request has "
            f"{got}",
            400,
            "Bad request",
        )
    broken = [e for e in body_errors if e["type"] == "json_invalid"]
    if broken:
        why = str((broken[0].get("ctx") or {}).get("error", "")) or broken[0]["msg"]
        return CraneError(f"the body is not valid JSON: {why}", 400, "Bad request")
    return None


def install(app: FastAPI) -> None:
    """Answer Crane's errors, validation errors and HTTP errors as problem+json on ``app``."""

    @app.exception_handler(CraneError)
    async def _crane(request: Request, exc: CraneError) -> JSONResponse:
        return _response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _response(request, _unreadable(request, exc) or _validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}: see /docs for the API"
        headers = None
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            detail = (
                f"{request.method} is not allowed on {request.url.path}: use "
                f"{', '.join(allowed)} (see /docs)"
            )
            headers = {"Allow": ", ".join(allowed)}
        title = TITLES.get(exc.status_code, "Bad request" if exc.status_code == 400 else "Error")
        return _response(request, CraneError(detail, exc.status_code, title), headers)


TITLES = {404: "Not found", 405: "Method not allowed", 413: "Content too large"}


def allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI documents at this request's path, plus HEAD where GET is (the
    ``Allow`` header of a 405); routes outside the OpenAPI answer for themselves."""
    methods: set[str] = set()
    matching = [
        (literal, documented)
        for pattern, (literal, documented) in _templates(request.app).items()
        if pattern.fullmatch(request.url.path)
    ]
    if matching:
        most = max(literal for literal, _ in matching)
        for literal, documented in matching:
            if literal == most:  # /x/{name}:grow, not /x/{name}, for /x/a:grow
                methods |= documented
    for route in request.app.router.routes:
        if isinstance(route, Route) and route.matches(request.scope)[0] is not Match.NONE:
            methods |= set(route.methods or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


def _templates(app: FastAPI) -> dict[re.Pattern[str], tuple[int, set[str]]]:
    """Per OpenAPI path template: its regex, its count of literal characters, its methods."""
    cached: dict[re.Pattern[str], tuple[int, set[str]]] | None = getattr(
        app.state, "path_methods", None
    )
    if cached is None:
        cached = {}
        for path, item in app.openapi().get("paths", {}).items():
            regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path))
            literal = len(re.sub(r"\{[^/]+?\}", "", path))
            methods = {m.upper() for m in item if m.upper() in HTTP_METHODS}
            cached[re.compile(regex)] = (literal, methods)
        app.state.path_methods = cached
    return cached


HTTP_METHODS = {"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"}
