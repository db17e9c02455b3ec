"""The engine's ledger: who reserves and who uses every GPU, journaled.

Pure, deterministic and synchronous. Every mutation goes through three journaled primitives
(GPU state, MiniCluster record, cargo record), so dry-runs, explanations and preemption plans
run against the live state inside a trial that is rolled back exactly. Nodes come and go
here; releasing a cargo is bookkeeping every layer above needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from crane.model.gpu import gpu_type_matches
from crane.model.inventory import NodeInventory
from crane.model.shares import ShareTable
from crane.model.specs import ReplicaPlacement
from crane.model.topology import ALIASES, TopologyLevels
from crane.placement.admission import QueueingStrategy
from crane.placement.index import FreeIndex
from crane.placement.nomination import Nominations
from crane.placement.state import ROOT, CargoState, McState, NodeState

GpuChange = tuple[int, str | None, str | None]
"""(GPU id, reserving MiniCluster, using cargo)."""


class Ledger:
    """The state of the placement engine and the primitives every other layer mutates it with."""

    def __init__(
        self,
        levels: TopologyLevels | None = None,
        queueing: QueueingStrategy = QueueingStrategy.BEST_EFFORT_FIFO,
        queue_strategies: Mapping[str, QueueingStrategy] | None = None,
    ) -> None:
        self.levels = levels or TopologyLevels()
        self.queueing = QueueingStrategy(queueing)
        """The strategy of every queue not named in ``queue_strategies``."""
        self.queue_strategies = dict(queue_strategies or {})
        self._depth = len(self.levels.levels) + 1
        self._index = FreeIndex(self._depth)
        self._nodes: dict[str, NodeState] = {}
        self._mcs: dict[str, McState] = {}
        self._cargos: dict[str, CargoState] = {}
        self._undo: list[Callable[[], None]] | None = None
        self._product_nodes: dict[str, int] = {}
        self.ends = 0
        """Cargos with a known expected end (estimates run only when there are some)."""
        self._estimating = False
        self._type_cache: dict[str, tuple[str, ...]] = {}
        self._noms = Nominations(self._index, self._log)
        self.shares = ShareTable()
        """Tenant shares (``crane/placement/shares.py``); empty: no tenant rules."""

    def _log(self, undo: Callable[[], None]) -> None:
        if self._undo is not None:
            self._undo.append(undo)

    @contextmanager
    def _trial(self) -> Iterator[None]:
        """Run mutations, then undo them all (nested trials are fine)."""
        outer, self._undo = self._undo, []
        try:
            yield
        finally:
            log, self._undo = self._undo, None
            for undo in reversed(log):
                undo()
            self._undo = outer

    def _set_gpus(self, node: NodeState, changes: Iterable[GpuChange]) -> None:
        """Set who reserves and who uses GPUs of one node; one index update per call."""
        before = node.avail
        olds: list[GpuChange] = []
        for gpu, resv, cargo in changes:
            old_resv, old_cargo = node.resv[gpu], node.cargo[gpu]
            if old_resv == resv and old_cargo == cargo:
                continue
            olds.append((gpu, old_resv, old_cargo))
            was_free = node.is_free(gpu)
            if old_resv != resv:
                if old_resv is not None:
                    held = self._mcs[old_resv].reserved[node.name]
                    held.discard(gpu)
                    if not held:
                        del self._mcs[old_resv].reserved[node.name]
                if resv is not None:
                    self._mcs[resv].reserved.setdefault(node.name, set()).add(gpu)
            node.resv[gpu] = resv
            node.cargo[gpu] = cargo
            now_free = node.is_free(gpu)
            if was_free != now_free:
                node.free += 1 if now_free else -1
        self._index.update(node.name, node.product, node.path, before, node.avail)
        if olds:
            self._log(lambda: self._set_gpus(node, reversed(olds)))

    def _put_mc(self, key: str, mc: McState | None) -> None:
        old = self._mcs.get(key)
        if mc is None:
            self._mcs.pop(key, None)
        else:
            self._mcs[key] = mc
        self._log(lambda: self._put_mc(key, old))

    def _put_cargo(self, key: str, cargo: CargoState | None) -> None:
        old = self._cargos.get(key)
        self.ends += (cargo is not None and cargo.req.expected_end is not None) - (
            old is not None and old.req.expected_end is not None
        )
        if cargo is None:
            self._cargos.pop(key, None)
        else:
            self._cargos[key] = cargo
        self._log(lambda: self._put_cargo(key, old))

    def _mc_set(self, mc: McState, **fields: Any) -> None:
        old = {name: getattr(mc, name) for name in fields}
        for name, value in fields.items():
            setattr(mc, name, value)
        self._log(lambda: self._mc_set(mc, **old))

    def _mc_cargo(self, mc: McState, key: str, add: bool) -> None:
        """Add or remove one cargo of a MiniCluster in place: O(1), not a copy of the set."""
        if (key in mc.cargos) == add:
            return
        if add:
            mc.cargos.add(key)
        else:
            mc.cargos.remove(key)
        self._log(lambda: self._mc_cargo(mc, key, not add))

    def _no_trial(self) -> None:
        if self._undo is not None:
            raise RuntimeError("node changes are not allowed inside a dry-run")

    def _path(self, node: NodeInventory) -> tuple[str, ...]:
        return (ROOT, *(f"{ROOT}/{p}" for p in self.levels.domain_path(node.name, node.labels)))

    def _count_product(self, product: str, delta: int) -> None:
        left = self._product_nodes.get(product, 0) + delta
        if left:
            self._product_nodes[product] = left
        else:
            del self._product_nodes[product]
        if (left == 0) or (left == delta):
            self._type_cache.clear()

    def upsert_node(self, node: NodeInventory) -> None:
        """Add a node or apply a change (labels, GPUs, busy ids, readiness).

        Cargos using GPU ids the node no longer has are released; reserved GPUs that vanished
        or became busy leave the reservation (the next ``admit`` replaces them).
        """
        self._no_trial()
        old = self._nodes.get(node.name)
        if old is not None:
            count = node.gpu_count
            for key in sorted({c for g, c in enumerate(old.cargo) if c and g >= count}):
                self.release_cargo(key)
            dropped = [
                (g, None, old.cargo[g])
                for g, r in enumerate(old.resv)
                if r is not None
                and (g >= count or (g in node.busy_gpu_ids and old.cargo[g] is None))
            ]
            self._set_gpus(old, dropped)
            self._noms.set(old, [(g, None) for g in sorted(old.nominated) if g >= count])
            self._index.update(old.name, old.product, old.path, old.avail, 0)
            self._index.add_capacity(old.product, old.path, -len(old.resv))
            self._count_product(old.product, -1)
            old.resv = (old.resv + [None] * count)[:count]
            old.cargo = (old.cargo + [None] * count)[:count]
            old.inv = node
            old.path = self._path(node)
            old.free = old.count_free()
            state = old
        else:
            state = NodeState(
                inv=node,
                path=self._path(node),
                resv=[None] * node.gpu_count,
                cargo=[None] * node.gpu_count,
                free=node.gpu_count - len(node.busy_gpu_ids),
            )
            self._nodes[node.name] = state
        self._count_product(node.gpu_product, 1)
        self._index.add_capacity(node.gpu_product, state.path, node.gpu_count)
        self._index.update(node.name, node.gpu_product, state.path, 0, state.avail)

    def remove_node(self, name: str) -> list[str]:
        """Forget a node: its cargos are released (returned) and its reserved GPUs dropped."""
        self._no_trial()
        node = self._nodes.get(name)
        if node is None:
            return []
        cargos = sorted({c for c in node.cargo if c is not None})
        for key in cargos:
            self.release_cargo(key)
        self._set_gpus(node, [(g, None, None) for g, r in enumerate(node.resv) if r is not None])
        self._noms.set(node, [(g, None) for g in sorted(node.nominated)])
        self._index.update(name, node.product, node.path, node.avail, 0)
        self._index.add_capacity(node.product, node.path, -len(node.resv))
        self._count_product(node.product, -1)
        del self._nodes[name]
        return cargos

    def node_names(self) -> list[str]:
        """The names of the known nodes, sorted."""
        return sorted(self._nodes)

    def _products(self, gpu_type: str) -> tuple[str, ...]:
        found = self._type_cache.get(gpu_type)
        if found is None:
            found = tuple(p for p in sorted(self._product_nodes) if gpu_type_matches(gpu_type, p))
            self._type_cache[gpu_type] = found
        return found

    def _level(self, alias: str) -> int:
        """Internal level of an alias (0 is the cluster); an alias not configured maps to the
        nearest narrower configured level, which keeps a Required promise."""
        aliases = self.levels.aliases
        for candidate in ALIASES[ALIASES.index(alias) :]:
            if candidate in aliases:
                return aliases.index(candidate) + 1
        return self._depth - 1

    def _alias(self, level: int) -> str:
        return "cluster" if level == 0 else self.levels.aliases[level - 1]

    @staticmethod
    def _display(domain: str) -> str:
        return "cluster" if domain == ROOT else domain.rsplit("/", 1)[1]

    def _node_size(self, products: Sequence[str]) -> int:
        return max((self._index.max_capacity(self._depth - 1, p) for p in products), default=0)

    def _domain_capacity(self, level: int, products: Sequence[str]) -> int:
        return max((self._index.max_capacity(level, p) for p in products), default=0)

    def _idle_overlay(self, mc: McState) -> dict[str, int]:
        """Idle reserved GPUs of a MiniCluster per open node."""
        out: dict[str, int] = {}
        for name in sorted(mc.reserved):
            node = self._nodes[name]
            if node.open:
                idle = len(node.idle_ids(mc.key))
                if idle:
                    out[name] = idle
        return out

    def _common_domain(self, names: Iterable[str]) -> str:
        paths = [self._nodes[n].path for n in names]
        common = ROOT
        for level in range(self._depth):
            values = {p[level] for p in paths}
            if len(values) != 1:
                break
            common = values.pop()
        return common

    def _unreserve_idle(self, mc: McState, count: int) -> None:
        """Give back ``count`` idle reserved GPUs: closed nodes first, then the nodes with
        fewest idle reserved GPUs, so whole reserved nodes stay whole."""
        if count <= 0:
            return
        nodes = sorted(
            (self._nodes[n] for n in mc.reserved),
            key=lambda n: (n.open, len(n.idle_ids(mc.key)), n.name),
        )
        for node in nodes:
            idle = sorted(
                (g for g in mc.reserved.get(node.name, ()) if node.cargo[g] is None), reverse=True
            )[:count]
            self._set_gpus(node, [(g, None, None) for g in idle])
            count -= len(idle)
            if count <= 0:
                return

    def is_admitted(self, key: str) -> bool:
        """Whether MiniCluster ``key`` is known and admitted."""
        mc = self._mcs.get(key)
        return mc is not None and mc.admitted

    def reservation(self, key: str) -> dict[str, tuple[int, ...]]:
        """MiniCluster ``key``'s reservation: node -> reserved GPU ids, sorted ({} if unknown)."""
        mc = self._mcs.get(key)
        if mc is None:
            return {}
        return {n: tuple(sorted(ids)) for n, ids in sorted(mc.reserved.items())}

    def nominated(self, key: str) -> dict[str, tuple[int, ...]]:
        """GPUs held for waiting MiniCluster ``key`` while its preemption victims drain."""
        out: dict[str, list[int]] = {}
        for name, gpu in sorted(self._noms.of(key)):
            out.setdefault(name, []).append(gpu)
        return {n: tuple(ids) for n, ids in out.items()}

    def _recount(self, mc: McState) -> None:
        """Recompute borrowed GPUs of a MiniCluster's cargos from the GPU states."""
        total = 0
        for key in sorted(mc.cargos):
            cargo = self._cargos[key]
            placements = []
            borrowed = 0
            for p in cargo.placements:
                node = self._nodes[p.node]
                outside = sum(1 for g in p.gpu_ids if node.resv[g] != mc.key)
                borrowed += outside
                placements.append(p.model_copy(update={"borrowed": outside > 0}))
            total += borrowed
            self._put_cargo(key, CargoState(cargo.req, tuple(placements), borrowed))
        self._mc_set(mc, borrowed=total)

    def _free_in(self, domain: str, level: int, products: Sequence[str]) -> int:
        return sum(self._index.total(level, domain, p) for p in products)

    def set_expected_end(self, key: str, end: float | None) -> None:
        """Set a placed cargo's expected end (it was placed or started since it was asked for:
        its estimate counts from then); a cargo not placed is ignored."""
        cargo = self._cargos.get(key)
        if cargo is None or cargo.req.expected_end == end:
            return
        req = dataclasses.replace(cargo.req, expected_end=end)
        self._put_cargo(key, dataclasses.replace(cargo, req=req))

    def release_cargo(self, key: str) -> None:
        """Free a cargo's GPUs (idempotent). Reserved GPUs beyond ``min`` leave the reservation."""
        cargo = self._cargos.get(key)
        if cargo is None:
            return
        for p in cargo.placements:
            node = self._nodes.get(p.node)
            if node is not None:
                self._set_gpus(
                    node, [(g, node.resv[g], None) for g in p.gpu_ids if node.cargo[g] == key]
                )
        mc = self._mcs.get(cargo.req.minicluster)
        if mc is not None:
            self._mc_cargo(mc, key, False)
            self._mc_set(mc, used=mc.used - cargo.gpus, borrowed=mc.borrowed - cargo.borrowed)
            self._unreserve_idle(mc, mc.reserved_count - mc.req.min_gpus)
        self._put_cargo(key, None)

    def cargo_placements(self, key: str) -> tuple[ReplicaPlacement, ...]:
        """Copies of where cargo ``key``'s replicas run; () when it is not placed."""
        cargo = self._cargos.get(key)
        return self._copy(cargo.placements) if cargo is not None else ()

    @staticmethod
    def _copy(placements: Iterable[ReplicaPlacement]) -> tuple[ReplicaPlacement, ...]:
        return tuple(p.model_copy(deep=True) for p in placements)
