"""``crane serve``: run the REST API with uvicorn."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer


class Backend(StrEnum):
    """The API's backends (as ``crane.api.settings.BackendKind``, without importing the API)."""

    KUBE = "kube"
    DOCKER = "docker"


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (env CRANE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (env CRANE_PORT).")] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL; default SQLite in the user data dir (env CRANE_DATABASE_URL)."
        ),
    ] = None,
    backend: Annotated[
        Backend | None, typer.Option(help="Where cargos run (env CRANE_BACKEND).")
    ] = None,
    bootstrap_token: Annotated[
        str | None,
        typer.Option(
            help="Admin token crane_<id>_<secret> to create if absent (env CRANE_BOOTSTRAP_TOKEN)."
        ),
    ] = None,
    kubeconfig: Annotated[
        str | None, typer.Option(help="Kubeconfig file (env CRANE_KUBECONFIG).")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the Crane API (migrates the database first; prints a new admin token once)."""
    import uvicorn

    from crane.api.app import create_app
    from crane.api.settings import ApiSettings

    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "database_url": database_url,
        "backend": str(backend) if backend else None,
        "bootstrap_token": bootstrap_token,
        "kubeconfig": kubeconfig,
    }
    settings = ApiSettings(**{k: v for k, v in given.items() if v is not None})
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        proxy_headers=True,
    )
