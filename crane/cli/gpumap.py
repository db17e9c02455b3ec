"""The GPU map (``crane nodes``) and the MiniCluster summary (``crane top``) as rich renderables.

No typer here. Each GPU is one cell: the letter of its MiniCluster (``A``, ``B``, ... as the
legend says) and a symbol for its state, coloured by MiniCluster on a terminal, so the map reads
without colour too: ``■`` in use, ``□`` reserved and idle, ``▲`` borrowed (preemptible), ``✕``
busy (held outside Crane), ``·`` free. Both views fit 80 columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from crane.cli.render import printable

if TYPE_CHECKING:  # rich loads when a map is drawn, not when a command module is imported
    from rich.console import RenderableType
    from rich.text import Text

    from crane.client import GpuSlotOut, MiniCluster, NodeOut

GpuState = Literal["free", "reserved", "in-use", "borrowed", "busy"]
SYMBOLS: dict[GpuState, str] = {
    "in-use": "■",
    "reserved": "□",
    "borrowed": "▲",
    "busy": "✕",
    "free": "·",
}
PALETTE = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "red",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
    "bright_yellow",
    "bright_blue",
    "bright_red",
)


def gpu_state(gpu: GpuSlotOut) -> GpuState:
    """Busy, borrowed (used by a MiniCluster that does not reserve it), in use, reserved, free."""
    if gpu.busy:
        return "busy"
    if gpu.cargo:
        return "in-use" if gpu.reserved_for == gpu.mini_cluster else "borrowed"
    return "reserved" if gpu.reserved_for else "free"


def owner(gpu: GpuSlotOut) -> str | None:
    """The MiniCluster a GPU belongs to: the one its cargo runs for, else the one reserving it."""
    return gpu.mini_cluster or gpu.reserved_for


def letter(index: int) -> str:
    """``A``..``Z``, ``a``..``z``, digits, then ``?``: one character per MiniCluster."""
    chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return chars[index] if index < len(chars) else "?"


def letters(palette: dict[str, str]) -> dict[str, str]:
    """The letter of each MiniCluster, in the palette's order (first appearance on the map)."""
    return {name: letter(i) for i, name in enumerate(palette)}


def short_product(product: str) -> str:
    """``NVIDIA-H100-80GB-HBM3`` as ``H100-80GB-HBM3``: the vendor prefix says nothing here."""
    return product.removeprefix("NVIDIA-") or "-"


def colours(nodes: Sequence[NodeOut]) -> dict[str, str]:
    """A colour per MiniCluster, in order of first appearance on the map."""
    names: dict[str, str] = {}
    for node in nodes:
        for gpu in node.gpus:
            name = owner(gpu)
            if name and name not in names:
                names[name] = PALETTE[len(names) % len(PALETTE)]
    return names


def _cell(gpu: GpuSlotOut, palette: dict[str, str], marks: dict[str, str]) -> Text:
    from rich.text import Text

    state = gpu_state(gpu)
    name = owner(gpu)
    style = {"free": "dim", "busy": "grey50"}.get(state) or palette.get(name or "", "")
    if state == "reserved":
        style += " dim"
    mark = marks.get(name or "", " ") if state not in ("free", "busy") else " "
    return Text(mark + SYMBOLS[state], style=style)


