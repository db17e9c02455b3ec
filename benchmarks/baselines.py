"""Baseline placers on the same streams: first-fit, spread (least allocated, as
kube-scheduler's default score), plain best-fit, rack-aware best-fit and FGD (fragmentation
gradient descent, Weng et al., "Beware of Fragmentation", USENIX ATC'23).

They count free GPUs per node (islands are not modelled). A single-node job goes to the node
its policy scores best. A multi-node gang must stay within one domain of its Required level
(rack or block): the policy orders the domains with room, and each replica goes to the node
the policy scores best inside the domain; all replicas or none.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from functools import cache

from crane.model.gpu import gpu_type_matches
from crane.model.inventory import NodeInventory
from crane.model.topology import DEFAULT_LEVEL_KEYS

Scope = tuple[str, str, str]
"""(level alias or ``cluster``, domain, product)."""
Placement = list[tuple[int, int]]
"""(node position, GPUs) per replica."""


class Placer:
    """Nodes bucketed by free GPUs per scope (the cluster, each rack and block, per product) in
    lazy min-heaps of node positions, so a choice costs O(distinct free counts)."""

    def __init__(self, nodes: list[NodeInventory]) -> None:
        self.nodes = nodes
        self.free = [n.gpu_count for n in nodes]
        self.max_free = max(self.free, default=0)
        self.products = sorted({n.gpu_product for n in nodes})
        self.scopes: list[tuple[Scope, ...]] = []
        self.domains: dict[tuple[str, str], list[str]] = {}
        self.total: dict[Scope, int] = {}
        self.count: dict[tuple[Scope, int], int] = {}
        self.heaps: dict[tuple[Scope, int], list[int]] = {}
        for i, n in enumerate(nodes):
            scopes = [("cluster", "", n.gpu_product)]
            for level in ("rack", "block"):
                domain = n.labels.get(DEFAULT_LEVEL_KEYS[level], "-")
                scopes.append((level, domain, n.gpu_product))
                self.domains.setdefault((level, n.gpu_product), []).append(domain)
            self.scopes.append(tuple(scopes))
            for s in scopes:
                self._enter(s, i, n.gpu_count)
        self.domains = {k: sorted(set(v)) for k, v in self.domains.items()}

    def _enter(self, s: Scope, i: int, free: int) -> None:
        self.total[s] = self.total.get(s, 0) + free
        self.count[(s, free)] = self.count.get((s, free), 0) + 1
        heapq.heappush(self.heaps.setdefault((s, free), []), i)

    def _set(self, i: int, free: int) -> None:
        old = self.free[i]
        self.free[i] = free
        for s in self.scopes[i]:
            self.total[s] -= old
            self.count[(s, old)] -= 1
            self._enter(s, i, free)

    def _top(self, s: Scope, free: int) -> int | None:
        heap = self.heaps.get((s, free))
        while heap and self.free[heap[0]] != free:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def score(self, free: int, gpus: int, i: int) -> tuple[float, ...]:
        """Lower is better: the node (position ``i``, ``free`` GPUs) for a replica."""
        raise NotImplementedError

    def order(self, domains: list[Scope], gpus: int, replicas: int) -> list[Scope]:
        """The domains with room for a gang, in the order the policy tries them."""
        raise NotImplementedError

    def hist(self, s: Scope) -> tuple[int, ...]:
        return tuple(self.count.get((s, f), 0) for f in range(self.max_free + 1))

    def _choose(self, scopes: list[Scope], gpus: int) -> int | None:
        best: tuple[tuple[float, ...], int] | None = None
        for s in scopes:
            for free in range(gpus, self.max_free + 1):
                if not self.count.get((s, free)):
                    continue
                i = self._top(s, free)
                if i is not None and (best is None or self.score(free, gpus, i) < best[0]):
                    best = (self.score(free, gpus, i), i)
        return None if best is None else best[1]

    def _fill(self, scopes: list[Scope], replicas: int, gpus: int) -> Placement | None:
        chosen: Placement = []
        for _ in range(replicas):
            i = self._choose(scopes, gpus)
            if i is None:
                self.release(chosen)
                return None
            self._set(i, self.free[i] - gpus)
            chosen.append((i, gpus))
        return chosen

    def place(self, gpu_type: str, replicas: int, gpus: int, level: str | None) -> Placement | None:
        products = [p for p in self.products if gpu_type_matches(gpu_type, p)]
        if level is None:
            return self._fill([("cluster", "", p) for p in products], replicas, gpus)
        needed = replicas * gpus
        roomy = [
            (level, d, p)
            for p in products
            for d in self.domains.get((level, p), [])
            if self.total[(level, d, p)] >= needed
        ]
        for s in self.order(roomy, gpus, replicas):
            placed = self._fill([s], replicas, gpus)
            if placed is not None:
                return placed
        return None

    def release(self, placement: Placement) -> None:
        for i, gpus in placement:
            self._set(i, self.free[i] + gpus)


class FirstFit(Placer):
    """The first node (and domain) in name order with room."""

    def score(self, free: int, gpus: int, i: int) -> tuple[float, ...]:
        return (i,)

    def order(self, domains: list[Scope], gpus: int, replicas: int) -> list[Scope]:
        return domains


class Spread(Placer):
    """The node (and domain) with most free GPUs."""

    def score(self, free: int, gpus: int, i: int) -> tuple[float, ...]:
        return (-free, i)

    def order(self, domains: list[Scope], gpus: int, replicas: int) -> list[Scope]:
        return sorted(domains, key=lambda s: (-self.total[s], s))


class Fgd(Placer):
    """The node whose expected fragmentation grows least (FGD, whole-GPU analogue).

    A node's fragmentation for a task of ``k`` GPUs is its free GPUs when fewer than ``k`` are
    free (none of them can serve the task), else 0; its expected fragmentation weighs that by
    the workload's task mix ``mix`` (share of tasks by GPUs). A gang's domain is the one whose
    fragmentation grows least when its replicas are placed one by one; ties by name.
    """

    def __init__(self, nodes: list[NodeInventory], mix: Mapping[int, float]) -> None:
        super().__init__(nodes)
        frag = [sum(p * f for k, p in mix.items() if f < k) for f in range(self.max_free + 1)]
        self.delta = [
            [frag[f - k] - frag[f] if f >= k else 0.0 for k in range(len(frag))]
            for f in range(len(frag))
        ]
        self._gang_delta = cache(self._gang_delta_uncached)

    def score(self, free: int, gpus: int, i: int) -> tuple[float, ...]:
        return (self.delta[free][gpus], i)

    def _gang_delta_uncached(self, hist: tuple[int, ...], gpus: int, replicas: int) -> float:
        counts = list(hist)
        total = 0.0
        for _ in range(replicas):
            fits = [f for f in range(gpus, len(counts)) if counts[f]]
            if not fits:
                return float("inf")
            f = min(fits, key=lambda f: self.delta[f][gpus])
            total += self.delta[f][gpus]
            counts[f] -= 1
            counts[f - gpus] += 1
        return total

    def order(self, domains: list[Scope], gpus: int, replicas: int) -> list[Scope]:
        return sorted(domains, key=lambda s: (self._gang_delta(self.hist(s), gpus, replicas), s))


class BestFit(Placer):
    """The node with least free GPUs that holds the replica (plain best fit); a gang's
    domains in name order."""

    def score(self, free: int, gpus: int, i: int) -> tuple[float, ...]:
        return (free, i)

    def order(self, domains: list[Scope], gpus: int, replicas: int) -> list[Scope]:
        return domains


class RackBestFit(Placer):
    """Best fit aware of racks: the node with least free GPUs, ties to the node whose rack has
    fewest free (fill broken racks, keep empty ones whole); a gang's domains least free first
    (best-fit domain)."""

    def score(self, free: int, gpus: int, i: int) -> tuple[float, ...]:
        return (free, self.total[self.scopes[i][1]], i)

    def order(self, domains: list[Scope], gpus: int, replicas: int) -> list[Scope]:
        return sorted(domains, key=lambda s: (self.total[s], s))

    def place(self, gpu_type: str, replicas: int, gpus: int, level: str | None) -> Placement | None:
        """Single-node jobs look at each rack's best node (O(racks x free counts))."""
        if level is not None:
            return super().place(gpu_type, replicas, gpus, level)
        products = [p for p in self.products if gpu_type_matches(gpu_type, p)]
        scopes = [("rack", d, p) for p in products for d in self.domains.get(("rack", p), [])]
        return self._fill(scopes, replicas, gpus)
