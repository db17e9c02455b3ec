"""``crane cargo``: add, list, get, logs and delete Cargos (gangs placed all-or-nothing)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated

import typer

from crane.cli import columns, listing, names
from crane.cli.apply import create_from_files, delete_each
from crane.cli.objects import manifest
from crane.cli.options import (
    RECONNECT_FOR_DEFAULT,
    AllTenants,
    Files,
    Image,
    Level,
    MaybeOutput,
    NoHeaders,
    Output,
    ReconnectFor,
    Required,
    Timeout,
    Wait,
    Watch,
    Yes,
    client,
    connection_notice,
    pod_template,
)
from crane.cli.progress import wait_for
from crane.cli.render import Format, render
from crane.cli.term import UsageError, confirm, say

if TYPE_CHECKING:
    from crane.client import Cargo

CargoName = Annotated[str, typer.Argument(help="Cargo name.", autocompletion=names.cargo)]

app = typer.Typer(
    rich_markup_mode=None,
    help="Cargos: gangs of GPU containers, placed all-or-nothing.",
    no_args_is_help=True,
)


@app.command("add")
def add(
    minicluster: Annotated[
        str | None, typer.Argument(help="The MiniCluster (not with -f).")
    ] = None,
    files: Files = None,
    name: Annotated[str | None, typer.Option("--name", help="Default: <minicluster>-<n>.")] = None,
    replicas: Annotated[int, typer.Option("--replicas", help="Containers in the gang.")] = 1,
    gpus_per_replica: Annotated[int, typer.Option("--gpus-per-replica")] = 1,
    image: Image = None,
    level: Level = "node",
    required: Required = False,
    restart: Annotated[str, typer.Option("--restart", help="Never or OnFailure.")] = "Never",
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: MaybeOutput = None,
    command: Annotated[list[str] | None, typer.Argument(help="After --: the command.")] = None,
) -> None:
    """Add a cargo to a MiniCluster, or create the manifests of -f."""
    api = client()
    if files:
        if minicluster:
            raise UsageError("give a MiniCluster or -f, not both")
        created = create_from_files(api, files)
    else:
        if not minicluster:
            raise UsageError("give the MiniCluster: crane cargo add MC --image IMG -- CMD")
        spec = {
            "miniCluster": minicluster,
            "replicas": replicas,
            "gpusPerReplica": gpus_per_replica,
            "template": pod_template(image, command),
            "restartPolicy": restart,
            "topology": {"level": level, "mode": "Required" if required else "Preferred"},
        }
        cargo = api.create_cargo(spec, name=name)
        say(f"cargo/{cargo.name} created")
        created = [cargo]
    from crane.client import Cargo

    cargos = [c for c in created if isinstance(c, Cargo)]
    if wait:
        cargos = wait_for(api, [c.name for c in cargos], timeout)
    if output:
        render(cargos, output, columns.CARGO)


@app.command("list")
def list_(
    minicluster: Annotated[
        str | None,
        typer.Option("--mc", help="Only this MiniCluster's.", autocompletion=names.minicluster),
    ] = None,
    output: Output = Format.TABLE,
    all_tenants: AllTenants = False,
    watch: Watch = False,
    reconnect_for: ReconnectFor = RECONNECT_FOR_DEFAULT,
    no_headers: NoHeaders = False,
) -> None:
    """List cargos with their phase and nodes."""
    api = client()

    def fetch(tenant: str | None) -> list[Cargo]:
        return (client(tenant) if tenant else api).list_cargos(minicluster)

    def tenants() -> list[str]:
        return [t.name for t in api.list_tenants()]

    def poll() -> list[Cargo]:
        return listing.gather(fetch, tenants if all_tenants else None, None)

    cols = columns.with_tenant(columns.CARGO) if all_tenants else columns.CARGO
    listing.show(poll(), output, cols, headers=not no_headers)
    if watch:
        listing.watch(
            poll,
            output,
            cols,
            url=api.url,
            reconnect_for=reconnect_for,
            notice=connection_notice(api.url, reconnect_for),
        )


@app.command("get")
def get(
    name: CargoName,
    output: Output = Format.TABLE,
    watch: Watch = False,
    reconnect_for: ReconnectFor = RECONNECT_FOR_DEFAULT,
) -> None:
    """Show one cargo (-o yaml: a manifest `crane cargo add -f` takes back)."""
    api = client()
    cargo = api.get_cargo(name)
    if output in (Format.JSON, Format.YAML) or output.startswith("jsonpath="):
        render(manifest(cargo), output)
    else:
        render(cargo, output, columns.CARGO)
    if watch:
        listing.watch(
            lambda: [api.get_cargo(name)],
            output,
            columns.CARGO,
            url=api.url,
            reconnect_for=reconnect_for,
            notice=connection_notice(api.url, reconnect_for),
        )


@app.command("logs")
def logs(
    name: CargoName,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream new lines.")] = False,
    replica: Annotated[int, typer.Option("--replica", "-r", help="Which replica.")] = 0,
    all_replicas: Annotated[
        bool,
        typer.Option("--all-replicas", help="Every replica's log, lines prefixed [replica N]."),
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", help="Only the last N lines (of each replica).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only lines of the last DURATION: 30s, 10m, 1h, 1h30m."),
    ] = None,
) -> None:
    """Print a replica's log (or every replica's); -f follows until the replicas end."""
    seconds = parse_duration(since) if since is not None else None
    api = client()
    if not all_replicas:
        if not follow:
            typer.echo(api.logs(name, replica=replica, tail=tail, since=seconds), nl=False)
            return
        for line in api.follow_logs(name, replica=replica, tail=tail, since=seconds):
            typer.echo(line)
        return
    replicas = range(api.get_cargo(name).spec.replicas)
    if not follow:
        for i in replicas:
            for line in api.logs(name, replica=i, tail=tail, since=seconds).splitlines():
                typer.echo(f"[replica {i}] {line}")
        return
    follow_all(name, list(replicas), tail, seconds)


DURATION = re.compile(r"([0-9]{1,12})([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``30s``, ``10m``, ``1h30m`` or ``2d`` (as kubectl's)."""
    parts = DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"--since {text!r} is not a duration: use e.g. 30s, 10m, 1h or 1h30m")
    seconds = sum(int(n) * UNIT_SECONDS[u] for n, u in parts)
    if seconds < 1:
        raise UsageError("--since must be at least 1s")
    return seconds


