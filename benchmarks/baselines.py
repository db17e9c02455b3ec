"""Two small baseline placers on the same stream: first-fit and spread (least-allocated, as
kube-scheduler's default score). Gangs are all-or-nothing; no topology awareness."""

from __future__ import annotations

import heapq
from collections import defaultdict

from crane.model.gpu import gpu_type_matches
from crane.model.inventory import NodeInventory


class BucketPlacer:
    """Nodes bucketed by free GPUs per product (lazy heaps of node positions)."""

    spread = False

    def __init__(self, nodes: list[NodeInventory]) -> None:
        self.nodes = nodes
        self.free = [n.gpu_count for n in nodes]
        self.products = sorted({n.gpu_product for n in nodes})
        self.buckets: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, n in enumerate(nodes):
            heapq.heappush(self.buckets[(n.gpu_product, self.free[i])], i)
        self.max_free = max((n.gpu_count for n in nodes), default=0)

    def _top(self, product: str, free: int) -> int | None:
        heap = self.buckets.get((product, free))
        while heap and self.free[heap[0]] != free:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def _set(self, i: int, free: int) -> None:
        self.free[i] = free
        heapq.heappush(self.buckets[(self.nodes[i].gpu_product, free)], i)

    def _pick(self, products: list[str], gpus: int) -> int | None:
        best: tuple[int, int] | None = None
        for product in products:
            for free in range(gpus, self.max_free + 1):
                i = self._top(product, free)
                if i is None:
                    continue
                rank = (-free, i) if self.spread else (i, 0)
                if best is None or rank < best:
                    best = rank
        if best is None:
            return None
        return best[1] if self.spread else best[0]

    def place(self, gpu_type: str, replicas: int, gpus: int) -> list[int] | None:
        products = [p for p in self.products if gpu_type_matches(gpu_type, p)]
        chosen: list[int] = []
        for _ in range(replicas):
            i = self._pick(products, gpus)
            if i is None:
                for j in chosen:
                    self._set(j, self.free[j] + gpus)
                return None
            self._set(i, self.free[i] - gpus)
            chosen.append(i)
        return chosen


class FirstFit(BucketPlacer):
    """Each replica on the first node (in name order) with room."""


class Spread(BucketPlacer):
    """Each replica on the node with most free GPUs (least allocated)."""

    spread = True
