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
MaybeOutput = Annotated[
    Format | None, typer.Option("--output", "-o", help="Print the result: table, json or yaml.")
]
Wait = Annotated[
    bool, typer.Option("--wait", help="Return only when the cargos run (live progress).")
]
Timeout = Annotated[float, typer.Option("--timeout", help="Seconds to wait with --wait.")]
Image = Annotated[str | None, typer.Option("--image", help="Container image of each replica.")]
Level = Annotated[
    str,
    typer.Option(
        "--level", help="Topology level that should hold it: zone|block|rack|nvlink|node."
    ),
]
Required = Annotated[
    bool, typer.Option("--required/--preferred", help="Whether the topology level is a must.")
]


class Settings:
    """Global options of the root command: context, server, token, tenant."""

    context: str | None = None
    tenant: str | None = None
    server: str | None = None
    token: str | None = None


def client() -> Client:
    """A client from the global options, then the environment, then the saved context."""
    return Client(Settings.server, Settings.token, context=Settings.context, tenant=Settings.tenant)


def pod_template(image: str | None, command: list[str] | None) -> dict[str, object]:
    """A pod template with one container, from ``--image`` and the words after ``--``."""
    if not image:
        return {}
    container: dict[str, object] = {"name": "main", "image": image}
    if command:
        container["command"] = command
    return {"spec": {"containers": [container]}}
