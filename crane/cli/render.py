"""One renderer for every command's data: ``table``, ``json`` or ``yaml`` (``-o``). No typer here.

Data goes to stdout; tables are drawn with rich, in colour only on a terminal.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import IO, Any

import yaml
from pydantic import BaseModel
from rich.console import Console, RenderableType
from rich.table import Table

from crane.cli.term import is_tty


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


@dataclass(frozen=True)
class Column:
    """A table column: its header and how to get its cell from one item."""

    header: str
    get: Callable[[Any], Any]


def to_plain(data: Any) -> Any:
    """Models, enums and dates as JSON-ready values (camelCase keys, as on the wire)."""
    if isinstance(data, BaseModel):
        return data.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(data, Mapping):
        return {str(k): to_plain(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [to_plain(v) for v in data]
    if isinstance(data, StrEnum):
        return str(data)
    if isinstance(data, datetime):
        return data.isoformat()
    return data


def cell(value: Any) -> str:
    """How one value reads in a table cell."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value) or "-"
    return str(value)


def console(stream: IO[str] | None = None, *, width: int | None = None) -> Console:
    """A rich console on ``stream``: coloured on a terminal, plain and wide otherwise."""
    stream = stream or sys.stdout
    tty = is_tty(stream)
    return Console(
        file=stream,
        force_terminal=tty,
        no_color=not tty,
        highlight=False,
        soft_wrap=False,
        width=width or (None if tty else 250),
    )


def table(items: Sequence[Any], columns: Sequence[Column]) -> Table:
    """A kubectl-style table: upper-case headers, no borders."""
    grid = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for col in columns:
        grid.add_column(col.header.upper(), no_wrap=True)
    for item in items:
        grid.add_row(*(cell(col.get(item)) for col in columns))
    return grid


def render_text(renderable: RenderableType, *, width: int = 250) -> str:
    """A rich renderable as plain text (for tests and pipes)."""
    buf = io.StringIO()
    Console(file=buf, no_color=True, width=width, highlight=False).print(renderable)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def render(
    data: Any,
    fmt: Format | str,
    columns: Sequence[Column] = (),
    *,
    stream: IO[str] | None = None,
) -> None:
    """Write ``data`` to ``stream`` (stdout) as a table, JSON or YAML.

    A table needs ``columns``; a single object is shown as a one-row table.
    """
    stream = stream or sys.stdout
    fmt = Format(fmt)
    if fmt is Format.JSON:
        stream.write(json.dumps(to_plain(data), indent=2) + "\n")
    elif fmt is Format.YAML:
        stream.write(yaml.safe_dump(to_plain(data), sort_keys=False))
    else:
        items = data if isinstance(data, list | tuple) else [data]
        if not items:
            return
        console(stream).print(table(items, columns))
