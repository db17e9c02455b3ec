"""``crane exec CARGO [--replica N] -- CMD...``: run a command in a replica, like ``kubectl exec``.

The output (stdout and stderr together) goes to stdout; the exit code is the command's.
"""

from __future__ import annotations

import math
from typing import Annotated

import typer

from crane.cli import names
from crane.cli.options import MAX_WAIT_SECONDS, client, duration


def exec_(
    cargo: Annotated[str, typer.Argument(help="Cargo name.", autocompletion=names.cargo)],
    command: Annotated[list[str], typer.Argument(help="After --: the command and arguments.")],
    replica: Annotated[int, typer.Option("--replica", "-r", help="Which replica.")] = 0,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="When the server gives up on it: seconds or a duration such as 30s, 5m, 1h.",
            metavar="DURATION",
            parser=duration(MAX_WAIT_SECONDS, low=1),
        ),
    ] = 60,
) -> None:
    """Run a command in a cargo's replica (no TTY, no stdin); exits with the command's code."""
    result = client().exec(cargo, command, replica=replica, timeout=math.ceil(timeout))
    typer.echo(result.output, nl=False)
    raise typer.Exit(result.exit_code)
