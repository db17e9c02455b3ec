"""Pure fitting helpers: replica sizes against free-GPU histograms, nodes and islands."""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Mapping, Sequence


def group_sizes(sizes: Sequence[int]) -> list[tuple[int, int]]:
    """``[8, 8, 4]`` -> ``[(8, 2), (4, 1)]``, largest first."""
    counts: dict[int, int] = {}
    for s in sizes:
        counts[s] = counts.get(s, 0) + 1
    return sorted(counts.items(), reverse=True)


def hist_fits(hist: Mapping[int, int], sizes: Sequence[int]) -> bool:
    """Whether replicas of ``sizes`` fit nodes whose free counts form ``hist`` (free -> nodes).

    Simulates best-fit-decreasing on the histogram, so the cost is O(distinct sizes x distinct
    free counts), independent of the number of nodes. Exact for identical sizes.
    """
    work = {f: c for f, c in hist.items() if c > 0}
    for size, needed in group_sizes(sizes):
        if size <= 0:
            continue
        for free in sorted(f for f in work if f >= size):
            nodes = work[free]
            if not nodes:
                continue
            per_node = free // size
            take = min(nodes, -(-needed // per_node))
            placed = min(needed, take * per_node)
            last = placed - (take - 1) * per_node
            work[free] -= take
            rest = free - per_node * size
            if take > 1 and rest:
                work[rest] = work.get(rest, 0) + take - 1
            tail = free - last * size
            if tail:
                work[tail] = work.get(tail, 0) + 1
            needed -= placed
            if needed == 0:
                break
        if needed:
            return False
    return True


def best_fit_nodes(
    cands: Sequence[tuple[int, str]],
    sizes: Sequence[int],
    score: Callable[[str, int], tuple[int, int]] | None = None,
) -> list[str] | None:
    """Best-fit-decreasing: each replica (largest first) onto the node with least room that fits.

    ``cands`` is sorted by (free, name). Among nodes with the same room, ``score(node, size)``
    (lower is better, e.g. how well the replica sits in the node's islands) breaks the tie
    before the name; it is asked about nodes untouched by this gang only, at most
    :data:`TIES_CHECKED` of them per replica. Returns the node of each replica, in the order of
    ``sorted(sizes, reverse=True)``, or None when they do not all fit.
    """
    ordered = sorted(sizes, reverse=True)
    if not ordered:
        return []
    smallest = ordered[-1]
    work = list(cands[bisect_left(cands, (smallest, "")) :])
    out: list[str] = []
    touched: set[str] = set()
    for size in ordered:
        i = bisect_left(work, (size, ""))
        if i == len(work):
            return None
        if score is not None:
            i = _tied_best(work, i, size, score, touched)
        free, name = work.pop(i)
        touched.add(name)
        out.append(name)
        if free - size >= smallest:
            insort(work, (free - size, name))
    return out


TIES_CHECKED = 64


def _tied_best(
    work: Sequence[tuple[int, str]],
    i: int,
    size: int,
    score: Callable[[str, int], tuple[int, int]],
    touched: set[str],
) -> int:
    """Index of the best-scored node among those with the same room as ``work[i]``."""
    free = work[i][0]
    best, best_key = i, None
    for j in range(i, min(len(work), i + TIES_CHECKED)):
        if work[j][0] != free:
            break
        if work[j][1] in touched:
            continue
        key = score(work[j][1], size)
        if best_key is None or key < best_key:
            best, best_key = j, key
    return best


def fewest_nodes(cands: Sequence[tuple[int, str]], needed: int) -> list[tuple[str, int]] | None:
    """``needed`` GPUs over as few nodes as possible: largest first, the last chunk best fit."""
    by_free = sorted(cands, key=lambda c: (-c[0], c[1]))
    out: list[tuple[str, int]] = []
    used: set[str] = set()
    for free, name in by_free:
        if needed == 0:
            break
        fitting = [c for c in cands if c[0] >= needed and c[1] not in used]
        if fitting:
            free, name = min(fitting)
            out.append((name, needed))
            return out
        out.append((name, free))
        used.add(name)
        needed -= free
    return out if needed == 0 else None


def pick_gpu_ids(
    islands: Iterable[Sequence[int]], available: Iterable[int], preferred: Iterable[int], count: int
) -> list[int]:
    """``count`` GPU ids out of ``available``: from one island when one holds them (the island
    with least room that does), else from as few islands as possible; ``preferred`` ids first.
    """
    avail = set(available)
    pref = set(preferred)
    groups = [sorted(i for i in isl if i in avail) for isl in islands]
    groups = [g for g in groups if g]

    def ordered(ids: list[int]) -> list[int]:
        return sorted(ids, key=lambda i: (i not in pref, i))

    fitting = [g for g in groups if len(g) >= count]
    if fitting:
        best = min(fitting, key=lambda g: (len(g), -sum(i in pref for i in g), g[0]))
        return sorted(ordered(best)[:count])
    out: list[int] = []
    for g in sorted(groups, key=lambda g: (-len(g), g[0])):
        out.extend(ordered(g)[: count - len(out)])
        if len(out) == count:
            return sorted(out)
    raise ValueError(f"asked for {count} GPUs, only {len(out)} available")
