"""One host's trouble stays that host's: a step that fails for a host marks it NotReady with
the reason (``Host.ready=false``, ``Host.message``) and the reconcile pass goes on with the
others."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Protocol, TypeVar

from crane.model import NodeInventory
from crane.placement import Engine

log = logging.getLogger(__name__)
T = TypeVar("T")


class HostLike(Protocol):
    """What a stand-in needs of a host's spec (:class:`crane.docker.hosts.HostSpec`)."""

    @property
    def gpu_product(self) -> str:
        """The GFD product name of the host's GPUs."""

    @property
    def gpu_count(self) -> int:
        """How many GPUs the host has."""


def guarded(errors: dict[str, str], host: str, what: str, step: Callable[[], T]) -> T | None:
    """``step()`` for ``host``; on any error record why in ``errors`` and return None."""
    try:
        return step()
    except Exception as err:  # any failure of one host is that host's
        reason = f"{what} failed ({type(err).__name__}: {err}); fix the host or remove it"
        if errors.get(host) != reason:
            log.warning("host %s: %s", host, reason)
        errors[host] = reason
        return None


def add_host(
    engine: Engine,
    name: str,
    node: Callable[[], NodeInventory],
    spec: Callable[[], HostLike],
    errors: dict[str, str],
) -> None:
    """Put one host into ``engine``: its ``node()`` when that works, else a stand-in that is not
    ready (the reason goes to ``errors``), so the host's placed cargos still resolve and nothing
    new goes there."""
    built = guarded(errors, name, "reading the host", node)
    if built is not None:
        added = guarded(errors, name, "adding the host", partial(_upsert, engine, built))
        if added:
            return
    engine.upsert_node(stand_in(name, spec))


def _upsert(engine: Engine, node: NodeInventory) -> bool:
    engine.upsert_node(node)
    return True


def stand_in(name: str, spec: Callable[[], HostLike]) -> NodeInventory:
    """A not-ready node of the host's declared GPUs (none when even its spec is unreadable)."""
    try:
        declared = spec()
        return NodeInventory(
            name=name,
            gpu_product=declared.gpu_product,
            gpu_count=declared.gpu_count,
            ready=False,
            schedulable=False,
        )
    except Exception:  # an unreadable spec still stands as a node
        return NodeInventory(name=name, ready=False, schedulable=False)
