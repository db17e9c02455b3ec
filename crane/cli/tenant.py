"""``crane tenant``: create, list, get and delete tenants (admin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from crane.cli.apply import delete_each
from crane.cli.options import Output, Yes, client
from crane.cli.render import Column, Format, render
from crane.cli.term import confirm, say

if TYPE_CHECKING:
    from crane.client import Tenant, TenantShare, TenantShareStatus

app = typer.Typer(
    rich_markup_mode=None,
    help="Tenants: who owns MiniClusters and tokens (admin tokens only).",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="Tenant name.")]


def _shares_cell(tenant: Tenant) -> str:
    """``H100 8/10 +2``: per GPU type, guarantee / in use and borrowing beyond it."""
    return ", ".join(
        f"{s.gpu_type} {s.nominal}/{s.in_use}" + (f" +{s.borrowing}" if s.borrowing else "")
        for s in tenant.shares
    )


COLUMNS = [
    Column("name", lambda t: t.name),
    Column("shares (guaranteed/in use +borrowing)", _shares_cell),
    Column("created", lambda t: t.created_at),
]
SHARE_COLUMNS = [
    Column("gpu type", lambda s: s.gpu_type),
    Column("guaranteed", lambda s: s.nominal),
    Column("in use", lambda s: s.in_use),
    Column("borrowing", lambda s: s.borrowing),
    Column("borrowing limit", lambda s: "-" if s.borrowing_limit is None else s.borrowing_limit),
    Column("lending limit", lambda s: "-" if s.lending_limit is None else s.lending_limit),
    Column("weight", lambda s: f"{s.weight:g}"),
]
share_app = typer.Typer(
    rich_markup_mode=None,
    help="Tenant shares per GPU type: guaranteed GPUs, borrowing and lending limits, weight "
    "(admin; Docker mode; on Kubernetes apply TenantShare resources).",
    no_args_is_help=True,
)
app.add_typer(share_app, name="share")


@app.command("create")
def create(names: Annotated[list[str], typer.Argument(help="Tenants to create.")]) -> None:
    """Create tenants; then give each a token with `crane token create --for-tenant NAME`."""
    api = client()
    for name in names:
        api.create_tenant(name)
        say(f"tenant/{name} created")


@app.command("list")
def list_(output: Output = Format.TABLE) -> None:
    """List tenants."""
    render(client().list_tenants(), output, COLUMNS)


@app.command("get")
def get(name: Name, output: Output = Format.TABLE) -> None:
    """Show one tenant with its shares and what it uses of them."""
    render(client().get_tenant(name), output, COLUMNS)


@share_app.command("get")
def share_get(name: Name, output: Output = Format.TABLE) -> None:
    """A tenant's shares per GPU type: guaranteed, in use, borrowing, limits and weight."""
    render(client().get_tenant(name).shares, output, SHARE_COLUMNS)


@share_app.command("set")
def share_set(
    name: Name,
    gpu_type: Annotated[str, typer.Option("--gpu-type", help="GPU type, e.g. H100.")],
    nominal: Annotated[int, typer.Option(help="GPUs guaranteed to the tenant.")] = 0,
    borrowing_limit: Annotated[
        int | None, typer.Option(help="GPUs it may use beyond nominal (default: no limit).")
    ] = None,
    lending_limit: Annotated[
        int | None,
        typer.Option(help="GPUs of its unused nominal others may use (default: all)."),
    ] = None,
    weight: Annotated[float, typer.Option(help="Weight in the fair division of idle GPUs.")] = 1.0,
    output: Output = Format.TABLE,
) -> None:
    """Set a tenant's share of one GPU type (its other types are kept)."""
    from crane.client import TenantShare, TenantShares

    share = TenantShare(
        gpu_type=gpu_type,
        nominal=nominal,
        borrowing_limit=borrowing_limit,
        lending_limit=lending_limit,
        weight=weight,
    )
    api = client()
    kept = [_share(s) for s in api.get_tenant(name).shares if not _same_type(s.gpu_type, gpu_type)]
    tenant = api.set_tenant_shares(name, TenantShares(shares=[*kept, share]))
    say(f"tenant/{name} share of {gpu_type} set")
    render(tenant.shares, output, SHARE_COLUMNS)


@share_app.command("remove")
def share_remove(
    name: Name,
    gpu_type: Annotated[str, typer.Option("--gpu-type", help="GPU type whose share goes.")],
) -> None:
    """Remove a tenant's share of one GPU type."""
    from crane.client import NotFound, TenantShares

    api = client()
    shares = api.get_tenant(name).shares
    kept = [_share(s) for s in shares if not _same_type(s.gpu_type, gpu_type)]
    if len(kept) == len(shares):
        raise NotFound(f"tenant {name!r} has no share of {gpu_type}", status=404)
    api.set_tenant_shares(name, TenantShares(shares=kept))
    say(f"tenant/{name} share of {gpu_type} removed")


def _same_type(a: str, b: str) -> bool:
    from crane.model.gpu import normalize_gpu_type

    return normalize_gpu_type(a) == normalize_gpu_type(b)


def _share(status: TenantShareStatus) -> TenantShare:
    from crane.client import TenantShare

    return TenantShare(
        gpu_type=status.gpu_type,
        nominal=status.nominal,
        borrowing_limit=status.borrowing_limit,
        lending_limit=status.lending_limit,
        weight=status.weight,
    )


@app.command("delete")
def delete(
    names: Annotated[list[str], typer.Argument(help="Tenants to delete.")], yes: Yes = False
) -> None:
    """Delete tenants without MiniClusters; their tokens are revoked."""
    confirm(f"delete tenant {', '.join(names)} and revoke its tokens?", yes=yes)
    delete_each(names, client().delete_tenant, "tenant")
