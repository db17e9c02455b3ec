"""``crane node add|list|remove``: the Docker hosts of plain-Docker mode (in its database)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from platformdirs import user_data_dir
from sqlalchemy import Engine
from sqlmodel import Session

from crane.cli.options import Output
from crane.cli.render import Column, Format, render
from crane.cli.term import say

node_app = typer.Typer(help="Docker hosts of plain-Docker mode (crane up).", no_args_is_help=True)

DataDir = Annotated[Path | None, typer.Option(help="crane up's data directory.")]


def _db(data_dir: Path | None) -> Engine:
    from crane.api.db import make_engine, migrate

    engine = make_engine(f"sqlite:///{(data_dir or Path(user_data_dir('crane'))) / 'crane.db'}")
    migrate(engine)
    return engine


@node_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Node name, e.g. gpu-02.")],
    docker_host: Annotated[str, typer.Option(help="tcp://host:2376 or unix:///path.sock")],
    gpus: Annotated[int, typer.Option(help="GPUs of the host.")] = 0,
    gpu_type: Annotated[str, typer.Option(help="GPU type, e.g. H100.")] = "",
    islands: Annotated[str, typer.Option(help="GPU islands, e.g. 0-3,4-7.")] = "",
    label: Annotated[list[str] | None, typer.Option(help="Topology label k=v (rack=r1).")] = None,
    tls_ca: Annotated[str | None, typer.Option(help="CA certificate.")] = None,
    tls_cert: Annotated[str | None, typer.Option(help="Client certificate.")] = None,
    tls_key: Annotated[str | None, typer.Option(help="Client key.")] = None,
    data_dir: DataDir = None,
) -> None:
    """Add (or update) a Docker host; its labels act as topology levels."""
    from crane.cli.up import _labels
    from crane.docker.hosts import HostSpec
    from crane.docker.local import register

    spec = HostSpec(
        name=name,
        url=docker_host,
        gpu_product=gpu_type,
        gpu_count=gpus,
        islands=islands,
        labels=_labels(label),
        tls_ca=tls_ca,
        tls_cert=tls_cert,
        tls_key=tls_key,
        simulated=True,
    )
    register(_db(data_dir), spec)
    say(f"node {name} added: {gpus} x {gpu_type or 'no GPU'} at {docker_host}")


@node_app.command("list")
def list_(output: Output = Format.TABLE, data_dir: DataDir = None) -> None:
    """Docker hosts with GPUs, labels and state."""
    from crane.docker import store

    with Session(_db(data_dir)) as s:
        rows = [
            {
                "name": r.name,
                "url": r.host().url,
                "gpus": r.host().gpu_count,
                "gpuType": r.host().gpu_product,
                "labels": r.host().labels,
                "state": "draining" if r.draining else "active",
            }
            for r in store.hosts(s)
        ]
    render(
        rows,
        output,
        [
            Column("NAME", lambda r: r["name"]),
            Column("URL", lambda r: r["url"]),
            Column("GPUS", lambda r: r["gpus"]),
            Column("TYPE", lambda r: r["gpuType"]),
            Column("LABELS", lambda r: r["labels"]),
            Column("STATE", lambda r: r["state"]),
        ],
    )


@node_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="Node to remove.")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the drain.")] = 120,
    data_dir: DataDir = None,
) -> None:
    """Drain a host (its cargos move or fail per restart policy), then forget it.

    The running ``crane up`` performs the drain; this waits until it is done.
    """
    from crane.docker.store import HostRow

    db = _db(data_dir)
    with Session(db) as s:
        row = s.get(HostRow, name)
        if row is None:
            raise typer.BadParameter(f"no node {name!r}: see `crane node list`")
        row.draining = True
        s.add(row)
        s.commit()
    say(f"draining {name} ...")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with Session(db) as s:
            if s.get(HostRow, name) is None:
                say(f"node {name} removed")
                return
        time.sleep(0.5)
    raise typer.BadParameter(f"{name} is still draining after {timeout}s: is `crane up` running?")
