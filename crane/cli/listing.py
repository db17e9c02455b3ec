"""What kubectl users expect of ``list``: ``-l`` selectors, ``-A`` (every tenant), ``-w`` (watch)
and ``--no-headers``; for MiniClusters and Cargos alike. No typer here.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from crane.cli.interrupt import INTERRUPTED
from crane.cli.objects import listing, manifest
from crane.cli.render import Column, Format, render
from crane.cli.term import UsageError

Fetch = Callable[[str | None], Sequence[Any]]
"""Objects of one tenant (``None``: the caller's)."""


Term = tuple[str, str, frozenset[str]]
"""One requirement of a label selector: key, operator, values (empty for exists and !exists)."""

_SET_TERM = re.compile(r"^(?P<key>[^\s()!=,]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_SYNTAX = "e.g. team=a, team!=a, team in (a,b), team notin (a,b), team, !team"


def _terms(text: str) -> list[str]:
    """``text`` split at the commas that are not inside ``( )``."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            raise UsageError(f"-l {text!r}: unbalanced parentheses; {_SYNTAX}")
        if char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    if depth:
        raise UsageError(f"-l {text!r}: unbalanced parentheses; {_SYNTAX}")
    return [*terms, text[start:]]


def _term(raw: str, text: str) -> Term:
    """One requirement, as kubectl reads it; a UsageError naming what is wrong otherwise."""
    # crane.model.labels brings pydantic, which `crane --help` must not load (issue 15).
    from crane.model.labels import label_key_issue, label_value_issue

    term = raw.strip()
    found = _SET_TERM.match(term)
    if found:
        values = frozenset(v.strip() for v in found["values"].split(","))
        key, op = found["key"], found["op"]
    elif "!=" in term:
        key, _, value = term.partition("!=")
        key, op, values = key.strip(), "!=", frozenset({value.strip()})
    elif "=" in term:
        key, _, value = term.partition("==" if "==" in term else "=")
        key, op, values = key.strip(), "=", frozenset({value.strip()})
    elif term.startswith("!"):
        key, op, values = term[1:].strip(), "!exists", frozenset()
    else:
        key, op, values = term, "exists", frozenset()
    issue = label_key_issue(key) if key else f"a term without a key ({raw.strip()!r})"
    if op in ("in", "notin") and "" in values:
        issue = issue or f"{key} {op} (...): list one or more values, none empty"
    issue = issue or next(filter(None, (label_value_issue(v) for v in sorted(values))), None)
    if issue:
        raise UsageError(f"-l {text!r}: {issue}; {_SYNTAX}")
    return key, op, values


def parse_selector(text: str | None) -> list[Term]:
    """A Kubernetes label selector (``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin
    (a,b)``, ``k``, ``!k``; comma-separated, all must hold) as terms; a UsageError (exit 2)
    naming the bad term, never a selector that silently matches nothing."""
    if not text or not text.strip():
        return []
    return [_term(raw, text) for raw in _terms(text)]


def matches(labels: Mapping[str, str], selector: list[Term]) -> bool:
    """Whether ``labels`` satisfy every term of ``selector``."""
    for key, op, values in selector:
        have = labels.get(key)
        if (
            (op in ("=", "in") and have not in values)
            or (op in ("!=", "notin") and have in values)
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


def _steady(
    poll: Callable[[], Sequence[Any]],
    url: str,
    reconnect_for: float,
    notice: Callable[[Exception | None], None],
    interval: float,
) -> Callable[[], Sequence[Any]]:
    """``poll`` that rides out a lost connection as ``crane events -w`` does: it polls again
    every ``interval`` until the server answers, saying so through ``notice``, and raises
    :class:`~crane.client.ConnectionLost` once ``reconnect_for`` passes without it."""
    from crane.client import Outage

    outage = Outage(url, True, reconnect_for, notice)
    outage.connected = True  # the listing before the watch got its answer

    def polled() -> Sequence[Any]:
        while True:
            try:
                found = poll()
            except Outage.MENDABLE as exc:
                outage.lost(exc)
                time.sleep(interval)
                continue
            outage.back()
            return found

    return polled


def watch(
    poll: Callable[[], Sequence[Any]],
    output: str,
    columns: Sequence[Column],
    *,
    url: str,
    reconnect_for: float,
    notice: Callable[[Exception | None], None],
    interval: float = 2.0,
) -> None:
    """Print each change as a row (or a document) until Ctrl-C, which ends it quietly with
    exit 130 (as ``kubectl get -w``, and ``crane events -w``: a script tells it from a watch
    that ended by itself). A lost connection to ``url`` is retried for ``reconnect_for``
    seconds, said through ``notice``, then one line and exit 1."""
    try:
        for obj in changes(_steady(poll, url, reconnect_for, notice, interval), interval):
            if output == Format.YAML:
                sys.stdout.write("---\n")  # one YAML stream of documents
            if output in (Format.JSON, Format.YAML):
                render(manifest(obj), output)
            else:
                render([obj], output, columns, headers=False)
            sys.stdout.flush()
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
