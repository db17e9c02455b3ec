"""Kubernetes Node -> :class:`NodeInventory`."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from crane.kube.dra import DraNode
from crane.model.inventory import (
    GPU_PRODUCT_LABEL,
    GPU_RESOURCE,
    ISLANDS_ANNOTATION,
    MANAGED_LABEL,
    MAX_NODE_GPUS,
    NodeInventory,
    parse_islands,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeView:
    """The fields of a Node that Crane uses; ``not_ready_since`` is set while not Ready."""

    name: str
    managed: bool
    gpu_product: str
    gpu_count: int
    islands: tuple[tuple[int, ...], ...]
    labels: tuple[tuple[str, str], ...]
    ready: bool
    schedulable: bool
    not_ready_since: datetime | None
    dra: DraNode | None = None
    """Set when a GPU DRA driver publishes the node's GPUs: they come from its ResourceSlices."""


_QUANTITY = re.compile(
    r"([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE])?"
)
_SUFFIXES = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    **{s: Decimal(10) ** (3 * (i + 1)) for i, s in enumerate("kMGTPE")},
    **{f"{s}i": Decimal(2) ** (10 * (i + 1)) for i, s in enumerate("KMGTPE")},
}


_MAX_DIGITS = 18
"""A quantity past 10**18 (int64's range, as the API server keeps them) reads as unreadable."""


def quantity(value: Any) -> int:
    """A whole count from a Kubernetes quantity (``8``, ``1k``, ``2000m``, ``1e3``); 0 when
    unreadable or past int64. The API server accepts every notation, so a pod may ask for
    ``1k`` GPUs."""
    found = _QUANTITY.fullmatch(str(value).strip())
    if found is None:
        return 0
    try:
        number = Decimal(found.group(1)) * _SUFFIXES[found.group(2) or ""]
    except (InvalidOperation, ValueError, OverflowError):
        return 0
    if not number.is_finite() or number.adjusted() > _MAX_DIGITS:
        return 0  # 9e999999 would be a million-digit int: no node has that many of anything
    return int(number)


def _gpu_count(name: Any, count: int) -> int:
    """The node's GPU count, or 0 (the node left out) when no real node has it: a device
    plugin's bad count must not make the pass build millions of GPU ids for every tenant."""
    if 0 <= count <= MAX_NODE_GPUS:
        return count
    log.warning(
        "node %s reports %d GPUs (Crane takes 0 to %d per node); leaving it out",
        name,
        count,
        MAX_NODE_GPUS,
    )
    return 0


def node_view(body: Mapping[str, Any], label_keys: Iterable[str]) -> NodeView:
    """Reduce a Node (wire form) to what the engine needs: GPUs, islands, topology labels."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    alloc = status.get("allocatable") or status.get("capacity") or {}
    count = _gpu_count(meta.get("name"), quantity(alloc.get(GPU_RESOURCE, 0)))
    try:
        islands = parse_islands(annotations.get(ISLANDS_ANNOTATION, ""), count)
    except ValueError as err:
        log.warning("node %s: %s; using one island", meta.get("name"), err)
        islands = parse_islands("", count)
    ready, since = True, None
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            ready = cond.get("status") == "True"
            if not ready and cond.get("lastTransitionTime"):
                since = _parse_time(cond["lastTransitionTime"])
    keep = set(label_keys)
    return NodeView(
        name=meta["name"],
        managed=labels.get(MANAGED_LABEL) == "true",
        gpu_product=labels.get(GPU_PRODUCT_LABEL, ""),
        gpu_count=count,
        islands=islands,
        labels=tuple(sorted((k, v) for k, v in labels.items() if k in keep)),
        ready=ready,
        schedulable=not (body.get("spec") or {}).get("unschedulable", False),
        not_ready_since=since,
    )


def with_dra(view: NodeView, dra: DraNode | None) -> NodeView:
    """The node with its GPUs as its DRA driver publishes them (product, count, islands); the
    view unchanged when no driver publishes GPUs for it (device-plugin mode)."""
    if dra is None or not dra.devices:
        return view
    if not _gpu_count(view.name, len(dra.devices)):
        return replace(view, gpu_count=0, islands=(), dra=None)
    return replace(
        view,
        gpu_product=dra.product or view.gpu_product,
        gpu_count=len(dra.devices),
        islands=dra.islands,
        dra=dra,
    )


def _parse_time(text: Any) -> datetime | None:
    if isinstance(text, datetime):
        return text
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def inventory(view: NodeView, busy_gpu_ids: frozenset[int] = frozenset()) -> NodeInventory:
    """The engine's view of a node; ``busy_gpu_ids`` are GPUs held by pods that are not Crane's."""
    return NodeInventory(
        name=view.name,
        gpu_product=view.gpu_product,
        gpu_count=view.gpu_count,
        islands=view.islands,
        labels=dict(view.labels),
        busy_gpu_ids=busy_gpu_ids,
        ready=view.ready,
        schedulable=view.schedulable,
    )


def busy_ids(gpu_count: int, crane_ids: Iterable[int], foreign_gpus: int) -> frozenset[int]:
    """Which GPU ids to mark busy for ``foreign_gpus`` GPUs held by non-Crane pods.

    Kubernetes does not say which GPUs a foreign pod got, so the highest ids that Crane does not
    use are taken; the count is what matters to the engine.
    """
    used = set(crane_ids)
    free = [i for i in range(gpu_count - 1, -1, -1) if i not in used]
    return frozenset(free[: max(0, foreign_gpus)])
