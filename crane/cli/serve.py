"""``crane serve``: run the REST API with uvicorn."""

from __future__ import annotations

import contextlib
from enum import StrEnum
from typing import Annotated, Any

import typer


class LogLevel(StrEnum):
    """uvicorn's log levels."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"
    TRACE = "trace"


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
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn log level.")] = LogLevel.INFO,
) -> None:
    """Serve the Crane API (migrates the database first; prints a new admin token once)."""
    import uvicorn

    from crane.api.app import create_app
    from crane.api.settings import ApiSettings
    from crane.cli.errors import FAILED
    from crane.cli.term import say
    from crane.cli.up import bind

    given: dict[str, Any] = {
        "host": host,
        "port": port,
        "database_url": database_url,
        "backend": str(backend) if backend else None,
        "bootstrap_token": bootstrap_token,
        "kubeconfig": kubeconfig,
    }
    settings = ApiSettings(**{k: v for k, v in given.items() if v is not None})
    # A taken port or a host that does not resolve: one line and exit 2, before the database
    # is touched (uvicorn logged its start and stop around the error and exited 3).
    sock = bind(settings.host, settings.port)
    _check_database(settings.database_url)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), log_level=str(log_level), proxy_headers=True)
    )
    where = f"[{settings.host}]" if ":" in settings.host else settings.host
    say(f"crane: serving the API on http://{where}:{sock.getsockname()[1]} (Ctrl-C stops it)")
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it handled
        server.run(sockets=[sock])
    if not server.started:  # its start-up failed (logged above), as uvicorn.run exits then
        raise SystemExit(FAILED)


def _check_database(url: str) -> None:
    """Open the database once before serving: a URL SQLAlchemy cannot read is a usage error, a
    database that cannot be reached a failure, each one line (never the URL: it may hold a
    password)."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from crane.api.db import make_engine
    from crane.cli.term import UsageError
    from crane.client import CraneError

    try:
        engine = make_engine(url)
    except OSError as exc:  # the SQLite file's folder cannot be made
        raise UsageError(
            f"cannot make the database's folder {exc.filename}: {exc.strerror}; "
            "fix --database-url or CRANE_DATABASE_URL"
        ) from None
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise UsageError(
            "the database URL (--database-url or CRANE_DATABASE_URL) is not a database URL: "
            "write sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise CraneError(
            f"cannot open the database (--database-url or CRANE_DATABASE_URL): {reason}; "
            "start it or fix the URL"
        ) from None
    finally:
        engine.dispose()