def gpu_map(nodes: Sequence[NodeOut]) -> RenderableType:
    """One row per node, one cell per GPU (MiniCluster letter + state), then a legend."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    palette = colours(nodes)
    marks = letters(palette)
    grid = Table(
        box=None, pad_edge=False, show_edge=False, header_style="bold", collapse_padding=True
    )
    for header in ("NODE", "GPU", "GPUS", "FREE", "STATE"):
        grid.add_column(header, no_wrap=True)
    for node in nodes:
        gpus = sorted(node.gpus, key=lambda g: g.id)
        cells = Text(" ").join(_cell(g, palette, marks) for g in gpus)
        free = sum(1 for g in node.gpus if gpu_state(g) == "free")
        state = "ready" if node.ready else "NotReady"
        if not node.schedulable:
            state += ",cordoned"
        grid.add_row(
            printable(node.name),
            printable(short_product(node.gpu_product)),
            cells,
            f"{free}/{node.gpu_count}",
            state,
        )
    return Group(grid, Text(""), legend(nodes, palette))


def legend(nodes: Sequence[NodeOut], palette: dict[str, str]) -> Text:
    """Symbols, then each MiniCluster in its colour with its reserved / in-use / borrowed GPUs."""
    from rich.text import Text

    out = Text("  ".join(f"{sym} {state}" for state, sym in SYMBOLS.items()))
    marks = letters(palette)
    for name, colour in palette.items():
        counts = {"reserved": 0, "in-use": 0, "borrowed": 0}
        for node in nodes:
            for gpu in node.gpus:
                state = gpu_state(gpu)
                if gpu.reserved_for == name:
                    counts["reserved"] += 1
                if gpu.mini_cluster == name and state in counts:
                    counts[state] += 1
        out.append("\n")
        out.append(marks[name], style=f"bold {colour}")
        out.append(
            f" = {printable(name)}: {counts['reserved']} reserved, {counts['in-use']} in use, "
            f"{counts['borrowed']} borrowed"
        )
    return out


def mc_status(mc: MiniCluster) -> str:
    """One word for a MiniCluster's state, from its conditions and queue position."""
    if mc.spec.suspend:
        return "Held"
    for kind in ("Failed", "Resizing", "Ready", "Admitted"):
        cond = next((c for c in mc.status.conditions if c.type == kind), None)
        if cond is not None and str(cond.status) == "True":
            return kind
    if mc.status.queue_position is not None:
        return f"Queued #{mc.status.queue_position}"
    admitted = next((c for c in mc.status.conditions if c.type == "Admitted"), None)
    if admitted is not None and admitted.reason == "Unschedulable":
        return "Unschedulable"
    return "Pending"


BAR = {"in-use": "█", "borrowed": "▒", "reserved": "░", "free": "·"}
"""Bar glyphs of ``crane top``: distinct without colour."""


def _bar(mc: MiniCluster, width: int = 10) -> Text:
    from rich.text import Text

    top = max(mc.spec.gpus.max, 1)
    used = min(mc.status.in_use_gpus, top)
    borrowed = min(mc.status.borrowed_gpus, top - used)
    idle = min(max(mc.status.reserved_gpus - used, 0), top - used - borrowed)

    def part(n: int) -> int:
        return round(n * width / top)

    bar = Text()
    bar.append(BAR["in-use"] * part(used), style="green")
    bar.append(BAR["borrowed"] * part(borrowed), style="yellow")
    bar.append(BAR["reserved"] * part(idle), style="cyan")
    bar.append(BAR["free"] * max(width - len(bar), 0), style="dim")
    return bar


def top_table(mcs: Sequence[MiniCluster]) -> RenderableType:
    """MiniClusters with min-max, reserved / in-use / borrowed GPUs and a bar up to ``gpus.max``.

    Fits 80 columns with names up to about 20 characters; the bar's glyphs are in the caption.
    """
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    grid = Table(
        box=None, pad_edge=False, show_edge=False, header_style="bold", collapse_padding=True
    )
    grid.add_column("NAME", no_wrap=True, min_width=8)
    for header in ("GPU", "MIN-MAX", "RSVD", "USED", "BRWD", "CARGOS", "STATUS", "USE"):
        grid.add_column(header, no_wrap=True)
    for mc in mcs:
        st = mc.status
        grid.add_row(
            printable(mc.name),
            printable(mc.spec.gpu_type),
            f"{mc.spec.gpus.min}-{mc.spec.gpus.max}",
            str(st.reserved_gpus),
            str(st.in_use_gpus),
            str(st.borrowed_gpus),
            f"{st.ready_cargos}/{st.cargos}",
            mc_status(mc),
            _bar(mc),
        )
    caption = Text(
        "RSVD reserved, USED in use, BRWD borrowed GPUs; USE: "
        + ", ".join(f"{g} {k}" for k, g in BAR.items()),
        style="dim",
    )
    return Group(grid, caption)
