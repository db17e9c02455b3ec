"""``/healthz`` (the process answers) and ``/readyz`` (database and backend answer)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from crane.api.deps import State
from crane.api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: 200 while the process answers."""
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Health,
    responses={503: {"model": Health, "description": "database or backend unavailable"}},
)
async def readyz(state: State) -> JSONResponse:
    """Readiness: 200 when the database and the backend answer, else 503 with the reason."""

    def ping() -> None:
        with state.db.connect() as conn:
            conn.execute(text("SELECT 1"))

    reason: str | None
    try:
        await run_in_threadpool(ping)
    except Exception as exc:
        reason = f"database unreachable ({type(exc).__name__}): check CRANE_DATABASE_URL"
    else:
        reason = await state.backend.ready()
    if reason is not None:
        return JSONResponse(Health(status="unavailable", detail=reason).model_dump(), 503)
    detail = f"backend {state.backend.name}"
    return JSONResponse(Health(status="ok", detail=detail).model_dump(), 200)
