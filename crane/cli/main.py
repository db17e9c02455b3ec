"""Entry point of the ``crane`` command. Sub-command groups register themselves here."""

from __future__ import annotations

import typer

import crane
from crane.cli.serve import serve

app = typer.Typer(
    name="crane",
    help="Crane: elastic GPU MiniClusters and all-or-nothing Cargos, on Kubernetes or plain Docker.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(crane.__version__)
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Crane: elastic GPU MiniClusters and all-or-nothing Cargos."""


app.command("serve")(serve)
from crane.cli import operator as _operator_command  # noqa: E402,F401  (registers `crane operator`)


def main() -> None:
    app()
