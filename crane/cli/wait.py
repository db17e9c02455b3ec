"""``crane wait``: block until MiniClusters or cargos meet a condition, like ``kubectl wait``.

``--for=condition=Admitted`` (``=False`` for the opposite), ``--for=phase=Running`` (cargos) or
``--for=delete``; objects as ``mc/NAME`` or ``cargo/NAME``. Exit 1 with what is still missing on
timeout.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from crane.cli.options import YEAR_SECONDS, client, duration
from crane.cli.term import UsageError

KINDS = {
    "mc": "mc",
    "minicluster": "mc",
    "miniclusters": "mc",
    "cargo": "cargo",
    "cargos": "cargo",
    "cg": "cargo",
}


def parse_for(text: str) -> tuple[str, str, str]:
    """``condition=T[=S]``, ``phase=P`` or ``delete`` as ``(what, name, wanted)``."""
    if text == "delete":
        return ("delete", "", "")
    what, _, rest = text.partition("=")
    if what == "condition" and rest:
        name, _, wanted = rest.partition("=")
        return ("condition", name, wanted or "True")
    if what == "phase" and rest:
        return ("phase", rest, "")
    raise UsageError(
        f"--for={text}: use condition=NAME[=True|False], phase=PHASE (cargos) or delete"
    )


def parse_ref(text: str) -> tuple[str, str]:
    """``mc/NAME`` or ``cargo/NAME`` as ``(kind, name)``."""
    kind, sep, name = text.partition("/")
    if not sep or kind.lower() not in KINDS or not name:
        raise UsageError(f"{text!r}: name objects as mc/NAME or cargo/NAME")
    return KINDS[kind.lower()], name


def met(obj: Any, what: str, name: str, wanted: str) -> bool:
    """Whether ``obj`` (a MiniCluster or Cargo) meets the condition or phase."""
    if what == "phase":
        return str(getattr(obj.status, "phase", "")).lower() == name.lower()
    for cond in obj.status.conditions:
        if cond.type.lower() == name.lower():
            return str(cond.status).lower() == wanted.lower()
    return False


def wait(
    refs: Annotated[list[str], typer.Argument(help="Objects: mc/NAME or cargo/NAME.")],
    for_: Annotated[
        str,
        typer.Option(
            "--for", help="condition=NAME[=True|False], phase=PHASE or delete.", metavar="WHAT"
        ),
    ],
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout",
            help="How long to wait: seconds or a duration such as 30s, 5m, 1h.",
            metavar="DURATION",
            parser=duration(YEAR_SECONDS),
        ),
    ] = 300.0,
    interval: Annotated[
        float,
        typer.Option(
            "--interval",
            help="Between checks: seconds or 2s, 1m.",
            metavar="DURATION",
            parser=duration(3600),
        ),
    ] = 1.0,
) -> None:
    """Wait until every object meets --for; prints each one as it does (like kubectl wait)."""
    from crane.client import NotFound, WaitTimeout

    what, name, wanted = parse_for(for_)
    targets = [parse_ref(r) for r in refs]
    if what == "phase" and any(kind == "mc" for kind, _ in targets):
        raise UsageError("--for=phase=... is for cargos; MiniClusters have conditions")
    api = client()
    pending = list(targets)
    deadline = time.monotonic() + timeout
    while pending:
        for kind, obj_name in list(pending):
            try:
                obj = api.get_minicluster(obj_name) if kind == "mc" else api.get_cargo(obj_name)
            except NotFound:
                if what != "delete":
                    raise
                obj = None
            done = obj is None if what == "delete" else met(obj, what, name, wanted)
            if done:
                pending.remove((kind, obj_name))
                label = "deleted" if what == "delete" else "condition met"
                typer.echo(f"{'minicluster' if kind == 'mc' else 'cargo'}/{obj_name} {label}")
        if not pending:
            return
        if time.monotonic() > deadline:
            left = ", ".join(f"{k}/{n}" for k, n in pending)
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {for_} on {left}")
        time.sleep(interval)
