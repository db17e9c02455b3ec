"""Nominations: GPUs held for a waiting preemptor, so preemption converges.

When a MiniCluster can reach its ``min`` only by preempting borrowed cargos, the engine
*nominates* for it the GPUs it would reserve once those victims are gone: the victims' GPUs
(still in use while their pods drain) and the free GPUs the same reservation needs. A nominated
GPU is not free for anyone else: no cargo is placed on it (a victim never returns onto it) and
no other MiniCluster reserves it, except one ranked ahead in the admission queue (priority desc,
created asc, key), which may take it over. Nominations end when their MiniCluster is admitted,
stops waiting (``min`` lowered, deleted) or can no longer be admitted even with preemption.

A victim preempted for a waiter is not chosen again for that same waiter once it was placed
again (no cargo is preempted twice in a row for the same waiter).

Every change goes through the engine's journal, so trials (dry-runs, plans) roll back exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from crane.model.specs import ReplicaPlacement
from crane.placement.index import FreeIndex
from crane.placement.state import NodeState

Gpu = tuple[str, int]
"""(node, GPU id)."""
Journal = Callable[[Callable[[], None]], None]


class Nominations:
    """Who each nominated GPU is held for; updates the free index as GPUs come and go."""

    def __init__(self, index: FreeIndex, journal: Journal) -> None:
        self._index = index
        self._journal = journal
        self.by_mc: dict[str, set[Gpu]] = {}
        """MiniCluster key -> GPUs nominated for it."""
        self.preempted_for: dict[str, tuple[str, tuple[ReplicaPlacement, ...]]] = {}
        """Victim cargo key -> (waiter it was preempted for, its placement then)."""

    def set(self, node: NodeState, changes: Iterable[tuple[int, str | None]]) -> None:
        """Nominate GPUs of one node for a MiniCluster (or clear with None); journaled."""
        before = node.avail
        olds: list[tuple[int, str | None]] = []
        for gpu, who in changes:
            old = node.nominated.get(gpu)
            if old == who:
                continue
            olds.append((gpu, old))
            was_free = node.is_free(gpu)
            if old is not None:
                held = self.by_mc[old]
                held.discard((node.name, gpu))
                if not held:
                    del self.by_mc[old]
                del node.nominated[gpu]
            if who is not None:
                node.nominated[gpu] = who
                self.by_mc.setdefault(who, set()).add((node.name, gpu))
            now_free = node.is_free(gpu)
            if was_free != now_free:
                node.free += 1 if now_free else -1
        self._index.update(node.name, node.product, node.path, before, node.avail)
        if olds:
            self._journal(lambda: self.set(node, reversed(olds)))

    def of(self, key: str) -> frozenset[Gpu]:
        """GPUs nominated for MiniCluster ``key``."""
        return frozenset(self.by_mc.get(key, ()))

    def clear(self, nodes: dict[str, NodeState], key: str) -> None:
        """End every nomination of MiniCluster ``key`` (and forget whom it preempted)."""
        self._apply(nodes, sorted(self.by_mc.get(key, ())), None)
        for victim in [v for v, (w, _) in self.preempted_for.items() if w == key]:
            self.forget(victim)

    def lend(self, nodes: dict[str, NodeState], keys: Iterable[str]) -> list[tuple[Gpu, str]]:
        """Free the GPUs nominated for ``keys`` for one admission attempt; returns what to
        :meth:`give_back` afterwards."""
        lent = sorted((gpu, key) for key in keys for gpu in self.by_mc.get(key, ()))
        by_node: dict[str, list[tuple[int, str | None]]] = {}
        for (name, gpu), _ in lent:
            by_node.setdefault(name, []).append((gpu, None))
        for name, changes in sorted(by_node.items()):
            self.set(nodes[name], changes)
        return lent

    def give_back(
        self, nodes: dict[str, NodeState], lent: Iterable[tuple[Gpu, str]], skip: str | None
    ) -> None:
        """Nominate again what :meth:`lend` freed, except GPUs taken meanwhile and ``skip``'s."""
        by_node: dict[str, list[tuple[int, str | None]]] = {}
        for (name, gpu), key in lent:
            node = nodes.get(name)
            if key == skip or node is None or gpu >= len(node.resv):
                continue
            if node.resv[gpu] is None:
                by_node.setdefault(name, []).append((gpu, key))
        for name, changes in sorted(by_node.items()):
            self.set(nodes[name], changes)

    def nominate(self, nodes: dict[str, NodeState], key: str, gpus: Iterable[Gpu]) -> None:
        """Make ``gpus`` exactly the GPUs nominated for ``key``."""
        want = set(gpus)
        self._apply(nodes, sorted(self.of(key) - want), None)
        self._apply(nodes, sorted(want), key)

    def _apply(self, nodes: dict[str, NodeState], gpus: Iterable[Gpu], who: str | None) -> None:
        by_node: dict[str, list[tuple[int, str | None]]] = {}
        for name, gpu in gpus:
            if name in nodes:
                by_node.setdefault(name, []).append((gpu, who))
        for name, changes in sorted(by_node.items()):
            self.set(nodes[name], changes)

    def record_victim(
        self, victim: str, waiter: str, placements: tuple[ReplicaPlacement, ...]
    ) -> None:
        """Remember that ``victim`` (at ``placements``) is preempted for ``waiter``."""
        old = self.preempted_for.get(victim)
        self.preempted_for[victim] = (waiter, placements)
        self._journal(lambda: self._restore_victim(victim, old))

    def forget(self, victim: str) -> None:
        """Forget that ``victim`` was preempted for a waiter (journalled: a trial rolls it back)."""
        old = self.preempted_for.pop(victim, None)
        if old is not None:
            self._journal(lambda: self._restore_victim(victim, old))

    def _restore_victim(
        self, victim: str, value: tuple[str, tuple[ReplicaPlacement, ...]] | None
    ) -> None:
        if value is None:
            self.preempted_for.pop(victim, None)
        else:
            self.preempted_for[victim] = value

    def placed_again(
        self, victim: str, waiter: str, placements: tuple[ReplicaPlacement, ...]
    ) -> bool:
        """Whether ``victim`` was preempted for ``waiter`` and has been placed again since."""
        rec = self.preempted_for.get(victim)
        return rec is not None and rec[0] == waiter and rec[1] != placements
