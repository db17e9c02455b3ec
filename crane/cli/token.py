"""``crane token``: create, list and revoke API tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import typer

from crane.cli import columns
from crane.cli.options import MAX_DAYS, Output, Yes, client, positive
from crane.cli.render import Format, render
from crane.cli.term import UsageError, confirm, say


class TokenScope(StrEnum):
    """The scopes of a token (as the API's ``Scope``; kept here so help needs no SDK import)."""

    ADMIN = "admin"
    TENANT = "tenant"
    MINICLUSTER = "minicluster"


app = typer.Typer(
    rich_markup_mode=None,
    help="API tokens: admin, tenant, or one MiniCluster's (for app managers).",
    no_args_is_help=True,
)


@app.command("create")
def create(
    scope: Annotated[
        TokenScope, typer.Option("--scope", help="admin, tenant or minicluster.")
    ] = TokenScope.TENANT,
    tenant: Annotated[str | None, typer.Option("--for-tenant", help="Tenant of the token.")] = None,
    minicluster: Annotated[
        str | None, typer.Option("--minicluster", help="For minicluster scope.")
    ] = None,
    description: Annotated[str, typer.Option("--description", "-d")] = "",
    days: Annotated[
        float | None, typer.Option("--expires-in-days", parser=positive(MAX_DAYS))
    ] = None,
    create_tenant: Annotated[
        bool, typer.Option("--create-tenant", help="Create the --for-tenant tenant if missing.")
    ] = False,
    output: Output = Format.TABLE,
) -> None:
    """Create a token; the secret is printed once, on stdout."""
    from crane.client import Conflict, NotFound

    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    api = client()
    if create_tenant and tenant:
        try:
            api.create_tenant(tenant)
            say(f"tenant/{tenant} created")
        except Conflict:
            pass
    try:
        created = api.create_token(
            {
                "scope": str(scope),
                "tenant": tenant,
                "miniCluster": minicluster,
                "description": description,
                "expiresAt": expires,
            }
        )
    except NotFound as err:
        if tenant and f"tenant {tenant!r}" in err.message:
            raise UsageError(
                f"tenant {tenant!r} does not exist; create it with `crane tenant create "
                f"{tenant}` (or add --create-tenant)"
            ) from None
        raise
    if output == Format.TABLE:
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
