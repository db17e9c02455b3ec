"""``crane node add|list|remove``: the Docker hosts of plain-Docker mode, through the API."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from crane.cli.options import YEAR_SECONDS, Output, Yes, client, duration
from crane.cli.render import Column, Format, render
from crane.cli.term import confirm, say

if TYPE_CHECKING:
    from crane.client import Host

node_app = typer.Typer(
    rich_markup_mode=None, help="Docker hosts of plain-Docker mode (admin).", no_args_is_help=True
)

COLUMNS = [
    Column("NAME", lambda h: h.name),
    Column("DOCKER HOST", lambda h: h.docker_host),
    Column("ADDRESS", lambda h: h.address),
    Column("GPUS", lambda h: h.gpus),
    Column("TYPE", lambda h: h.gpu_type),
    Column("LABELS", lambda h: [f"{k}={v}" for k, v in h.labels.items()]),
    Column("STATE", lambda h: h.state.value),
    Column("READY", lambda h: h.ready),
    Column("CARGOS", lambda h: h.cargos),
]


def parse_labels(items: list[str] | None) -> dict[str, str]:
    """``KEY=VALUE`` items as a dict; raises :class:`typer.BadParameter` for one without ``=``."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"label {item!r} is not KEY=VALUE (e.g. rack=r1)")
        out[key] = value
    return out


@node_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Node name, e.g. gpu-02.")],
    docker_host: Annotated[str, typer.Option(help="tcp://host:2376 or unix:///path.sock")],
    gpus: Annotated[int, typer.Option(help="GPUs of the host.")] = 0,
    gpu_type: Annotated[str, typer.Option(help="GPU type, e.g. H100.")] = "",
    islands: Annotated[str, typer.Option(help="GPU islands, e.g. 0-3,4-7.")] = "",
    label: Annotated[list[str] | None, typer.Option(help="Topology label k=v (rack=r1).")] = None,
    tls_ca: Annotated[str | None, typer.Option(help="CA certificate (path on the server).")] = None,
    tls_cert: Annotated[str | None, typer.Option(help="Client certificate.")] = None,
    tls_key: Annotated[str | None, typer.Option(help="Client key.")] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="IP or DNS name other hosts reach this one by: its MiniCluster containers "
            "then use host networking."
        ),
    ] = None,
) -> None:
    """Add a Docker host; its labels act as topology levels."""
    host = client().add_host(
        {
            "name": name,
            "dockerHost": docker_host,
            "gpus": gpus,
            "gpuType": gpu_type,
            "islands": islands,
            "labels": parse_labels(label),
            "tlsCa": tls_ca,
            "tlsCert": tls_cert,
            "tlsKey": tls_key,
            "address": address,
        }
    )
    ready = "" if host.ready else f" (not reachable yet: {host.message})"
    say(f"node/{name} added: {gpus} x {gpu_type or 'no GPU'} at {docker_host}{ready}")


@node_app.command("list")
def list_(output: Output = Format.TABLE) -> None:
    """Docker hosts with their address, GPUs, labels, state and the cargos on them."""
    render(client().list_hosts(), output, COLUMNS)


@node_app.command("remove")
def remove(
    name: Annotated[str, typer.Argument(help="Node to remove.")],
    preempt: Annotated[
        bool,
        typer.Option(
            "--preempt", help="Move OnFailure cargos now and fail Never ones, instead of waiting."
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(
            help="How long to wait for the drain: seconds or a duration such as 30s, 5m, 1h.",
            metavar="DURATION",
            parser=duration(YEAR_SECONDS),
        ),
    ] = 300,
    yes: Yes = False,
) -> None:
    """Drain a host (no new placements), wait until its cargos are gone, then forget it."""
    from crane.client import CraneError, NotFound

    confirm(f"remove node {name}?", yes=yes)
    api = client()
    host: Host = api.remove_host(name, preempt=preempt)
    say(f"draining node/{name}: {host.cargos} cargos on it")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            host = api.get_host(name)
        except NotFound:
            say(f"node/{name} removed")
            return
        time.sleep(0.5)
    hint = "" if host.preempt else f", or move them now: crane node remove {name} --preempt --yes"
    raise CraneError(
        f"node/{name} is still draining after {timeout:g}s with {host.cargos} cargos on it: "
        f"it takes no new cargos; wait{hint}"
    )
