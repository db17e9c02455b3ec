"""Render every error as ``application/problem+json`` (RFC 9457) with a detail to act on."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from crane.api.errors import CraneError, FieldError, Invalid, problem_body

log = logging.getLogger("crane.api")
MEDIA = "application/problem+json"


def _response(request: Request, err: CraneError) -> JSONResponse:
    request.state.error_detail = err.detail
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
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


def install(app: FastAPI) -> None:
    @app.exception_handler(CraneError)
    async def _crane(request: Request, exc: CraneError) -> JSONResponse:
        return _response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _response(request, _validation(exc))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = str(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}: see /docs for the API"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}: see /docs"
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
        return _response(request, CraneError(detail, exc.status_code, title))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        err = CraneError(
            f"internal error ({type(exc).__name__}); the server log has the details", 500
        )
        return _response(request, err)