MAX_FOLLOWED_REPLICAS = 128
"""Most replicas ``--all-replicas -f`` follows at once (one connection and thread each)."""


def follow_all(name: str, replicas: list[int], tail: int | None, since: int | None) -> None:
    """Follow several replicas at once, one thread each, whole lines prefixed by replica. A
    replica whose log cannot be followed (not started, the server's stream limit) is one
    ``[replica N] error: ...`` line on stderr while the others go on (never a thread's
    traceback); the exit code is then that error's."""
    import queue
    import threading

    from crane.cli.errors import describe

    if len(replicas) > MAX_FOLLOWED_REPLICAS:
        raise UsageError(
            f"--all-replicas -f follows each replica over its own connection; cargo {name} has "
            f"{len(replicas)} (at most {MAX_FOLLOWED_REPLICAS}): follow one with -r N, or drop -f"
        )
    lines: queue.Queue[tuple[int, str | Exception | None]] = queue.Queue()

    def pump(i: int) -> None:
        try:
            with client() as own:
                for line in own.follow_logs(name, replica=i, tail=tail, since=since):
                    lines.put((i, line))
        except Exception as exc:  # each is reported below, as the CLI reports any error
            lines.put((i, exc))
        finally:
            lines.put((i, None))

    for i in replicas:
        threading.Thread(target=pump, args=(i,), daemon=True).start()
    open_streams, code = len(replicas), 0
    while open_streams:
        i, item = lines.get()
        if item is None:
            open_streams -= 1
        elif isinstance(item, Exception):
            failure = describe(item)
            say(f"[replica {i}] {failure.line()}")
            code = code or failure.code
        else:
            typer.echo(f"[replica {i}] {item}")
    if code:
        raise typer.Exit(code)


@app.command("delete")
def delete(
    cargos: Annotated[
        list[str] | None, typer.Argument(help="Cargos to delete.", autocompletion=names.cargo)
    ] = None,
    files: Annotated[
        list[str] | None,
        typer.Option("--filename", "-f", help="Delete the Cargos of a manifest; - reads stdin."),
    ] = None,
    grace: Annotated[int | None, typer.Option("--grace-period", help="Seconds to stop.")] = None,
    yes: Yes = False,
) -> None:
    """Delete cargos (their containers get SIGTERM and the grace period)."""
    from crane.cli.manifest import acting_tenant, load_manifests

    manifests = load_manifests(files or [])
    for m in manifests:
        if m.kind != "Cargo":
            raise UsageError(
                f"{m.source}: {m.kind} {m.name} is no cargo; delete every object of the file "
                "with `crane mc delete -f FILE`"
            )
    targets = list(dict.fromkeys([*(cargos or []), *(m.name for m in manifests)]))
    if not targets:
        raise UsageError("give CARGO... or -f FILE")
    confirm(f"delete cargo {', '.join(targets)}?", yes=yes)
    api = client()
    api.tenant = acting_tenant(manifests, api.tenant)
    delete_each(targets, lambda name: api.delete_cargo(name, grace_period_seconds=grace), "cargo")
