"""Typer pieces every command module shares: ``-o``, ``-y``, ``-f``, ``--wait`` and the client.

Command modules (ours and colleagues') import these so that options read the same everywhere.
"""

from __future__ import annotations

from typing import Annotated

import typer

from crane.cli.render import Format
from crane.client import Client

Output = Annotated[
    Format, typer.Option("--output", "-o", help="How to print data: table, json or yaml.")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Files = Annotated[
    list[str] | None,
    typer.Option("--filename", "-f", help="A YAML manifest (MiniCluster or Cargo); - reads stdin."),
]
Wait = Annotated[
    bool, typer.Option("--wait", help="Return only when the cargos run (live progress).")
]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait with --wait.")]


class Settings:
    """Global options of the root command (``--context``, ``--server``, ``--token``)."""

    context: str | None = None
    server: str | None = None
    token: str | None = None


def client() -> Client:
    """A client from the global options, then the environment, then the saved context."""
    return Client(Settings.server, Settings.token, context=Settings.context)
