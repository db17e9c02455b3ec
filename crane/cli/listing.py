"""What kubectl users expect of ``list``: ``-l`` selectors, ``-A`` (every tenant), ``-w`` (watch)
and ``--no-headers``; for MiniClusters and Cargos alike. No typer here.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from crane.cli.objects import listing, manifest
from crane.cli.render import Column, Format, render
from crane.cli.term import UsageError

Fetch = Callable[[str | None], Sequence[Any]]
"""Objects of one tenant (``None``: the caller's)."""


def parse_selector(text: str | None) -> list[tuple[str, str, str | None]]:
    """``k=v,k!=v,k,!k`` as ``(key, op, value)``; op ``=``, ``!=``, ``exists`` or ``!exists``."""
    out: list[tuple[str, str, str | None]] = []
    for raw in (text or "").split(","):
        term = raw.strip()
        if not term:
            continue
        if "!=" in term:
            key, value = term.split("!=", 1)
            out.append((key.strip(), "!=", value.strip()))
        elif "=" in term:
            key, value = term.split("=", 1)
            out.append((key.strip().rstrip("="), "=", value.strip()))
        elif term.startswith("!"):
            out.append((term[1:].strip(), "!exists", None))
        else:
            out.append((term, "exists", None))
    for key, _, _ in out:
        if not key:
            raise UsageError(f"-l {text!r}: write key=value, key!=value, key or !key")
    return out


def matches(labels: Mapping[str, str], selector: list[tuple[str, str, str | None]]) -> bool:
    """Whether ``labels`` satisfy every term of ``selector``."""
    for key, op, value in selector:
        have = labels.get(key)
        if (
            (op == "=" and have != value)
            or (op == "!=" and have == value)
            or (op == "exists" and have is None)
            or (op == "!exists" and have is not None)
        ):
            return False
    return True


def labels_of(obj: Any) -> Mapping[str, str]:
    """An object's labels (a Cargo has none of its own: ``{}``)."""
    found = getattr(obj, "labels", None)
    return found if isinstance(found, Mapping) else {}


def gather(
    fetch: Fetch, tenants: Callable[[], Sequence[str]] | None, selector: str | None
) -> list[Any]:
    """The objects of the caller's tenant, or of every tenant when ``tenants`` is given."""
    terms = parse_selector(selector)
    found: list[Any] = []
    for tenant in tenants() if tenants is not None else [None]:
        found.extend(fetch(tenant))
    return [o for o in found if matches(labels_of(o), terms)]


def show(items: Sequence[Any], output: str, columns: Sequence[Column], *, headers: bool) -> None:
    """One list in any ``-o`` format; JSON and YAML in the manifest shape ``{kind: List, ...}``."""
    if output in (Format.JSON, Format.YAML) or str(output).startswith("jsonpath="):
        render(listing(items), output)
    else:
        render(items, output, columns, headers=headers)


def _key(obj: Any) -> tuple[str, str]:
    return (getattr(obj, "tenant", ""), obj.name)


def _state(obj: Any) -> str:
    plain = manifest(obj)
    return repr((plain["spec"], plain["status"]))


def changes(poll: Callable[[], Sequence[Any]], interval: float) -> Iterator[Any]:
    """Objects as they change after the first poll (a deleted one: its last state)."""
    seen = {_key(o): _state(o) for o in poll()}
    while True:
        time.sleep(interval)
        now = {_key(o): o for o in poll()}
        for key, obj in now.items():
            state = _state(obj)
            if seen.get(key) != state:
                seen[key] = state
                yield obj
        for key in set(seen) - set(now):
            del seen[key]


def watch(
    poll: Callable[[], Sequence[Any]], output: str, columns: Sequence[Column], interval: float = 2.0
) -> None:
    """Print each change as a row (or a document) until Ctrl-C, like ``kubectl get -w``."""
    try:
        for obj in changes(poll, interval):
            if output in (Format.JSON, Format.YAML):
                render(manifest(obj), output)
            else:
                render([obj], output, columns, headers=False)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return
