"""``crane up``: the API, the reconciler, SQLite and the local Docker engine, in one command."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from platformdirs import user_data_dir

from crane.cli.node import parse_labels
from crane.cli.term import say


def up(
    gpus: Annotated[int | None, typer.Option(help="Declare N simulated GPUs (no NVML).")] = None,
    gpu_type: Annotated[
        str | None, typer.Option(help="GPU type of declared GPUs, e.g. H100.")
    ] = None,
    label: Annotated[
        list[str] | None, typer.Option(help="Topology label k=v of node local.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address the API binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API binds.")] = 8080,
    docker_host: Annotated[str | None, typer.Option(help="Local Docker engine URL.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the database and token live.")
    ] = None,
) -> None:
    """Run Crane on this machine's Docker engine; Ctrl-C stops Crane, containers keep running."""
    import uvicorn

    from crane.api.app import create_app
    from crane.api.db import make_engine, migrate
    from crane.api.settings import ApiSettings, BackendKind
    from crane.client import Context, load_config, save_config
    from crane.docker.api_backend import DockerBackend
    from crane.docker.local import admin_token, local_host, register

    data = data_dir or Path(user_data_dir("crane"))
    url = f"sqlite:///{data / 'crane.db'}"
    token, first = admin_token(data)
    settings = ApiSettings(
        database_url=url, backend=BackendKind.DOCKER, host=host, port=port, bootstrap_token=token
    )
    db = make_engine(url)
    migrate(db)
    docker_url = docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    spec = local_host(docker_url, gpus, gpu_type, parse_labels(label))
    register(db, spec)
    db.dispose()
    api_url = f"http://{host}:{port}"
    config = load_config()
    config.contexts["local"] = Context(url=api_url, token=token)
    config.current_context = "local"
    save_config(config)
    gpus_text = f"{spec.gpu_count} x {spec.gpu_product}" if spec.gpu_count else "no GPUs"
    kind = "declared" if spec.simulated else "found with NVML"
    say(f"crane: node local: {gpus_text} ({kind}) on {docker_url}")
    say(f"crane: API at {api_url} (CLI context 'local' saved; try `crane mc create`)")
    if first:
        say(f"crane: admin token (also in {data / 'admin-token'}): {token}")
    backend = DockerBackend(settings)
    uvicorn.run(create_app(settings, backend), host=host, port=port, log_level="warning")
