"""Domain search: the narrowest topology domain, best fit, that holds a gang."""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from crane.placement.fit import best_fit_nodes, fewest_nodes, hist_fits
from crane.placement.index import FreeIndex


class NodeView(Protocol):
    """What the search needs of a node."""

    @property
    def name(self) -> str:
        """The node's name."""

    @property
    def product(self) -> str:
        """The node's GPU product."""

    @property
    def path(self) -> tuple[str, ...]:
        """The node's domain at each topology level, widest first."""

    @property
    def avail(self) -> int:
        """Free GPUs the index counts on the node (0 on a closed node)."""

    def island_fit(self, size: int) -> tuple[int, int]:
        """How well ``size`` free GPUs sit in the node's islands, lower is better."""


@dataclass(frozen=True)
class Fit:
    """A domain that holds the gang and the node of each chunk (replica or reservation part)."""

    level: int
    domain: str
    product: str
    chunks: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Query:
    """A gang to fit.

    ``sizes``: GPUs per chunk; with ``any_split`` only their sum matters (split over as few
    nodes as possible). ``base``: whether the index's free GPUs count; ``overlay``: extra GPUs
    per node on top (a MiniCluster's idle reserved ones). ``within``: only inside this domain.
    ``avoid``: domains claimed by blocked MiniClusters ahead in the queue.
    """

    products: tuple[str, ...]
    sizes: tuple[int, ...]
    levels: tuple[int, ...]
    base: bool = True
    overlay: Mapping[str, int] = field(default_factory=dict)
    within: str | None = None
    avoid: tuple[str, ...] = ()
    any_split: bool = False

    @property
    def needed(self) -> int:
        """GPUs the gang needs in all: the sum of ``sizes``."""
        return sum(self.sizes)


def overlaps(a: str, b: str) -> bool:
    """Whether two domain paths nest (one holds the other)."""
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def inside(domain: str, container: str) -> bool:
    """Whether domain path ``domain`` is ``container`` or lies inside it."""
    return domain == container or domain.startswith(container + "/")


def search(index: FreeIndex, nodes: Mapping[str, NodeView], q: Query) -> Fit | None:
    """The first level of ``q.levels`` (narrowest first) with a domain holding the gang; at that
    level the domain with least free GPUs that does (best fit), ties by name then product.

    A single replica placed on free GPUs alone goes to the best-fit node and, among equally
    good nodes, to the one whose parent domain (the level above the node) has fewest free GPUs,
    so nodes already broken into are filled and emptier domains stay whole for gangs."""
    for level in q.levels:
        found: list[Fit] = []
        for product in q.products:
            fit = _search_level(index, nodes, q, level, product)
            if fit is not None:
                found.append(fit)
        if found:
            return min(found, key=lambda f: (_free_of(index, nodes, q, f), f.domain, f.product))
    return None


def _free_of(index: FreeIndex, nodes: Mapping[str, NodeView], q: Query, f: Fit) -> int:
    base = index.total(f.level, f.domain, f.product) if q.base else 0
    extra = sum(
        e
        for n, e in q.overlay.items()
        if nodes[n].product == f.product and nodes[n].path[f.level] == f.domain
    )
    return base + extra


def _search_level(
    index: FreeIndex, nodes: Mapping[str, NodeView], q: Query, level: int, product: str
) -> Fit | None:
    needed = q.needed
    if level == index.depth - 1 and len(q.sizes) == 1 and _plain(q):
        tightest = index.tightest_node(product, needed)
        if tightest is None:
            return None
        name = _island_tiebreak(index, nodes, product, tightest, needed)
        return Fit(level, nodes[name].path[level], product, ((name, needed),))
    best: tuple[int, Fit] | None = None
    compared = 0
    for total, domain in _candidates(index, nodes, q, level, product):
        if total < needed or any(overlaps(domain, a) for a in q.avoid):
            continue
        members = _members(index, nodes, q, level, domain, product)
        if q.any_split:
            split = fewest_nodes(members, needed)
            if split is not None:
                return Fit(level, domain, product, tuple(split))
            continue
        hist: dict[int, int] = {}
        for free, _ in members:
            hist[free] = hist.get(free, 0) + 1
        if not hist_fits(hist, q.sizes):
            continue
        found = _tightest_fit(nodes, q, level, domain, product, members)
        if found is None:
            continue
        touched, fit = found
        if best is None or touched < best[0]:
            best = (touched, fit)
        compared += 1
        if touched <= 1 or compared >= DOMAINS_COMPARED:
            break
    return best[1] if best is not None else None


DOMAINS_COMPARED = 8
"""Most fitting domains of one level compared on how many sub-domains the gang touches."""


