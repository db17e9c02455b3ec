"""``crane tenant``: create, list, get and delete tenants (admin)."""

from __future__ import annotations

from typing import Annotated

import typer

from crane.cli.options import Output, Yes, client
from crane.cli.render import Column, Format, render
from crane.cli.term import confirm, say

app = typer.Typer(
    help="Tenants: who owns MiniClusters and tokens (admin tokens only).", no_args_is_help=True
)

Name = Annotated[str, typer.Argument(help="Tenant name.")]

COLUMNS = [Column("name", lambda t: t.name), Column("created", lambda t: t.created_at)]


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
    """Show one tenant."""
    for tenant in client().list_tenants():
        if tenant.name == name:
            render(tenant, output, COLUMNS)
            return
    from crane.client import NotFound

    raise NotFound(f"tenant {name!r} not found", status=404)


@app.command("delete")
def delete(
    names: Annotated[list[str], typer.Argument(help="Tenants to delete.")], yes: Yes = False
) -> None:
    """Delete tenants without MiniClusters; their tokens are revoked."""
    confirm(f"delete tenant {', '.join(names)} and revoke its tokens?", yes=yes)
    api = client()
    for name in names:
        api.delete_tenant(name)
        say(f"tenant/{name} deleted")
