"""``crane token``: create, list and revoke API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from crane.cli import columns
from crane.cli.options import Output, Yes, client
from crane.cli.render import Format, render
from crane.cli.term import confirm, say
from crane.client import Scope

app = typer.Typer(
    help="API tokens: admin, tenant, or one MiniCluster's (for app managers).", no_args_is_help=True
)


@app.command("create")
def create(
    scope: Annotated[
        Scope, typer.Option("--scope", help="admin, tenant or minicluster.")
    ] = Scope.TENANT,
    tenant: Annotated[str | None, typer.Option("--for-tenant", help="Tenant of the token.")] = None,
    minicluster: Annotated[
        str | None, typer.Option("--minicluster", help="For minicluster scope.")
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    days: Annotated[float | None, typer.Option("--expires-in-days")] = None,
    output: Output = Format.TABLE,
) -> None:
    """Create a token; the secret is printed once, on stdout."""
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    created = client().create_token(
        {
            "scope": scope,
            "tenant": tenant,
            "miniCluster": minicluster,
            "description": description,
            "expiresAt": expires,
        }
    )
    if output is Format.TABLE:
        say(
            f"token {created.id} created ({created.scope}); keep the secret, it is not shown again:"
        )
        typer.echo(created.token)
    else:
        render(created, output)


@app.command("list")
def list_(output: Output = Format.TABLE) -> None:
    """List tokens (never their secrets)."""
    render(client().list_tokens(), output, columns.TOKEN)


@app.command("revoke")
def revoke(
    token_ids: Annotated[list[str], typer.Argument(help="Token ids (see `crane token list`).")],
    yes: Yes = False,
) -> None:
    """Revoke tokens: requests with them fail from now on."""
    confirm(f"revoke token {', '.join(token_ids)}?", yes=yes)
    api = client()
    for token_id in token_ids:
        api.revoke_token(token_id)
        say(f"token {token_id} revoked")
