"""Typer pieces every command module shares: ``-o``, ``-y``, ``-f``, ``--wait`` and the client.

Command modules (ours and colleagues') import these so that options read the same everywhere.
"""

from __future__ import annotations

import math
import re
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


_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION_PART = re.compile(r"([0-9]{1,15}(?:\.[0-9]{1,9})?|\.[0-9]{1,9})(ms|s|m|h|d)")


def seconds_in(text: str) -> float | None:
    """The seconds ``text`` stands for: a plain number of seconds (``90``, ``0.5``) or a
    kubectl-style duration (``30s``, ``2m``, ``1h30m``, ``500ms``, ``1.5h``, ``2d``); None when
    it is neither (ASCII digits only: full-width digits are no duration)."""
    text = text.strip().lower()
    if not text.isascii():
        return None
    if re.fullmatch(r"[0-9]{1,15}(\.[0-9]{0,9})?|\.[0-9]{1,9}", text):
        return float(text)
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def spoken(seconds: float) -> str:
    """``seconds`` as the largest whole unit that reads it exactly: 3600 is 1h, 90 is 90s."""
    for unit in ("d", "h", "m"):
        if seconds >= _UNIT_SECONDS[unit] and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds / _UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def duration(high: float, low: float = 0.0) -> Callable[[str], float]:
    """A parser for a timeout or interval, in seconds: plain seconds or a kubectl-style
    duration (``30s``, ``2m``, ``1h``, see :func:`seconds_in`), above ``low`` (at least 1 ms) and
    at most ``high``; anything else is a usage error naming the form and the range."""

    def parse(text: str | float) -> float:
        value = seconds_in(text) if isinstance(text, str) else float(text)
        if value is None:
            raise typer.BadParameter(
                f"{text!r} is not a duration: give a duration such as 30s, 2m or 1h30m, or "
                f"plain seconds, at most {spoken(high)}"
            )
        if not (max(low, 0.001) <= value <= high):
            raise typer.BadParameter(
                f"{text!r}: give a duration of at least {spoken(max(low, 0.001))} and at most "
                f"{spoken(high)}"
            )
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
ReconnectFor = Annotated[
    float,
    typer.Option(
        "--reconnect-for",
        help="With -w: how long to keep reconnecting once the connection is lost, before "
        "giving up (exit 1): a duration such as 30s, 5m, 1h; default 5m.",
        metavar="DURATION",
        parser=duration(YEAR_SECONDS),
        show_default=False,
    ),
]
RECONNECT_FOR_DEFAULT = 300.0
"""How long a watch (``-w``) reconnects by default: 5 minutes."""


def connection_notice(url: str, reconnect_for: float) -> Callable[[Exception | None], None]:
    """What every ``-w`` says on stderr when its connection to ``url`` is lost (how long it
    keeps trying, how to stop) and when it is back; ``url`` is shown without its password."""
    from crane.cli.term import say
    from crane.client import without_password

    url = without_password(url)

    def notice(lost: Exception | None) -> None:
        if lost is None:
            say(f"connection to {url} back; following again")
        else:
            say(
                f"lost the connection to {url}; reconnecting for up to "
                f"{spoken(reconnect_for)} (Ctrl-C stops)"
            )

    return notice


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
        help="How long to wait with --wait: seconds or a duration such as 30s, 5m, 1h.",
        metavar="DURATION",
        parser=duration(MAX_WAIT_SECONDS),
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
        Settings.server,
        Settings.token,
        context=Settings.context,
        tenant=Settings.tenant if tenant is None else tenant,
    )


def pod_template(image: str | None, command: list[str] | None) -> dict[str, object]:
    """A pod template with one container, from ``--image`` and the words after ``--``."""
    if not image:
        return {}
    container: dict[str, object] = {"name": "main", "image": image}
    if command:
        container["command"] = command
    return {"spec": {"containers": [container]}}
