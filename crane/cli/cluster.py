"""Cluster-wide views: ``crane nodes`` (the GPU map), ``top``, ``usage`` and ``events``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from crane.cli import names
from crane.cli.interrupt import INTERRUPTED
from crane.cli.options import (
    MAX_DAYS,
    RECONNECT_FOR_DEFAULT,
    NoHeaders,
    Output,
    ReconnectFor,
    client,
    connection_notice,
    duration,
    positive,
)
from crane.cli.render import Column, Format, cell, console, render
from crane.cli.term import is_tty, say

if TYPE_CHECKING:
    from crane.client import Client, Event, NodeOut, TenantShareStatus


def _gpus_in(state: str) -> Callable[[NodeOut], int]:
    """A node's GPUs in ``state`` (the GPU map's rule); the map's module loads on first use."""

    def count(node: NodeOut) -> int:
        from crane.cli.gpumap import gpu_state

        return sum(1 for g in node.gpus if gpu_state(g) == state)

    return count


NODE_COLUMNS = [
    Column("name", lambda n: n.name),
    Column("gpu", lambda n: n.gpu_product),
    Column("gpus", lambda n: n.gpu_count),
    Column("free", _gpus_in("free")),
    Column("reserved", lambda n: sum(1 for g in n.gpus if g.reserved_for)),
    Column("in-use", _gpus_in("in-use")),
    Column("borrowed", _gpus_in("borrowed")),
    Column("busy", lambda n: sum(1 for g in n.gpus if g.busy)),
    Column("ready", lambda n: n.ready),
]


def nodes(output: Output = Format.TABLE) -> None:
    """The GPU map: one row per node, one cell per GPU with its MiniCluster's letter and state;
    for an admin, then each tenant's guaranteed GPUs, use and borrowing per GPU type."""
    api = client()
    found = api.nodes()
    if output != Format.TABLE:
        render(found, output, NODE_COLUMNS)
        return
    if not found:
        say("no GPU nodes yet: add one with `crane node add` (Docker) or label Kubernetes nodes")
        return
    from crane.cli.gpumap import gpu_map

    console().print(gpu_map(found))
    shares = _tenant_shares(api)
    if shares:
        render(shares, Format.TABLE, SHARE_COLUMNS)


SHARE_COLUMNS = [
    Column("tenant", lambda row: row[0]),
    Column("gpu type", lambda row: row[1].gpu_type),
    Column("guaranteed", lambda row: row[1].nominal),
    Column("in use", lambda row: row[1].in_use),
    Column("borrowing", lambda row: row[1].borrowing),
]


def _tenant_shares(api: Client) -> list[tuple[str, TenantShareStatus]]:
    """(tenant, share) of every tenant with shares; none for a token that is not an admin's
    (tenants' shares are an admin's view)."""
    from crane.client import Forbidden

    try:
        tenants = api.list_tenants()
    except Forbidden:
        return []
    return [(t.name, share) for t in tenants for share in t.shares]


def top(
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            help="Between refreshes: seconds or a duration such as 5s, 1m.",
            metavar="DURATION",
            parser=duration(3600),
        ),
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print once and exit.")] = False,
) -> None:
    """MiniClusters with reserved / in-use / borrowed GPUs; refreshes live on a terminal."""
    from rich.live import Live

    from crane.cli.gpumap import top_table

    api = client()
    if once or not is_tty():
        console().print(top_table(api.list_miniclusters()))
        return
    with Live(top_table(api.list_miniclusters()), console=console(), screen=False) as live:
        while True:  # Ctrl-C: exit 130 (crane.cli.main)
            time.sleep(interval)
            live.update(top_table(api.list_miniclusters()))


def usage(
    days: Annotated[
        float,
        typer.Option("--days", help="Window: the last N days.", parser=positive(MAX_DAYS)),
    ] = 30.0,
    cargos: Annotated[
        bool,
        typer.Option(
            "--cargos", help="One row per cargo: start, end, state, exit code, GPU-hours (sacct)."
        ),
    ] = False,
    output: Output = Format.TABLE,
) -> None:
    """GPU time per tenant and MiniCluster, or per cargo with --cargos."""
    until = datetime.now(UTC)
    report = client().usage(since=until - timedelta(days=days), until=until, by_cargo=cargos)
    if output != Format.TABLE:
        render(report, output)
        return
    if cargos:
        render(
            report.items,
            output,
            [
                Column("tenant", lambda r: r.tenant),
                Column("minicluster", lambda r: r.mini_cluster),
                Column("cargo", lambda r: r.cargo),
                Column("start", lambda r: r.started_at),
                Column("end", lambda r: r.ended_at or "running"),
                Column("state", lambda r: r.state or "-"),
                Column("exit", lambda r: "-" if r.exit_code is None else r.exit_code),
                Column("gpu-hours", lambda r: f"{r.gpu_seconds / 3600:.2f}"),
            ],
        )
        say(f"{report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC")
        return
    render(
        report.items,
        output,
        [
            Column("tenant", lambda r: r.tenant),
            Column("minicluster", lambda r: r.mini_cluster),
            Column("gpu-hours", lambda r: f"{r.gpu_seconds / 3600:.2f}"),
            Column("cargos", lambda r: r.cargos),
        ],
    )
    say(f"{report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC")


def events(
    minicluster: Annotated[
        str | None,
        typer.Option("--mc", help="Only this MiniCluster's.", autocompletion=names.minicluster),
    ] = None,
    cargo: Annotated[
        str | None, typer.Option("--cargo", help="Only this cargo's.", autocompletion=names.cargo)
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="After the history, follow new events.")
    ] = False,
    reconnect_for: ReconnectFor = RECONNECT_FOR_DEFAULT,
    output: Output = Format.TABLE,
    no_headers: NoHeaders = False,
) -> None:
    """Recent events (admitted, placed, preempted, ...), oldest first; -w then follows them."""
    columns = [
        Column("time", lambda e: e.time.strftime("%H:%M:%S")),
        Column("type", lambda e: str(e.type)),
        Column("minicluster", lambda e: e.mini_cluster),
        Column("cargo", lambda e: e.cargo),
        Column("gpus", lambda e: e.gpus),
        Column("message", lambda e: e.message),
    ]
    table = output in (Format.TABLE, Format.WIDE)
    api = client()

    stream = api.events(
        last_event_id="0",
        mini_cluster=minicluster,
        cargo=cargo,
        follow=watch,
        give_up_after=reconnect_for,
        on_connection=connection_notice(api.url, reconnect_for),
    )
    try:
        _print_events(stream, columns, output, headers=table and not no_headers)
    except KeyboardInterrupt:
        if not watch:
            raise  # 'interrupted', exit 130 (crane.cli.main)
        sys.exit(INTERRUPTED)  # how a watch ends: quietly, as every -w


def _print_events(
    stream: Iterator[Event], columns: list[Column], output: str, *, headers: bool
) -> None:
    """Each event as it comes: a table row (the header once the server answered with an
    event) or a document (``---`` between YAML ones, as kubectl -w -o yaml)."""
    first = True
    for event in stream:
        if output in (Format.TABLE, Format.WIDE):
            if first and headers:
                typer.echo("  ".join(c.header.upper() for c in columns))
            typer.echo("  ".join(cell(c.get(event)) for c in columns))
        else:
            if output == Format.YAML and not first:
                typer.echo("---")
            render(event, output)
        first = False
        sys.stdout.flush()
