"""One renderer for every command's data (``-o``). No typer here.

Formats: ``table``, ``wide`` (more columns), ``json``, ``yaml``, ``name`` (``kind/name`` per
line) and ``jsonpath=TEMPLATE`` (kubectl's ``{.items[*].metadata.name}`` subset). Data goes to
stdout; tables are drawn with rich, in colour only on a terminal.
"""

from __future__ import annotations

import errno
import io
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import IO, TYPE_CHECKING, Any

from crane.api.logsafe import printable as printable  # one rule: the CLI's and the log's
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


_EXAMPLE = "e.g. jsonpath='{.items[*].metadata.name}'"
_PATH_REST = re.compile(r"[^.\[\]\s]+|\[\s*(\*|-?\d+)?\s*\]|\.")
_QUOTED = re.compile(r"""^"((?:[^"\\]|\\.)*)"$|^'((?:[^'\\]|\\.)*)'$""")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}

Path = list[str | int | None]
"""A path's steps: a field, an index, or ``None`` for ``[*]``."""
Node = tuple[str, Any]
"""A template part: ``("text", str)``, ``("path", Path)`` or ``("range", (Path, [Node]))``."""


def _path(expr: str, template: str) -> Path:
    """``.a.b[*].c`` (or ``$.a``, ``@.a``: the current object) as steps; ValueError naming
    what cannot be read (kubectl's recursive descent ``..`` too: never an empty answer)."""
    expr = expr.strip().removeprefix("$").removeprefix("@")
    if ".." in expr:
        raise ValueError(
            f"jsonpath {template!r}: recursive descent (..) in {{{expr}}} is not supported: "
            f"name each field, with [*] for every item; {_EXAMPLE}"
        )
    rest = _PATH_REST.sub("", expr)
    if rest:
        raise ValueError(
            f"jsonpath {template!r}: cannot read {rest!r} in {{{expr}}}: use fields, [N], [*], "
            f'{{range ...}}{{end}} and quoted text such as {{"\\n"}}; {_EXAMPLE}'
        )
    path: Path = []
    for part in re.findall(r"[^.\[\]]+|\[[^\]]*\]", expr):
        if part.startswith("["):
            inner = part[1:-1].strip()
            path.append(None if inner in ("*", "") else int(inner))
        else:
            path.append(part)
    return path


def _unquote(body: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), body)


def _parse(template: str) -> list[Node]:
    """kubectl's template: text, ``{path}``, ``{"quoted text"}`` and ``{range path}...{end}``;
    a template without braces is one path (kubectl's relaxed form). ValueError when it is not."""
    if template.count("{") != template.count("}") or re.search(r"\{[^}]*\{|\}[^{]*\}", template):
        raise ValueError(f"jsonpath {template!r}: unbalanced or nested braces; {_EXAMPLE}")
    if "{" not in template:
        return [("path", _path(template, template))]
    stack: list[list[Node]] = [[]]
    opened: list[Path] = []
    for i, part in enumerate(re.split(r"\{([^}]*)\}", template)):
        if i % 2 == 0:
            if part:
                stack[-1].append(("text", part))
            continue
        expr = part.strip()
        quoted = _QUOTED.match(expr)
        if quoted:
            stack[-1].append(("text", _unquote(quoted.group(1) or quoted.group(2) or "")))
        elif expr == "end":
            if not opened:
                raise ValueError(f"jsonpath {template!r}: {{end}} without {{range}}; {_EXAMPLE}")
            body = stack.pop()
            stack[-1].append(("range", (opened.pop(), body)))
        elif expr.startswith("range ") or expr == "range":
            opened.append(_path(expr[len("range") :], template))
            stack.append([])
        else:
            stack[-1].append(("path", _path(expr, template)))
    if opened:
        raise ValueError(f"jsonpath {template!r}: {{range}} without {{end}}; {_EXAMPLE}")
    return stack[0]


def check_jsonpath(template: str) -> None:
    """Raise ValueError saying what is wrong unless ``template`` is in the subset
    :func:`jsonpath` reads: text, ``{...}`` paths (not nested) of fields, ``[N]`` and ``[*]``,
    ``{"quoted text"}`` and ``{range PATH}...{end}``."""
    _parse(template)


class JsonPathError(ValueError):
    """A jsonpath template that does not fit the data (an index past the end), as kubectl's
    ``array index out of bounds: index 5, length 2``."""


def _walk(data: Any, path: Path, template: str) -> list[Any]:
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
    return values


def _text(value: Any) -> str:
    return (
        json.dumps(value)
        if isinstance(value, dict | list)
        else ("" if value is None else str(value))
    )


def _run(nodes: list[Node], data: Any, template: str) -> str:
    out: list[str] = []
    for kind, what in nodes:
        if kind == "text":
            out.append(what)
        elif kind == "path":
            out.append(" ".join(_text(v) for v in _walk(data, what, template)))
        else:
            path, body = what
            out.extend(_run(body, item, template) for item in _walk(data, path, template))
    return "".join(out)


def jsonpath(data: Any, template: str) -> str:
    """kubectl's jsonpath subset: text, fields, ``[N]``, ``[*]`` (values joined by spaces),
    ``{"quoted text"}`` with ``\\n`` and ``\\t``, and ``{range PATH}...{end}``. A missing field
    reads as nothing (kubectl's default); an index past the end of a list raises
    :class:`JsonPathError`, as kubectl's does, rather than printing nothing."""
    return _run(_parse(template), data, template)


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


def console(stream: IO[str] | None = None, *, width: int | None = None) -> Console:
    """A rich console on ``stream``: coloured on a terminal, plain and wide otherwise."""
    from rich.console import Console

    stream = stream or sys.stdout
    tty = is_tty(stream)

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            """A reader gone (``| head``) is the CLI's entry point's to handle, once, for every
            command: raise, where rich would exit 1 by itself."""
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    return _Console(
        file=stream,
        force_terminal=tty,
        no_color=not tty,
        highlight=False,
        markup=False,
        soft_wrap=False,
        width=width or (None if tty else 250),
        height=25 if width else None,  # rich takes a width with a height (else TERM=dumb: 80)
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
        text = jsonpath(to_plain(data), str(fmt)[len(JSONPATH) :])
        stream.write(text if text.endswith("\n") else text + "\n")
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
        grid = table(items, columns, wide=fmt is Format.WIDE, headers=headers)
        out = console(stream)
        need = out.measure(grid, options=out.options.update_width(100_000)).maximum
        if need > out.width:  # a narrow terminal wraps whole rows (as kubectl's): cut no cell
            out = console(stream, width=need)
        out.print(grid)
