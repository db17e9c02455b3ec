"""``crane mc``: create, list, get, scale, hold, release, grow, shrink, explain and delete
MiniClusters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from crane.cli import columns, listing, names
from crane.cli.apply import create_from_files, delete_in_turn
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
    Selector,
    Timeout,
    Wait,
    Watch,
    Yes,
    client,
    connection_notice,
    pod_template,
)
from crane.cli.progress import wait_for
from crane.cli.render import Column, Format, printable, render
from crane.cli.term import UsageError, confirm, say

if TYPE_CHECKING:
    from crane.client import MiniCluster

app = typer.Typer(
    rich_markup_mode=None,
    help="MiniClusters: elastic, topology-shaped shares of the GPUs.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="MiniCluster name.", autocompletion=names.minicluster)]


@app.command("create")
def create(
    name: Annotated[str | None, typer.Argument(help="Name (not with -f).")] = None,
    files: Files = None,
    gpu_type: Annotated[str | None, typer.Option("--gpu-type", help="H100, A100, ...")] = None,
    min_gpus: Annotated[int, typer.Option("--min", help="GPUs guaranteed (reserved).")] = 0,
    max_gpus: Annotated[
        int | None, typer.Option("--max", help="GPUs at most (default: min).")
    ] = None,
    level: Level = "node",
    required: Required = False,
    priority: Annotated[int, typer.Option("--priority")] = 0,
    replicas: Annotated[
        int | None, typer.Option("--replicas", help="Template cargos to keep (needs --image).")
    ] = None,
    cargo_replicas: Annotated[
        int, typer.Option("--cargo-replicas", help="Containers per cargo.")
    ] = 1,
    gpus_per_replica: Annotated[int, typer.Option("--gpus-per-replica")] = 1,
    image: Image = None,
    rendezvous: Annotated[
        bool,
        typer.Option(
            "--rendezvous",
            help="One torchrun world across the cargos: Crane runs the rendezvous store and "
            "sets CRANE_RDZV_* (needs --image; docs/elastic-training.md).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only say whether and where it would be admitted.")
    ] = False,
    output: MaybeOutput = None,
    command: Annotated[list[str] | None, typer.Argument(help="After --: the command.")] = None,
) -> None:
    """Create a MiniCluster from options, or MiniClusters and Cargos from -f manifests."""
    api = client()
    if files:
        if name:
            raise UsageError("give a name or -f, not both")
        created = create_from_files(api, files)
        if output:
            render(created, output, columns.MINICLUSTER)
        return
    if not name or not gpu_type:
        raise UsageError("give NAME and --gpu-type (and --min/--max), or -f FILE")
    spec: dict[str, object] = {
        "gpuType": gpu_type,
        "gpus": {"min": min_gpus, "max": max_gpus if max_gpus is not None else min_gpus},
        "topology": {"level": level, "mode": "Required" if required else "Preferred"},
        "priority": priority,
    }
    if image or replicas:
        spec["template"] = {
            "replicas": cargo_replicas,
            "gpusPerReplica": gpus_per_replica,
            "template": pod_template(image, command),
        }
        spec["replicas"] = replicas
    if rendezvous:
        spec["rendezvous"] = {"enabled": True}
    if dry_run:
        result = api.dryrun(minicluster=spec)
        render(
            result,
            output or Format.TABLE,
            [
                Column("outcome", lambda r: r.outcome),
                Column("fits", lambda r: r.fits),
                Column("message", lambda r: r.message),
            ],
        )
        return
    mc = api.create_minicluster(name, spec)
    say(f"minicluster/{mc.name} created")
    if output:
        render(mc, output, columns.MINICLUSTER)


@app.command("list")
def list_(
    output: Output = Format.TABLE,
    selector: Selector = None,
    all_tenants: AllTenants = False,
    watch: Watch = False,
    reconnect_for: ReconnectFor = RECONNECT_FOR_DEFAULT,
    no_headers: NoHeaders = False,
) -> None:
    """List MiniClusters with their reserved, in-use and borrowed GPUs."""
    api = client()

    def fetch(tenant: str | None) -> list[MiniCluster]:
        return (client(tenant) if tenant else api).list_miniclusters()

    def poll() -> list[MiniCluster]:
        return listing.gather(fetch, tenants if all_tenants else None, selector)

    def tenants() -> list[str]:
        return [t.name for t in api.list_tenants()]

    mcs = poll()
    cols = columns.with_tenant(columns.MINICLUSTER) if all_tenants else columns.MINICLUSTER
    if not mcs and output == Format.TABLE and not watch:
        say("no MiniClusters; create one with `crane mc create NAME --gpu-type H100 --min 8`")
    listing.show(mcs, output, cols, headers=not no_headers)
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
    name: Name,
    output: Output = Format.TABLE,
    watch: Watch = False,
    reconnect_for: ReconnectFor = RECONNECT_FOR_DEFAULT,
) -> None:
    """Show one MiniCluster (-o yaml: a manifest `crane mc create -f` takes back)."""
    api = client()
    mc = api.get_minicluster(name)
    if output in (Format.JSON, Format.YAML) or output.startswith("jsonpath="):
        render(manifest(mc), output)
    else:
        render(mc, output, columns.MINICLUSTER)
    if watch:
        listing.watch(
            lambda: [api.get_minicluster(name)],
            output,
            columns.MINICLUSTER,
            url=api.url,
            reconnect_for=reconnect_for,
            notice=connection_notice(api.url, reconnect_for),
        )


@app.command("scale")
def scale(
    name: Name,
    replicas: Annotated[int | None, typer.Option("--replicas", help="Template cargos.")] = None,
    min_gpus: Annotated[int | None, typer.Option("--min")] = None,
    max_gpus: Annotated[int | None, typer.Option("--max")] = None,
    output: MaybeOutput = None,
) -> None:
    """Set the template cargo count (like kubectl scale) and/or gpus.min/max."""
    if replicas is None and min_gpus is None and max_gpus is None:
        raise UsageError("give --replicas, --min or --max")
    api = client()
    patch: dict[str, object] = {}
    if replicas is not None:
        patch["replicas"] = replicas
    if min_gpus is not None or max_gpus is not None:
        gpus = api.get_minicluster(name).spec.gpus
        patch["gpus"] = {
            "min": gpus.min if min_gpus is None else min_gpus,
            "max": gpus.max if max_gpus is None else max_gpus,
        }
    mc = api.patch_minicluster(name, patch)
    say(f"minicluster/{mc.name} scaled")
    if output:
        render(mc, output, columns.MINICLUSTER)


@app.command("set-priority")
def set_priority(
    name: Name,
    priority: Annotated[int, typer.Argument(help="New priority (higher preempts lower).")],
    output: MaybeOutput = None,
) -> None:
    """Change a MiniCluster's priority (like `scontrol update ... Priority=`)."""
    mc = client().patch_minicluster(name, {"priority": priority})
    say(f"minicluster/{mc.name} priority set to {mc.spec.priority}")
    if output:
        render(mc, output, columns.MINICLUSTER)


