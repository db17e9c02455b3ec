"""``--wait``: follow cargos until they run, live on a terminal, as plain lines otherwise.

No typer here.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING

from crane.cli.render import console, printable
from crane.cli.term import is_tty, say

if TYPE_CHECKING:  # rich loads when progress is drawn
    from rich.table import Table

    from crane.client import Cargo, Client

POLL_SECONDS = 0.25
"""How often ``--wait`` looks: a cargo usually runs well under a second after it is placed."""


def _table(cargos: list[Cargo], wanted: list[str]) -> Table:
    from rich.table import Table
    from rich.text import Text

    by_name = {c.name: c for c in cargos}
    grid = Table(
        box=None,
        pad_edge=False,
        header_style="bold",
        title="waiting for cargos",
        title_justify="left",
    )
    for header in ("CARGO", "PHASE", "GPUS", "NODES", "MESSAGE"):
        grid.add_column(header, no_wrap=True)
    for name in wanted:
        cargo = by_name.get(name)
        if cargo is None:
            grid.add_row(name, "…", "-", "-", "-")
            continue
        phase = str(cargo.status.phase)
        style = {"Running": "green", "Succeeded": "green", "Failed": "red"}.get(phase, "yellow")
        nodes = ",".join(sorted({p.node for p in cargo.status.placement})) or "-"
        message = printable(cargo.status.message) or "-"
        grid.add_row(name, Text(phase, style=style), str(cargo.spec.gpus), nodes, message)
    return grid


def wait_for(client: Client, names: Iterable[str], timeout: float) -> list[Cargo]:
    """Wait until the cargos run; a live table on a TTY (stderr), else one line per change."""
    wanted = sorted(names)
    if not wanted:
        return []
    if is_tty(sys.stderr):
        from rich.live import Live

        with Live(_table([], wanted), console=console(sys.stderr), transient=True) as live:
            return client.wait_for_cargos(
                wanted,
                timeout=timeout,
                interval=POLL_SECONDS,
                on_update=lambda cs: live.update(_table(cs, wanted)),
            )
    seen: dict[str, str] = {}

    def lines(cargos: list[Cargo]) -> None:
        for cargo in cargos:
            phase = str(cargo.status.phase)
            if seen.get(cargo.name) != phase:
                seen[cargo.name] = phase
                why = f" ({cargo.status.message})" if cargo.status.message else ""
                say(f"cargo {cargo.name}: {phase}{why}")

    return client.wait_for_cargos(wanted, timeout=timeout, interval=POLL_SECONDS, on_update=lines)
