"""Generate the command reference of docs/cli.md from the registered commands.

    python -m crane.cli.docs          # rewrite the generated part of docs/cli.md
    python -m crane.cli.docs --check  # exit 1 when docs/cli.md is out of date (tests run this)

Only the text between the BEGIN and END markers is generated; the rest of the file is prose.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

BEGIN = "<!-- BEGIN GENERATED: python -m crane.cli.docs -->"
END = "<!-- END GENERATED -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def _walk(command: Any, path: list[str]) -> list[tuple[list[str], Any]]:
    if not hasattr(command, "list_commands"):
        return [(path, command)]
    ctx = command.make_context(path[-1], [], resilient_parsing=True)
    out: list[tuple[list[str], Any]] = []
    for name in sorted(command.list_commands(ctx)):
        sub = command.get_command(ctx, name)
        if getattr(sub, "hidden", False):
            continue
        out.extend(_walk(sub, [*path, name]))
    return out


def _option(param: Any) -> str:
    names = "/".join([*param.opts, *param.secondary_opts])
    return f"`{names}`"


def reference() -> str:
    """The generated Markdown: one row per command with its summary, arguments and options."""
    import typer.main

    from crane.cli.main import app

    root = typer.main.get_command(app)
    rows = [
        "| command | what it does | arguments | options |",
        "|---|---|---|---|",
    ]
    for path, command in _walk(root, ["crane"]):
        summary = (command.help or "").strip().splitlines()[0] if command.help else ""
        args = " ".join(
            f"`{p.name.upper()}{'...' if p.nargs == -1 else ''}`"
            for p in command.params
            if p.param_type_name == "argument"
        )
        opts = ", ".join(
            _option(p)
            for p in command.params
            if p.param_type_name == "option" and p.name != "help" and not p.hidden
        )
        rows.append(f"| `{' '.join(path)}` | {summary.replace('|', '/')} | {args} | {opts} |")
    return "\n".join(rows) + "\n"


def render(text: str) -> str:
    """``text`` (docs/cli.md) with its generated part replaced by :func:`reference`."""
    head, sep, rest = text.partition(BEGIN)
    if not sep or END not in rest:
        raise SystemExit(f"{DOC}: no {BEGIN} ... {END} markers")
    return f"{head}{BEGIN}\n\n{reference()}\n{END}{rest.split(END, 1)[1]}"


def main(argv: list[str]) -> int:
    """Rewrite docs/cli.md, or with ``--check`` say whether it is current (exit 1 if not)."""
    current = DOC.read_text()
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            sys.stderr.write("docs/cli.md is out of date: run `python -m crane.cli.docs`\n")
            return 1
        return 0
    DOC.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
