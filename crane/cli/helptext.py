"""Help without Python type names: ``N``, ``TEXT``, ``PATH`` instead of ``<int>``, ``<str>``.

typer (0.2x) shows each parameter's annotation (``<bool>``, ``<list[str]>``); a person reads a
metavar. Flags show nothing; choices show every choice. Installed once by ``crane.cli.main``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args, get_origin

NAMES: dict[Any, str] = {int: "N", float: "NUMBER", str: "TEXT", Path: "PATH"}


def metavar(annotation: Any) -> str:
    """The metavar a person reads for a parameter annotated ``annotation``."""
    if get_origin(annotation) is list:
        (inner,) = get_args(annotation) or (str,)
        return metavar(inner)
    return NAMES.get(annotation, "VALUE")


def install() -> None:
    """Replace typer's type display (kept to this one function, so a typer upgrade is easy)."""
    from typer import core

    original = core._TyperParameter.display_type

    def display_type(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) or getattr(self, "is_bool_flag", False):
            return None
        desc = self.type_descriptor
        if desc.is_choice:
            return str(original(self, ctx)).strip("<>")
        return metavar(desc.annotation)

    core._TyperParameter.display_type = display_type  # type: ignore[method-assign,assignment]
