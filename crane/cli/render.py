"""One renderer for every command's data (``-o``). No typer here.

Formats: ``table``, ``wide`` (more columns), ``json``, ``yaml``, ``name`` (``kind/name`` per
line) and ``jsonpath=TEMPLATE`` (kubectl's ``{.items[*].metadata.name}`` subset). Data goes to
stdout; tables are drawn with rich, in colour only on a terminal.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any

from crane.cli.term import is_tty

if TYPE_CHECKING:  # rich loads when something is drawn, not for `crane --help`
    from rich.console import Console, RenderableType
    from rich.table import Table


class Format(StrEnum):
    """The fixed output formats; ``jsonpath=...`` is given as a plain string."""

    TABLE = "table"
    WIDE = "wide"
    JSON = "json"
    YAML = "yaml"
    NAME = "name"


FORMATS_HELP = "table, wide, json, yaml, name or jsonpath=TEMPLATE"
JSONPATH = "jsonpath="


def parse_format(text: str) -> str:
    """``-o`` as given: one of :class:`Format` or ``jsonpath=TEMPLATE``; else ValueError."""
    low = text.strip()
    if low.startswith(JSONPATH):
        if not low[len(JSONPATH) :].strip():
            raise ValueError(
                "jsonpath= needs a template, e.g. jsonpath='{.items[*].metadata.name}'"
            )
        check_jsonpath(low[len(JSONPATH) :])
        return low
    try:
        return Format(low.lower())
    except ValueError:
        raise ValueError(f"{text!r} is not an output format; use {FORMATS_HELP}") from None


@dataclass(frozen=True)
class Column:
    """A table column: its header, how to get its cell from one item, and if only ``-o wide``."""

    header: str
    get: Callable[[Any], Any]
    wide: bool = False


def check_jsonpath(template: str) -> None:
    """Raise ValueError saying what is wrong unless ``template`` is in the subset
    :func:`jsonpath` reads: ``{...}`` expressions (not nested) of fields, ``[N]`` and ``[*]``."""
    example = "e.g. jsonpath='{.items[*].metadata.name}'"
    if template.count("{") != template.count("}") or re.search(r"\{[^}]*\{|\}[^{]*\}", template):
        raise ValueError(f"jsonpath {template!r}: unbalanced or nested braces; {example}")
    for expr in re.findall(r"\{([^}]*)\}", template) or [template]:
        rest = re.sub(r"[^.\[\]]+|\[\s*(\*|-?\d+)?\s*\]|\.", "", expr.strip())
        if rest:
            raise ValueError(
                f"jsonpath {template!r}: cannot read {rest!r} in {{{expr}}}: use fields, "
                f"[N] and [*]; {example}"
            )


class JsonPathError(ValueError):
    """A jsonpath template that does not fit the data (an index past the end), as kubectl's
    ``array index out of bounds: index 5, length 2``."""


def _steps(template: str) -> list[list[str | int | None]]:
    """Parse ``{.a.b[*].c}{.d}`` into paths; ``None`` stands for ``[*]``."""
    paths: list[list[str | int | None]] = []
    for expr in re.findall(r"\{([^}]*)\}", template) or [template]:
        path: list[str | int | None] = []
        for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", expr.strip()):
            if part.startswith("["):
                inner = part[1:-1].strip()
                path.append(None if inner in ("*", "") else int(inner))
            else:
                path.append(part)
        paths.append(path)
    return paths


def jsonpath(data: Any, template: str) -> str:
    """kubectl's jsonpath subset: fields, ``[N]`` and ``[*]``; values joined by spaces. A
    missing field reads as nothing (kubectl's default); an index past the end of a list raises
    :class:`JsonPathError`, as kubectl's does, rather than printing nothing."""
    out: list[str] = []
    for path in _steps(template):
        values: list[Any] = [data]
        for step in path:
            nxt: list[Any] = []
            for v in values:
                if step is None:
                    nxt.extend(
                        v if isinstance(v, list) else (v.values() if isinstance(v, dict) else [])
                    )
                elif isinstance(step, int):
                    if isinstance(v, list) and not -len(v) <= step < len(v):
                        raise JsonPathError(
                            f"jsonpath {template!r}: array index out of bounds: index {step}, "
                            f"length {len(v)}"
                        )
                    if isinstance(v, list):
                        nxt.append(v[step])
                elif isinstance(v, dict) and step in v:
                    nxt.append(v[step])
            values = nxt
        out.extend(
            json.dumps(v) if isinstance(v, dict | list) else ("" if v is None else str(v))
            for v in values
        )
    return " ".join(out)


def to_plain(data: Any) -> Any:
    """Models, enums and dates as JSON-ready values (camelCase keys, as on the wire)."""
    if hasattr(data, "model_dump") and not isinstance(data, type):  # a pydantic model
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
    return printable(str(value))


def printable(text: str) -> str:
    """``text`` with control and format characters (ESC, NUL, bidi overrides) written as
    escapes, so that data from the server cannot move the cursor or recolour the terminal."""
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
    )


