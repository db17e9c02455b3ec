"""Entry point of the ``crane`` command. Sub-command groups register themselves here."""

from __future__ import annotations

import sys

import typer

import crane
from crane.cli import auth
from crane.cli.errors import report
from crane.cli.node import node_app
from crane.cli.options import Settings
from crane.cli.serve import serve
from crane.cli.up import up

app = typer.Typer(
    name="crane",
    help="Crane: elastic GPU MiniClusters and all-or-nothing Cargos, on Kubernetes or Docker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(crane.__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
    context: str | None = typer.Option(
        None, "--context", help="Saved context to use (crane config).", envvar="CRANE_CONTEXT"
    ),
    server: str | None = typer.Option(None, "--server", help="API URL, overriding config and env."),
    api_token: str | None = typer.Option(
        None, "--token", help="Bearer token, overriding config and env."
    ),
) -> None:
    """Crane: elastic GPU MiniClusters and all-or-nothing Cargos."""
    Settings.context, Settings.server, Settings.token = context, server, api_token


auth.register(app)


app.command("serve")(serve)
app.command("up")(up)
app.add_typer(node_app, name="node")
from crane.cli import operator as _operator_command  # noqa: E402,F401  (registers `crane operator`)


def main() -> None:
    """Run the CLI; an error becomes one line on stderr with a remedy (traceback: CRANE_DEBUG=1)."""
    try:
        app()
    except Exception as exc:
        sys.exit(report(exc))