@app.command("hold")
def hold(name: Name, output: MaybeOutput = None) -> None:
    """Hold a MiniCluster (like `scontrol hold`): stop its cargos and release its GPUs, keep it."""
    mc = client().hold(name)
    say(f"minicluster/{mc.name} held: its cargos stop and its GPUs are released")
    if output:
        render(mc, output, columns.MINICLUSTER)


@app.command("release")
def release(name: Name, output: MaybeOutput = None) -> None:
    """Release a held MiniCluster: it queues again and regrows its template cargos."""
    mc = client().release(name)
    say(f"minicluster/{mc.name} released: it queues for admission again")
    if output:
        render(mc, output, columns.MINICLUSTER)


@app.command("grow")
def grow(
    name: Name,
    count: Annotated[int | None, typer.Argument(help="Template cargos to add.")] = None,
    files: Files = None,
    allow_pending: Annotated[
        bool, typer.Option("--allow-pending", help="Add cargos that must wait instead of denying.")
    ] = False,
    wait: Wait = False,
    timeout: Timeout = 300.0,
    output: Output = Format.TABLE,
) -> None:
    """Add COUNT template cargos, or the Cargo manifests of -f; says granted, partial or denied."""
    if (count is None) == (not files):
        raise UsageError("give COUNT or -f cargos.yaml (Cargo manifests), one of the two")
    from crane.cli.manifest import load_manifests
    from crane.client import CraneError, GrowOutcome
    from crane.model.specs import CargoSpec

    shapes = None
    if files:
        shapes = []
        for m in load_manifests(files):
            if not isinstance(m.spec, CargoSpec):
                raise UsageError(f"{m.source}: grow takes Cargo manifests, not {m.kind}")
            if m.spec.mini_cluster != name:
                raise UsageError(
                    f"{m.source}: Cargo {m.name} is for MiniCluster {m.spec.mini_cluster}, "
                    f"not {name}: grow {m.spec.mini_cluster}, or fix its spec.miniCluster"
                )
            shapes.append(
                {"name": m.name, **m.spec.model_dump(by_alias=True, exclude={"mini_cluster"})}
            )
    api = client()
    result = api.grow(name, count, cargos=shapes, allow_pending=allow_pending)
    added = [g.name for g in result.cargos if g.added and g.name]
    say(f"grow {name}: {result.result} ({result.added} of {result.requested} cargos added)")
    for reason in result.reasons:
        say(f"  {reason}")
    if wait and added:
        by_name = {c.name: c for c in wait_for(api, added, timeout)}
        for grant in result.cargos:
            if grant.name in by_name:
                grant.phase = str(by_name[grant.name].status.phase)
    render(result if output != Format.TABLE else result.cargos, output, columns.GRANT)
    if result.result is GrowOutcome.DENIED:
        raise CraneError(f"grow denied: {'; '.join(result.reasons) or 'no reason given'}")