def console(stream: IO[str] | None = None, *, width: int | None = None) -> Console:
    """A rich console on ``stream``: coloured on a terminal, plain and wide otherwise."""
    from rich.console import Console

    stream = stream or sys.stdout
    tty = is_tty(stream)
    return Console(
        file=stream,
        force_terminal=tty,
        no_color=not tty,
        highlight=False,
        markup=False,
        soft_wrap=False,
        width=width or (None if tty else 250),
    )


def table(
    items: Sequence[Any], columns: Sequence[Column], *, wide: bool = False, headers: bool = True
) -> Table:
    """A kubectl-style table: upper-case headers (unless ``headers`` is False), no borders."""
    from rich.table import Table

    shown = [c for c in columns if wide or not c.wide]
    grid = Table(
        box=None, pad_edge=False, show_edge=False, header_style="bold", show_header=headers
    )
    for col in shown:
        grid.add_column(col.header.upper(), no_wrap=True)
    for item in items:
        grid.add_row(*(cell(col.get(item)) for col in shown))
    return grid


KINDS = {"tokenpublic": "token", "tokencreated": "token", "nodeout": "node"}
"""``-o name`` kinds of the wire models whose class name is not the noun users type."""


def _name(item: Any) -> str:
    plain = to_plain(item)
    if isinstance(plain, dict):
        kind = str(plain.get("kind") or type(item).__name__).lower()
        kind = KINDS.get(kind, kind)
        name = (plain.get("metadata") or {}).get("name") or plain.get("name") or plain.get("id")
        return f"{kind}/{name}"
    return str(plain)


def render_text(renderable: RenderableType, *, width: int = 250) -> str:
    """A rich renderable as plain text (for tests and pipes)."""
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, no_color=True, width=width, highlight=False, markup=False).print(renderable)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines()) + "\n"


def render(
    data: Any,
    fmt: Format | str,
    columns: Sequence[Column] = (),
    *,
    stream: IO[str] | None = None,
    headers: bool = True,
    rows: Sequence[Any] | None = None,
) -> None:
    """Write ``data`` to ``stream`` (stdout) in format ``fmt`` (see the module).

    A table needs ``columns``; a single object is shown as a one-row table. ``rows`` are the
    items a table or ``-o name`` shows when ``data`` is a document wrapping them.
    """
    stream = stream or sys.stdout
    if str(fmt).startswith(JSONPATH):
        stream.write(jsonpath(to_plain(data), str(fmt)[len(JSONPATH) :]) + "\n")
        return
    fmt = Format(fmt)
    if fmt is Format.JSON:
        stream.write(json.dumps(to_plain(data), indent=2, ensure_ascii=False) + "\n")
    elif fmt is Format.YAML:
        import yaml

        stream.write(yaml.safe_dump(to_plain(data), sort_keys=False, allow_unicode=True))
    else:
        if rows is not None:
            items: Sequence[Any] = rows
        else:
            items = data if isinstance(data, list | tuple) else [data]
        if fmt is Format.NAME:
            for item in items:
                stream.write(_name(item) + "\n")
            return
        if not items:
            return
        console(stream).print(table(items, columns, wide=fmt is Format.WIDE, headers=headers))