def _tightest_fit(
    nodes: Mapping[str, NodeView],
    q: Query,
    level: int,
    domain: str,
    product: str,
    members: list[tuple[int, str]],
) -> tuple[int, Fit] | None:
    """The gang inside ``domain``, and how many sub-domains (the level below) it touches.

    When the sub-domains are not nodes themselves (a gang spilling over racks of a block), the
    gang goes to as few of them as possible: most room first, the last one best fit; then
    best-fit-decreasing onto their nodes (onto all of ``domain``'s nodes if that fails). A gang
    that does not span sub-domains touches 1."""
    score = _island_score(nodes) if not q.overlay else None
    sizes = sorted(q.sizes, reverse=True)
    below = level + 1
    spans = len(sizes) > 1 and below < len(nodes[members[0][1]].path) - 1
    chosen = members
    if spans:
        room: dict[str, int] = {}
        for free, name in members:
            child = nodes[name].path[below]
            room[child] = room.get(child, 0) + free // sizes[0]
        picked = fewest_nodes(sorted((r, c) for c, r in room.items() if r > 0), len(sizes))
        if picked is not None:
            keep = {c for c, _ in picked}
            chosen = [m for m in members if nodes[m[1]].path[below] in keep]
    placed = best_fit_nodes(chosen, q.sizes, score)
    if placed is None and chosen is not members:
        placed = best_fit_nodes(members, q.sizes, score)
    if placed is None:
        return None
    touched = len({nodes[n].path[below] for n in placed}) if spans else 1
    return touched, Fit(level, domain, product, tuple(zip(placed, sizes, strict=True)))


ISLAND_TIES = 64
"""Most equally good nodes compared on islands for one replica (keeps a decision bounded)."""


def _island_tiebreak(
    index: FreeIndex,
    nodes: Mapping[str, NodeView],
    product: str,
    tightest: tuple[int, str],
    size: int,
) -> str:
    """Among the nodes as good as ``tightest`` (same free count, same parent domain), the one
    where the replica stays inside one island, tightest island first; ties by name. Looks at
    no more than :data:`ISLAND_TIES` nodes."""
    free, name = tightest
    parent = index.depth - 2
    if parent < 0:
        return name
    members = index.members(parent, nodes[name].path[parent], product)
    start = bisect_left(members, (free, ""))
    ties = [n for f, n in members[start : start + ISLAND_TIES] if f == free]
    return min(ties, key=lambda n: (nodes[n].island_fit(size), n)) if len(ties) > 1 else name


def _island_score(nodes: Mapping[str, NodeView]) -> Callable[[str, int], tuple[int, int]]:
    def score(name: str, size: int) -> tuple[int, int]:
        return nodes[name].island_fit(size)

    return score


def _plain(q: Query) -> bool:
    """Whether only the index's free GPUs count, anywhere (no overlay, scope or claim)."""
    return q.base and not q.within and not q.avoid and not any(e > 0 for e in q.overlay.values())


def _overlay_domains(
    index: FreeIndex, nodes: Mapping[str, NodeView], q: Query, level: int, product: str
) -> dict[str, int]:
    totals: dict[str, int] = {}
    for name, extra in q.overlay.items():
        node = nodes[name]
        if extra <= 0 or node.product != product:
            continue
        domain = node.path[level]
        if domain not in totals:
            totals[domain] = index.total(level, domain, product) if q.base else 0
        totals[domain] += extra
    return totals


def _candidates(
    index: FreeIndex, nodes: Mapping[str, NodeView], q: Query, level: int, product: str
) -> Iterator[tuple[int, str]]:
    """Domains of a level in best-fit order (least free first) with at least the gang's size."""
    needed = q.needed
    special = _overlay_domains(index, nodes, q, level, product)
    extra = sorted((t, d) for d, t in special.items() if t >= needed)
    if q.within is not None:
        if q.base:
            within_level = q.within.count("/")
            for _, name in index.members(within_level, q.within, product):
                domain = nodes[name].path[level]
                if domain not in special:
                    special[domain] = index.total(level, domain, product)
            extra = sorted((t, d) for d, t in special.items() if t >= needed)
        yield from ((t, d) for t, d in extra if inside(d, q.within))
        return
    if not q.base:
        yield from extra
        return
    base = ((t, d) for t, d in index.domains_from(level, product, needed) if d not in special)
    yield from heapq.merge(base, extra)


def _members(
    index: FreeIndex,
    nodes: Mapping[str, NodeView],
    q: Query,
    level: int,
    domain: str,
    product: str,
) -> list[tuple[int, str]]:
    """The domain's nodes as (available, name), sorted, with the overlay added."""
    touched = {
        n: e
        for n, e in q.overlay.items()
        if e > 0 and nodes[n].product == product and inside(nodes[n].path[level], domain)
    }
    base: Iterable[tuple[int, str]] = index.members(level, domain, product) if q.base else ()
    if not touched:
        return list(base)
    out = [(f, n) for f, n in base if n not in touched]
    for name, e in touched.items():
        out.append(((nodes[name].avail if q.base else 0) + e, name))
    out.sort()
    return out


def levels_for(required: bool, level: int, depth: int) -> tuple[int, ...]:
    """Levels to search, narrowest first: down to ``level`` when required, else to the cluster."""
    last = level if required else 0
    return tuple(range(depth - 1, last - 1, -1))


def chunk_sizes(needed: int, slot: int) -> tuple[int, ...]:
    """``needed`` GPUs as slots of ``slot`` and one remainder."""
    if slot <= 0:
        return (needed,) if needed else ()
    full, rest = divmod(needed, slot)
    return (slot,) * full + ((rest,) if rest else ())