@app.command("shrink")
def shrink(
    name: Name,
    count: Annotated[int | None, typer.Argument(help="Newest cargos to remove.")] = None,
    cargo: Annotated[
        list[str] | None, typer.Option("--cargo", "-c", help="A cargo to remove.")
    ] = None,
    grace: Annotated[int | None, typer.Option("--grace-period", help="Seconds to stop.")] = None,
    yes: Yes = False,
) -> None:
    """Remove whole cargos: the named ones (--cargo) or the COUNT newest."""
    if (count is None) == (not cargo):
        raise UsageError("give COUNT or --cargo NAME, one of the two")
    what = f"the {count} newest cargos" if count is not None else ", ".join(cargo or [])
    confirm(f"remove {what} of minicluster {name}?", yes=yes)
    result = client().shrink(name, count, cargos=cargo, grace_period_seconds=grace)
    for removed in result.removed:
        typer.echo(removed)
    say(f"shrink {name}: {len(result.removed)} cargo(s) removed")


@app.command("explain")
def explain(name: Name, output: Output = Format.TABLE) -> None:
    """Why a MiniCluster or its cargos wait, in numbers."""
    result = client().explain(name)
    if output != Format.TABLE:
        render(result, output)
        return
    typer.echo(
        printable(f"{result.name}: {'admitted' if result.admitted else 'not admitted'}")
        + (f", queue position {result.queue_position}" if result.queue_position else "")
    )
    typer.echo(printable(result.message))
    if result.explanation and result.explanation.sentence != result.message:
        typer.echo(printable(result.explanation.sentence))
    render(
        result.cargos,
        output,
        [
            Column("cargo", lambda c: c.name),
            Column("phase", lambda c: c.phase),
            Column("why", lambda c: c.explanation.sentence if c.explanation else c.message),
        ],
    )


@app.command("delete")
def delete(
    names: Annotated[list[str] | None, typer.Argument(help="MiniClusters to delete.")] = None,
    files: Files = None,
    yes: Yes = False,
) -> None:
    """Delete MiniClusters and their cargos; -f: every MiniCluster and Cargo of the files."""
    from crane.cli.manifest import acting_tenant, load_manifests
    from crane.model.specs import CargoSpec

    manifests = load_manifests(files or [])
    mcs = list(
        dict.fromkeys([*(names or []), *(m.name for m in manifests if m.kind == "MiniCluster")])
    )
    cargos = list(
        dict.fromkeys(
            m.name
            for m in manifests
            if isinstance(m.spec, CargoSpec) and m.spec.mini_cluster not in mcs
        )
    )
    if not mcs and not cargos:
        raise UsageError("give NAME... or -f FILE")
    what = []
    if mcs:
        what.append(
            f"minicluster {', '.join(mcs)} and all {'its' if len(mcs) == 1 else 'their'} cargos"
        )
    if cargos:
        what.append(f"cargo {', '.join(cargos)}")
    confirm(f"delete {' and '.join(what)}?", yes=yes)
    api = client()
    api.tenant = acting_tenant(manifests, api.tenant)
    delete_in_turn(
        [("cargo", name, api.delete_cargo) for name in cargos]
        + [("minicluster", name, api.delete_minicluster) for name in mcs]
    )
