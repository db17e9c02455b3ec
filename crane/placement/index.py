"""The incremental free-GPU index: per topology domain and GPU product, O(levels) per change."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

Key = tuple[int, str, str]
"""(level, domain path, product)."""

_EMPTY_HIST: dict[int, int] = {}
_EMPTY_LIST: list[tuple[int, str]] = []


class FreeIndex:
    """Free (placeable) GPUs of every domain at every level, per GPU product.

    Level 0 is the whole cluster, the last level is the node. For each (level, domain,
    product) it keeps the total free, a histogram of its nodes' free counts and its nodes
    sorted by free; for each (level, product) the domains sorted by total free. A node's change
    touches one entry per level. For the level just above the node (the *parent*) it also keeps,
    per (product, free count), the parents holding a node with that many free, sorted by total
    free, so :meth:`tightest_node` finds the best-fit node in the fullest parent in O(log n).
    """

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._total: dict[Key, int] = {}
        self._hist: dict[Key, dict[int, int]] = {}
        self._members: dict[Key, list[tuple[int, str]]] = {}
        self._order: dict[tuple[int, str], list[tuple[int, str]]] = {}
        self._capacity: dict[Key, int] = {}
        self._sizes: dict[tuple[int, str], dict[int, int]] = {}
        self._parent = max(depth - 2, 0)
        self._by_free: dict[tuple[str, int], list[tuple[int, str]]] = {}

    def update(self, node: str, product: str, path: Sequence[str], old: int, new: int) -> None:
        """A node's free count went from ``old`` to ``new``."""
        if old == new:
            return
        for level in range(self.depth):
            key = (level, path[level], product)
            domain = path[level]
            total = self._total.get(key, 0)
            new_total = total - old + new
            if level == self._parent:
                self._unlist_parent(key, total)
            order = self._order.setdefault((level, product), [])
            if total > 0:
                del order[bisect_left(order, (total, domain))]
            if new_total > 0:
                insort(order, (new_total, domain))
                self._total[key] = new_total
            else:
                self._total.pop(key, None)
            if not order:
                del self._order[(level, product)]
            hist = self._hist.setdefault(key, {})
            members = self._members.setdefault(key, [])
            if old > 0:
                hist[old] -= 1
                if not hist[old]:
                    del hist[old]
                del members[bisect_left(members, (old, node))]
            if new > 0:
                hist[new] = hist.get(new, 0) + 1
                insort(members, (new, node))
            if not hist:
                del self._hist[key]
                del self._members[key]
            elif level == self._parent:
                for free in hist:
                    insort(self._by_free.setdefault((product, free), []), (new_total, domain))

    def _unlist_parent(self, key: Key, total: int) -> None:
        _, domain, product = key
        for free in self._hist.get(key, _EMPTY_HIST):
            listed = self._by_free[(product, free)]
            del listed[bisect_left(listed, (total, domain))]
            if not listed:
                del self._by_free[(product, free)]

    def add_capacity(self, product: str, path: Sequence[str], gpus: int) -> None:
        """Count (or, negative, uncount) a node's GPUs in its domains' capacity.

        A node without GPUs (a CPU-only host) changes nothing."""
        if gpus == 0:
            return
        for level in range(self.depth):
            key = (level, path[level], product)
            before = self._capacity.get(key, 0)
            left = before + gpus
            sizes = self._sizes.setdefault((level, product), {})
            if before:
                sizes[before] -= 1
                if not sizes[before]:
                    del sizes[before]
            if left:
                self._capacity[key] = left
                sizes[left] = sizes.get(left, 0) + 1
            else:
                del self._capacity[key]
            if not sizes:
                del self._sizes[(level, product)]

    def total(self, level: int, domain: str, product: str) -> int:
        """Free GPUs of ``product`` in ``domain`` at ``level`` (0 when none)."""
        return self._total.get((level, domain, product), 0)

    def hist(self, level: int, domain: str, product: str) -> Mapping[int, int]:
        """Histogram of the domain's nodes: free GPUs (above 0) -> nodes with that many."""
        return self._hist.get((level, domain, product), _EMPTY_HIST)

    def members(self, level: int, domain: str, product: str) -> list[tuple[int, str]]:
        """The domain's nodes with free GPUs of ``product``, sorted by (free, name)."""
        return self._members.get((level, domain, product), _EMPTY_LIST)

    def domains_from(self, level: int, product: str, at_least: int) -> Iterator[tuple[int, str]]:
        """Domains of a level with at least ``at_least`` free, least free first (best fit)."""
        order = self._order.get((level, product), _EMPTY_LIST)
        start = bisect_left(order, (at_least, ""))
        for i in range(start, len(order)):
            yield order[i]

    def tightest_node(self, product: str, at_least: int) -> tuple[int, str] | None:
        """The node with fewest free GPUs, at least ``at_least``; among those, the one in the
        parent domain with fewest free, then by name. None when no node has that many."""
        fits = [f for p, f in self._by_free if p == product and f >= at_least]
        if not fits:
            return None
        free = min(fits)
        _, parent = self._by_free[(product, free)][0]
        members = self._members[(self._parent, parent, product)]
        return members[bisect_left(members, (free, ""))]

    def fullest(self, level: int, product: str) -> tuple[int, str] | None:
        """The (free, domain) of ``level`` with most free GPUs of ``product``; None if none."""
        order = self._order.get((level, product))
        return order[-1] if order else None

    def max_capacity(self, level: int, product: str) -> int:
        """GPUs of ``product`` in the largest domain of ``level``, used or not: O(distinct
        domain sizes of the level)."""
        return max(self._sizes.get((level, product), _EMPTY_HIST), default=0)

    def products(self) -> list[str]:
        """The GPU products with capacity in the index (nodes counted, used or not), sorted."""
        return sorted({p for (_, _, p) in self._capacity})

    def canonical(self) -> dict[str, Any]:
        """A comparable dump, equal for equal contents however they were reached."""
        return {
            "total": sorted(self._total.items()),
            "hist": sorted((k, sorted(v.items())) for k, v in self._hist.items()),
            "members": sorted((k, list(v)) for k, v in self._members.items()),
            "order": sorted((k, list(v)) for k, v in self._order.items()),
            "capacity": sorted(self._capacity.items()),
            "by_free": sorted((k, list(v)) for k, v in self._by_free.items()),
        }
