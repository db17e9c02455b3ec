"""``crane cargo``: add, list, get, logs and delete Cargos (gangs placed all-or-nothing)."""

from __future__ import annotations

from typing import Annotated

import typer

from crane.cli import columns
from crane.cli.apply import create_from_files
from crane.cli.options import (
    Files,
    Image,
    Level,
    MaybeOutput,
    Output,
    Required,
    Timeout,
    Wait,
    Yes,
    client,
    pod_template,
)
from crane.cli.progress import wait_for
from crane.cli.render import Format, render
from crane.cli.term import UsageError, confirm, say
from crane.client import Cargo

app = typer.Typer(
    help="Cargos: gangs of GPU containers, placed all-or-nothing.", no_args_is_help=True
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
    cargos = [c for c in created if isinstance(c, Cargo)]
    if wait:
        cargos = wait_for(api, [c.name for c in cargos], timeout)
    if output:
        render(cargos, output, columns.CARGO)


@app.command("list")
def list_(
    minicluster: Annotated[
        str | None, typer.Option("--mc", help="Only this MiniCluster's.")
    ] = None,
    output: Output = Format.TABLE,
) -> None:
    """List cargos with their phase and nodes."""
    render(client().list_cargos(minicluster), output, columns.CARGO)


@app.command("get")
def get(name: Annotated[str, typer.Argument()], output: Output = Format.TABLE) -> None:
    """Show one cargo (-o yaml for its placement and conditions)."""
    render(client().get_cargo(name), output, columns.CARGO)


@app.command("logs")
def logs(
    name: Annotated[str, typer.Argument()],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Stream new lines.")] = False,
    replica: Annotated[int, typer.Option("--replica", "-r", help="Which replica.")] = 0,
    tail: Annotated[int | None, typer.Option("--tail", help="Only the last N lines.")] = None,
) -> None:
    """Print a replica's log; -f follows it until the replica ends."""
    api = client()
    if not follow:
        typer.echo(api.logs(name, replica=replica, tail=tail), nl=False)
        return
    for line in api.follow_logs(name, replica=replica, tail=tail):
        typer.echo(line)


@app.command("delete")
def delete(
    names: Annotated[list[str], typer.Argument(help="Cargos to delete.")],
    grace: Annotated[int | None, typer.Option("--grace-period", help="Seconds to stop.")] = None,
    yes: Yes = False,
) -> None:
    """Delete cargos (their containers get SIGTERM and the grace period)."""
    confirm(f"delete cargo {', '.join(names)}?", yes=yes)
    api = client()
    for name in names:
        api.delete_cargo(name, grace_period_seconds=grace)
        say(f"cargo/{name} deleted")
