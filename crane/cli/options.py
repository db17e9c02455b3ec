"""Typer pieces every command module shares: ``-o``, ``-y``, ``-f``, ``--wait`` and the client.

Command modules (ours and colleagues') import these so that options read the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from crane.cli.render import FORMATS_HELP, parse_format

if TYPE_CHECKING:
    from crane.client import Client


def _format(text: str) -> str:
    try:
        return parse_format(text)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


def positive(high: float) -> Callable[[str], float]:
    """A parser for a finite number above 0 and at most ``high`` (seconds, days): NaN, infinity,
    0, negative numbers, words and non-ASCII digits are usage errors naming the range."""

    def parse(text: str | float) -> float:
        try:
            # float() also reads Arabic-Indic and full-width digits: those are no numbers here
            value = float(text) if not isinstance(text, str) or text.isascii() else math.nan
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= high):
            raise typer.BadParameter(f"{text!r}: give a number above 0 and at most {high:.10g}")
        return value

    return parse


MAX_WAIT_SECONDS = 3600.0
"""Longest --timeout of a waiting grow (the API's timeoutSeconds maximum)."""
YEAR_SECONDS = 365 * 86400.0
"""Longest --timeout of ``crane wait`` and of a drain: a year."""
MAX_DAYS = 36500.0
"""Longest --days or --expires-in-days: a hundred years."""

Output = Annotated[
    str,
    typer.Option(
        "--output",
        "-o",
        help=f"How to print data: {FORMATS_HELP}.",
        parser=_format,
        metavar="FORMAT",
    ),
]
NoHeaders = Annotated[bool, typer.Option("--no-headers", help="Tables without the header row.")]
Watch = Annotated[
    bool, typer.Option("--watch", "-w", help="After listing, print changes as they happen.")
]
Selector = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        help="Label selector: k=v, k!=v, k in (a,b), k notin (a,b), k, !k; comma-separated (AND).",
        metavar="SELECTOR",
    ),
]
AllTenants = Annotated[
    bool, typer.Option("--all-tenants", "-A", help="Every tenant's (admin tokens).")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
Files = Annotated[
    list[str] | None,
    typer.Option("--filename", "-f", help="A YAML manifest (MiniCluster or Cargo); - reads stdin."),
]
MaybeOutput = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        help=f"Print the result: {FORMATS_HELP}.",
        parser=_format,
        metavar="FORMAT",
    ),
]
Wait = Annotated[
    bool, typer.Option("--wait", help="Return only when the cargos run (live progress).")
]
Timeout = Annotated[
    float,
    typer.Option(
        "--timeout",
        help="Seconds to wait with --wait.",
        metavar="SECONDS",
        parser=positive(MAX_WAIT_SECONDS),
    ),
]
Image = Annotated[
    str | None,
    typer.Option("--image", help="Container image of each replica.", metavar="IMAGE"),
]
Level = Annotated[
    str,
    typer.Option(
        "--level",
        help="Topology level that should hold it: zone, block, rack, nvlink or node.",
        metavar="LEVEL",
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


def client(tenant: str | None = None) -> Client:
    """A client from the global options, then the environment, then the saved context."""
    from crane.client import Client

    return Client(
        Settings.server, Settings.token, context=Settings.context, tenant=tenant or Settings.tenant
    )


def pod_template(image: str | None, command: list[str] | None) -> dict[str, object]:
    """A pod template with one container, from ``--image`` and the words after ``--``."""
    if not image:
        return {}
    container: dict[str, object] = {"name": "main", "image": image}
    if command:
        container["command"] = command
    return {"spec": {"containers": [container]}}
