"""The placement engine: the cluster's GPUs, MiniCluster reservations and cargo placements.

Pure, deterministic and synchronous. Every mutation goes through three journaled primitives
(GPU state, MiniCluster record, cargo record), so dry-runs, explanations and preemption plans
run against the live state inside a trial that is rolled back exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from crane.model.gpu import gpu_type_matches
from crane.model.inventory import NodeInventory
from crane.model.shares import ShareTable
from crane.model.specs import ReplicaPlacement
from crane.model.topology import ALIASES, TopologyLevels, TopologyMode
from crane.placement import admission, insight, shares
from crane.placement.admission import QueueingStrategy
from crane.placement.fit import pick_gpu_ids
from crane.placement.index import FreeIndex
from crane.placement.nomination import Nominations
from crane.placement.search import Fit, Query, chunk_sizes, levels_for, search
from crane.placement.state import ROOT, CargoState, McState, NodeState
from crane.placement.types import (
    AdmissionDecision,
    CargoDecision,
    CargoRequest,
    DomainFit,
    Explanation,
    GpuSlot,
    MiniClusterRequest,
    MiniClusterUsage,
    Outcome,
    PreemptionPlan,
)

GpuChange = tuple[int, str | None, str | None]
"""(GPU id, reserving MiniCluster, using cargo)."""


class Engine:
    """One placement engine per cluster. See ``docs/architecture.md`` for the algorithm."""

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

    # ----------------------------------------------------------------- journal primitives

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

    # ----------------------------------------------------------------------------- nodes

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
        return sorted(self._nodes)

    # ------------------------------------------------------------------------- helpers

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

    # -------------------------------------------------------------------- miniclusters

    def submit_minicluster(self, req: MiniClusterRequest) -> None:
        """Add or update a MiniCluster (idempotent). Lowering ``min`` releases idle reserved
        GPUs at once; raising it makes the MiniCluster wait for growth in ``admit``."""
        mc = self._mcs.get(req.key)
        if mc is None:
            self._put_mc(req.key, McState(req=req))
            return
        self._mc_set(mc, req=req)
        self._unreserve_idle(mc, mc.reserved_count - req.min_gpus)

    def remove_minicluster(self, key: str) -> list[str]:
        """Release a MiniCluster's reservation and its cargos; returns the cargo keys."""
        mc = self._mcs.get(key)
        if mc is None:
            return []
        cargos = sorted(mc.cargos)
        for cargo in cargos:
            self.release_cargo(cargo)
        self._noms.clear(self._nodes, key)
        for name in sorted(mc.reserved):
            node = self._nodes[name]
            self._set_gpus(node, [(g, None, node.cargo[g]) for g in sorted(mc.reserved[name])])
        self._put_mc(key, None)
        return cargos

    def set_shares(self, table: ShareTable) -> None:
        """Replace the tenant shares; the next ``admit`` and placements follow them."""
        self._no_trial()
        self.shares = table

    def tenant_usage(self) -> list[shares.TenantUsage]:
        """Each configured share with its tenant's use and borrowing, by tenant and type."""
        return shares.usage(self)

    def is_admitted(self, key: str) -> bool:
        mc = self._mcs.get(key)
        return mc is not None and mc.admitted

    def reservation(self, key: str) -> dict[str, tuple[int, ...]]:
        mc = self._mcs.get(key)
        if mc is None:
            return {}
        return {n: tuple(sorted(ids)) for n, ids in sorted(mc.reserved.items())}

    def restore_reservation(self, key: str, reservation: Mapping[str, Iterable[int]]) -> None:
        """Re-establish a reservation read back from status; the MiniCluster is admitted.

        GPUs on unknown nodes, out of range or busy are skipped (``admit`` grows it back).
        Raises ValueError when a GPU is reserved for another MiniCluster.
        """
        mc = self._mcs.get(key)
        if mc is None:
            raise KeyError(f"MiniCluster {key} is not submitted: submit it before restoring")
        for name, ids in sorted(reservation.items()):
            node = self._nodes.get(name)
            if node is None:
                continue
            changes: list[GpuChange] = []
            for g in sorted(set(ids)):
                if not 0 <= g < len(node.resv) or g in node.inv.busy_gpu_ids:
                    continue
                if node.resv[g] not in (None, key):
                    raise ValueError(
                        f"GPU {name}:{g} is reserved for {node.resv[g]}, not {key}: "
                        "two statuses claim it"
                    )
                changes.append((g, key, node.cargo[g]))
            self._set_gpus(node, changes)
        self._mc_set(mc, admitted=True)
        self._recount(mc)

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

    def _waiting(self) -> list[McState]:
        waiting = [mc for mc in self._mcs.values() if mc.waiting]
        return sorted(waiting, key=lambda m: (-m.req.priority, m.req.created, m.key))

    def _admission_order(self) -> Iterator[McState]:
        """Waiting MiniClusters in the order ``admit`` looks at them: priority, creation time,
        key; with tenant shares, lowest weighted share of the tenant first, recomputed after
        each decision (``crane/placement/shares.py``)."""
        waiting = self._waiting()
        if not self.shares:
            yield from waiting
            return
        while waiting:
            memo: dict[tuple[str, tuple[str, ...]], float] = {}
            ranks = [shares.weighted_share(self, mc, memo) for mc in waiting]
            best = min(range(len(waiting)), key=lambda i: (ranks[i], i))
            yield waiting.pop(best)

    def admit(self) -> list[AdmissionDecision]:
        """One pass over the queue (priority desc, created asc, key): reserve for each
        MiniCluster that fits. Backfill: a later MiniCluster may be admitted while one ahead
        waits, but never inside the domain the one ahead claims (its best domain counting what
        preemption would free), so backfill cannot delay it. A MiniCluster that can never fit
        the cluster as it is is REJECTED and takes no position; a StrictFIFO queue holds those
        behind its first waiting MiniCluster (``crane/placement/admission.py``). Queued
        decisions name what they wait behind and, when running cargos' ends are known, their
        estimated start. With tenant shares, the order is lowest weighted share of the tenant
        first and the tenants' limits apply (``crane/placement/shares.py``)."""
        decisions: list[AdmissionDecision] = []
        claims: list[tuple[str, str]] = []
        heads: dict[str, str] = {}
        position = 0
        for key in sorted(self._noms.by_mc):
            if key not in self._mcs or not self._mcs[key].waiting:
                self._noms.clear(self._nodes, key)
        for mc in self._admission_order():
            never = admission.impossible(self, mc)
            if never is not None:
                self._noms.clear(self._nodes, mc.key)
                decisions.append(
                    AdmissionDecision(
                        mc.key,
                        Outcome.REJECTED,
                        explanation=self._explain_mc(mc, PreemptionPlan(mc.key), never),
                    )
                )
                continue
            queue = mc.req.queue
            head = heads.get(queue)
            strict = self.strategy(queue) is QueueingStrategy.STRICT_FIFO
            behind: tuple[str, ...] = ()
            detail: str | None
            if strict and head is not None:
                detail = admission.waits_behind_sentence((head,), "StrictFIFO queue")
                behind = (head,)
            else:
                detail = self._try_reserve(mc, tuple(d for d, _ in claims))
                if detail is None:
                    self._noms.clear(self._nodes, mc.key)
                    reserved = self.reservation(mc.key)
                    decisions.append(
                        AdmissionDecision(mc.key, Outcome.ADMITTED, reservation=reserved)
                    )
                    continue
                if not detail and claims:
                    with self._trial():
                        backfill_only = self._try_reserve(mc, ()) is None
                    behind = tuple(k for _, k in claims)
                    detail = admission.waits_behind_sentence(
                        behind,
                        "they claim the domains where it would fit"
                        if backfill_only
                        else "ahead in the queue; no room now",
                    )
                elif not detail and head is not None:
                    behind = (head,)
                    detail = admission.waits_behind_sentence(
                        behind, "ahead in the queue; no room now"
                    )
            position += 1
            heads.setdefault(queue, mc.key)
            plan = self._plan_preemption(mc)
            self._nominate(mc, plan)
            claim = self._claim(mc) if not detail and not behind else None
            if claim is not None:
                claims.append((claim, mc.key))
            decisions.append(
                AdmissionDecision(
                    mc.key,
                    Outcome.QUEUED,
                    queue_position=position,
                    explanation=self._explain_mc(mc, plan, detail),
                    preemption=plan if plan.victims else None,
                    waits_behind=behind,
                )
            )
        if self.ends and not self._estimating:
            decisions = insight.with_estimates(self, decisions)
        return decisions

    def strategy(self, queue: str) -> QueueingStrategy:
        """The queueing strategy of a queue."""
        return self.queue_strategies.get(queue, self.queueing)

    def queue(self) -> list[AdmissionDecision]:
        """Waiting MiniClusters in queue order (with tenant shares, the fair order as use is
        now), without admitting anything."""
        return [
            AdmissionDecision(
                mc.key,
                Outcome.QUEUED,
                queue_position=i,
                explanation=self._explain_mc(mc, PreemptionPlan(mc.key), ""),
            )
            for i, mc in enumerate(
                (m for m in self._admission_order() if admission.impossible(self, m) is None),
                start=1,
            )
        ]

    def _try_reserve(self, mc: McState, avoid: tuple[str, ...]) -> str | None:
        """Reserve what ``mc`` lacks of ``min``. None when done, else why not ("" for "no
        room", a sentence for any other reason)."""
        req = mc.req
        need = req.min_gpus - mc.reserved_count
        if need <= 0:
            if not mc.admitted:
                self._mc_set(mc, admitted=True)
            return None
        if req.namespace_quota is not None and need > req.namespace_quota:
            return f"namespace quota allows {req.namespace_quota} more GPUs"
        groups = admission.type_groups(self, mc)
        if not groups:
            return admission.products_note(self, req.gpu_type)
        lent = self._noms.lend(self._nodes, self._ranked_from(mc))
        limits = [shares.blocked(self, mc, products, need) for _, products in groups]
        fit = None
        for (_, products), limit in zip(groups, limits, strict=True):
            if limit is not None:
                continue
            fit = self._find_reservation(mc, need, products, avoid)
            if fit is not None:
                self._reserve(mc, fit)
                break
        self._noms.give_back(self._nodes, lent, mc.key if fit is not None else None)
        if fit is None and all(limits):
            return "; ".join(str(why) for why in limits)
        return None if fit is not None else ""

    def _ranked_from(self, mc: McState) -> list[str]:
        """``mc`` and the MiniClusters behind it in the queue that hold nominations."""
        rank = (-mc.req.priority, mc.req.created, mc.key)
        return [
            key
            for key in sorted(self._noms.by_mc)
            if key in self._mcs
            and (-self._mcs[key].req.priority, self._mcs[key].req.created, key) >= rank
        ]

    def _nominate(self, mc: McState, plan: PreemptionPlan) -> None:
        """Hold for ``mc`` the GPUs it would reserve once ``plan``'s victims are gone (or end
        its nominations when preemption cannot admit it)."""
        if not (plan.victims and plan.sufficient):
            self._noms.clear(self._nodes, mc.key)
            return
        before = {(n, g) for n, ids in mc.reserved.items() for g in ids}
        with self._trial():
            for victim in plan.victims:
                self.release_cargo(victim)
            self._try_reserve(mc, ())
            after = {(n, g) for n, ids in mc.reserved.items() for g in ids}
        for victim in plan.victims:
            cargo = self._cargos.get(victim)
            if cargo is not None:
                self._noms.record_victim(victim, mc.key, cargo.placements)
        self._noms.nominate(self._nodes, mc.key, after - before)

    def nominated(self, key: str) -> dict[str, tuple[int, ...]]:
        """GPUs held for waiting MiniCluster ``key`` while its preemption victims drain."""
        out: dict[str, list[int]] = {}
        for name, gpu in sorted(self._noms.of(key)):
            out.setdefault(name, []).append(gpu)
        return {n: tuple(ids) for n, ids in out.items()}

    def _find_reservation(
        self, mc: McState, need: int, products: tuple[str, ...], avoid: tuple[str, ...]
    ) -> Fit | None:
        req = mc.req
        level = self._level(req.topology.level)
        required = req.topology.mode == TopologyMode.REQUIRED
        if need > self._domain_capacity(0, products):
            return None  # more than the cluster holds: no search (work bounded by the cluster)
        slot = req.template_gpus_per_replica or self._node_size(products)
        sizes = chunk_sizes(need, slot)
        levels = levels_for(required, level, self._depth)
        scopes: list[str | None] = [None]
        if mc.reserved:
            common = self._common_domain(mc.reserved)
            if required:
                first = self._nodes[min(mc.reserved)]
                scopes = [first.path[level]]
            else:
                scopes = [common, None]
        for within in scopes:
            floor = within.count("/") if within is not None else 0
            for lv in (lv for lv in levels if lv >= floor):
                shaped = Query(products, sizes, (lv,), within=within, avoid=avoid)
                fit = search(self._index, self._nodes, shaped)
                if fit is None and req.template_gpus_per_replica is None:
                    loose = Query(
                        products, (need,), (lv,), within=within, avoid=avoid, any_split=True
                    )
                    fit = search(self._index, self._nodes, loose)
                if fit is not None:
                    return fit
        return None

    def _reserve(self, mc: McState, fit: Fit) -> None:
        for name, size in fit.chunks:
            node = self._nodes[name]
            ids = pick_gpu_ids(node.inv.islands, node.free_ids(), (), size)
            self._set_gpus(node, [(g, mc.key, None) for g in ids])
        if not mc.admitted:
            self._mc_set(mc, admitted=True)

    def _claim(self, mc: McState) -> str | None:
        """The domain a blocked MiniCluster keeps from backfill: at its level, the domain with
        most free plus preemptible GPUs of its type."""
        level = admission.claim_level(self, mc)
        products = admission.mc_products(self, mc)
        room: dict[str, int] = {}
        for p in products:
            fullest = self._index.fullest(level, p)
            if fullest is not None:
                room[fullest[1]] = room.get(fullest[1], 0) + fullest[0]
        for domain, gpus in self._preemptible_by_domain(mc, level).items():
            room[domain] = room.get(domain, 0) + gpus + self._free_in(domain, level, products)
        if not room:
            return None
        return min(room.items(), key=lambda kv: (-kv[1], kv[0]))[0]

    def _free_in(self, domain: str, level: int, products: Sequence[str]) -> int:
        return sum(self._index.total(level, domain, p) for p in products)

    # ------------------------------------------------------------------------ preemption

    def _victims(self, mc: McState) -> list[CargoState]:
        """Borrowed cargos on GPUs of ``mc``'s type, newest first: of lower-priority
        MiniClusters (of ``mc``'s tenant only, when shares are set), and, when ``mc``'s tenant
        reclaims its guarantee, of tenants above theirs (``crane/placement/shares.py``)."""
        products = set(self._products(mc.req.gpu_type))
        tenanted = bool(self.shares)
        tenant = self.shares.tenant_of(mc.key)
        reclaim = shares.reclaims(self, mc)
        above: dict[str, bool] = {}
        out = []
        for cargo in self._cargos.values():
            owner = self._mcs.get(cargo.req.minicluster)
            if cargo.borrowed == 0 or owner is None:
                continue
            theirs = self.shares.tenant_of(owner.key) if tenanted else tenant
            if theirs != tenant:
                if not reclaim:
                    continue
                if theirs not in above:
                    owned = admission.mc_products(self, owner)
                    above[theirs] = shares.above_nominal(self, owner.key, owned)
                if not above[theirs]:
                    continue
            elif owner.req.priority >= mc.req.priority:
                continue
            if self._noms.placed_again(cargo.req.key, mc.key, cargo.placements):
                continue
            if any(self._nodes[p.node].product in products for p in cargo.placements):
                out.append(cargo)
        return sorted(out, key=lambda c: (-c.req.created, c.req.key))

    def _preemptible_by_domain(self, mc: McState, level: int) -> dict[str, int]:
        out: dict[str, int] = {}
        for cargo in self._victims(mc):
            owner = cargo.req.minicluster
            for p in cargo.placements:
                node = self._nodes[p.node]
                freed = sum(1 for g in p.gpu_ids if node.resv[g] != owner)
                if freed:
                    out[node.path[level]] = out.get(node.path[level], 0) + freed
        return out

    def _fits_after(self, mc: McState, victims: Sequence[CargoState]) -> bool:
        with self._trial():
            for victim in victims:
                self.release_cargo(victim.req.key)
            return self._try_reserve(mc, ()) is None

    def _plan_preemption(self, mc: McState) -> PreemptionPlan:
        if not mc.waiting or self._fits_after(mc, ()):
            return PreemptionPlan(mc.key, sufficient=True)
        victims = self._victims(mc)
        chosen: list[CargoState] = []
        for victim in victims:
            chosen.append(victim)
            if self._fits_after(mc, chosen):
                break
        else:
            return PreemptionPlan(mc.key)
        for victim in list(chosen[:-1]):
            rest = [c for c in chosen if c is not victim]
            if self._fits_after(mc, rest):
                chosen = rest
        return PreemptionPlan(
            mc.key,
            victims=tuple(c.req.key for c in chosen),
            freed_gpus=sum(c.borrowed for c in chosen),
            sufficient=True,
        )

    def plan_preemption(self, key: str) -> PreemptionPlan:
        """Borrowed cargos of lower-priority MiniClusters (whole, newest first, no more than
        needed) whose preemption lets ``key`` be admitted. Empty and not sufficient when no such
        set exists. Never mutates."""
        mc = self._mcs.get(key)
        if mc is None:
            return PreemptionPlan(key)
        return self._plan_preemption(mc)

    def plan_max_shrink(self, key: str) -> PreemptionPlan:
        """Borrowed cargos of ``key`` (newest first) to preempt so its use is within ``max``."""
        mc = self._mcs.get(key)
        if mc is None:
            return PreemptionPlan(key, sufficient=True)
        excess = mc.used - mc.req.max_gpus
        if excess <= 0:
            return PreemptionPlan(key, sufficient=True)
        borrowed = sorted(
            (self._cargos[c] for c in mc.cargos if self._cargos[c].borrowed),
            key=lambda c: (-c.req.created, c.req.key),
        )
        victims: list[str] = []
        freed = 0
        for cargo in borrowed:
            if freed >= excess:
                break
            victims.append(cargo.req.key)
            freed += cargo.gpus
        return PreemptionPlan(key, tuple(victims), freed, freed >= excess)

    # ---------------------------------------------------------------------------- cargos

    def place_cargo(self, req: CargoRequest) -> CargoDecision:
        """Place a gang whole (PLACED, mutates), or say why not (PENDING/REJECTED, no change).

        Order: the MiniCluster's idle reserved GPUs; then the same with idle reserved GPUs
        exchanged for free ones in the reservation's domain; then, within ``max``, free
        unreserved GPUs (borrowed).
        """
        existing = self._cargos.get(req.key)
        if existing is not None:
            return CargoDecision(req.key, Outcome.PLACED, self._copy(existing.placements))
        mc = self._mcs.get(req.minicluster)
        refusal = self._refusal(req, mc)
        if refusal is not None:
            return refusal
        assert mc is not None
        if req.replicas == 0:
            self._record_cargo(req, mc, (), 0)
            return CargoDecision(req.key, Outcome.PLACED)
        products = admission.mc_products(self, mc)
        sizes = (req.gpus_per_replica,) * req.replicas
        required = req.topology.mode == TopologyMode.REQUIRED
        levels = levels_for(required, self._level(req.topology.level), self._depth)
        overlay = self._idle_overlay(mc)
        idle = sum(overlay.values())
        needed = req.replicas * req.gpus_per_replica
        attempts: list[tuple[Query, bool]] = [
            (Query(products, sizes, levels, base=False, overlay=overlay), False)
        ]
        if mc.reserved and needed <= idle:
            within = self._common_domain(mc.reserved)
            if required:
                within = self._nodes[min(mc.reserved)].path[self._level(mc.req.topology.level)]
            floor = within.count("/")
            scoped = tuple(lv for lv in levels if lv >= floor)
            attempts.append((Query(products, sizes, scoped, overlay=overlay, within=within), True))
        if mc.used + needed <= mc.req.max_gpus:
            attempts.append((Query(products, sizes, levels, overlay=overlay), False))
        limit = ""
        for query, exchange in attempts:
            if not query.levels:
                continue
            fit = search(self._index, self._nodes, query)
            if fit is not None and self.shares and query.base and not exchange:
                limit = shares.blocked(self, mc, products, self._borrowing(mc, fit)) or ""
                if limit:
                    continue
            if fit is not None:
                placements = self._apply_cargo(req, mc, fit, query.base, exchange)
                return CargoDecision(
                    req.key, Outcome.PLACED, placements, domain=self._display(fit.domain)
                )
        detail = limit
        if mc.used + needed > mc.req.max_gpus:
            detail = (
                f"MiniCluster {mc.key} would exceed max ({mc.used} in use + {needed} > "
                f"{mc.req.max_gpus}) and its {idle} idle reserved GPUs do not hold it"
            )
        return CargoDecision(
            req.key, Outcome.PENDING, explanation=self._explain_cargo(req, mc, detail)
        )

    def _borrowing(self, mc: McState, fit: Fit) -> int:
        """GPUs outside ``mc``'s reservation that placing ``fit`` would take (idle reserved
        GPUs of a node are used first)."""
        per_node: dict[str, int] = {}
        for name, size in fit.chunks:
            per_node[name] = per_node.get(name, 0) + size
        return sum(
            max(0, size - len(self._nodes[name].idle_ids(mc.key)))
            for name, size in per_node.items()
        )

    def _refusal(self, req: CargoRequest, mc: McState | None) -> CargoDecision | None:
        """PENDING or REJECTED before any search, or None."""
        needed = req.replicas * req.gpus_per_replica
        required = req.topology.mode == TopologyMode.REQUIRED

        def explained(outcome: Outcome, gpu_type: str, detail: str) -> CargoDecision:
            explanation = Explanation(
                needed_gpus=needed,
                gpu_type=gpu_type,
                level=req.topology.level,
                required=required,
                detail=detail,
            )
            if mc is not None:
                explanation = self._explain_cargo(req, mc, detail)
            return CargoDecision(req.key, outcome, explanation=explanation)

        if mc is None:
            return explained(
                Outcome.PENDING, "GPU", f"MiniCluster {req.minicluster} does not exist yet"
            )
        gpu_type = mc.req.gpu_type
        if req.replicas and req.gpus_per_replica <= 0:
            return explained(
                Outcome.REJECTED, gpu_type, "gpusPerReplica is 0: Crane places GPU work only"
            )
        if needed > mc.req.max_gpus:
            return explained(
                Outcome.REJECTED,
                gpu_type,
                f"more than MiniCluster {mc.key}'s max of {mc.req.max_gpus} GPUs",
            )
        products = admission.mc_products(self, mc)
        never = admission.cargo_impossible(self, mc, needed, required)
        if req.replicas and never is not None:
            return explained(Outcome.REJECTED, gpu_type, never)
        if needed > self._domain_capacity(0, products):
            return explained(
                Outcome.REJECTED,
                gpu_type,
                f"the cluster has {self._domain_capacity(0, products)} {gpu_type} GPUs in all",
            )
        if req.replicas and req.gpus_per_replica > self._node_size(products):
            return explained(
                Outcome.REJECTED,
                gpu_type,
                f"a replica needs {req.gpus_per_replica} GPUs; the largest {gpu_type} node has "
                f"{self._node_size(products)}",
            )
        if required and req.replicas:
            level = self._level(req.topology.level)
            largest = self._domain_capacity(level, products)
            if needed > largest:
                return explained(
                    Outcome.REJECTED,
                    gpu_type,
                    f"the largest {req.topology.level} has {largest} {gpu_type} GPUs in all",
                )
        if not mc.admitted:
            return explained(Outcome.PENDING, gpu_type, f"MiniCluster {mc.key} is queued")
        return None

    def _apply_cargo(
        self, req: CargoRequest, mc: McState, fit: Fit, base: bool, exchange: bool
    ) -> tuple[ReplicaPlacement, ...]:
        placements: list[ReplicaPlacement] = []
        borrowed = 0
        swapped = 0
        for replica, (name, size) in enumerate(sorted(fit.chunks)):
            node = self._nodes[name]
            idle = node.idle_ids(mc.key) if node.open else []
            free = node.free_ids() if base else []
            ids = pick_gpu_ids(node.inv.islands, idle + free, idle, size)
            outside = [g for g in ids if node.resv[g] != mc.key]
            if exchange:
                swapped += len(outside)
                self._set_gpus(node, [(g, mc.key, req.key) for g in ids])
            else:
                borrowed += len(outside)
                self._set_gpus(node, [(g, node.resv[g], req.key) for g in ids])
            placements.append(
                ReplicaPlacement(
                    replica=replica,
                    node=name,
                    gpu_ids=ids,
                    borrowed=bool(outside) and not exchange,
                )
            )
        self._unreserve_idle(mc, swapped)
        self._record_cargo(req, mc, tuple(placements), borrowed)
        return self._copy(tuple(placements))

    def _record_cargo(
        self,
        req: CargoRequest,
        mc: McState,
        placements: tuple[ReplicaPlacement, ...],
        borrowed: int,
    ) -> None:
        cargo = CargoState(req, placements, borrowed)
        self._put_cargo(req.key, cargo)
        self._mc_cargo(mc, req.key, True)
        self._mc_set(mc, used=mc.used + cargo.gpus, borrowed=mc.borrowed + borrowed)

    @staticmethod
    def _copy(placements: Iterable[ReplicaPlacement]) -> tuple[ReplicaPlacement, ...]:
        return tuple(p.model_copy(deep=True) for p in placements)

    def restore_cargo(self, req: CargoRequest, placements: Sequence[ReplicaPlacement]) -> None:
        """Re-establish a cargo read back from status (after a restart). Raises ValueError when a
        node is unknown or a GPU is out of range, busy with another cargo or reserved for
        another MiniCluster; KeyError when its MiniCluster is not submitted."""
        mc = self._mcs.get(req.minicluster)
        if mc is None:
            raise KeyError(f"MiniCluster {req.minicluster} is not submitted: submit it first")
        self.release_cargo(req.key)
        for p in placements:
            node = self._nodes.get(p.node)
            if node is None:
                raise ValueError(f"cargo {req.key}: node {p.node} is unknown")
            for g in p.gpu_ids:
                if not 0 <= g < len(node.resv):
                    raise ValueError(f"cargo {req.key}: GPU {p.node}:{g} does not exist")
                if node.cargo[g] not in (None, req.key):
                    raise ValueError(
                        f"cargo {req.key}: GPU {p.node}:{g} is used by {node.cargo[g]}"
                    )
                if node.resv[g] not in (None, mc.key):
                    raise ValueError(
                        f"cargo {req.key}: GPU {p.node}:{g} is reserved for {node.resv[g]}"
                    )
        for p in placements:
            node = self._nodes[p.node]
            self._set_gpus(node, [(g, node.resv[g], req.key) for g in p.gpu_ids])
        self._record_cargo(req, mc, self._copy(placements), 0)
        self._recount(mc)

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
        cargo = self._cargos.get(key)
        return self._copy(cargo.placements) if cargo is not None else ()

    # --------------------------------------------------------------------------- explain

    def _best_fit_info(
        self,
        level: int,
        products: Sequence[str],
        overlay: Mapping[str, int],
        base: bool,
        preemptible: Mapping[str, int],
    ) -> DomainFit | None:
        room: dict[str, int] = {}
        if base:
            for p in products:
                fullest = self._index.fullest(level, p)
                if fullest is not None:
                    room[fullest[1]] = max(room.get(fullest[1], 0), fullest[0])
        for name, extra in overlay.items():
            domain = self._nodes[name].path[level]
            if domain not in room:
                room[domain] = self._free_in(domain, level, products) if base else 0
            room[domain] += extra
        if not room:
            return None
        domain, free = min(room.items(), key=lambda kv: (-kv[1], kv[0]))
        return DomainFit(
            self._alias(level), self._display(domain), free, preemptible.get(domain, 0)
        )

    def _explain_mc(self, mc: McState, plan: PreemptionPlan, detail: str) -> Explanation:
        req = mc.req
        level = self._level(req.topology.level)
        products = self._products(req.gpu_type)
        return Explanation(
            needed_gpus=max(req.min_gpus - mc.reserved_count, 0),
            gpu_type=req.gpu_type,
            level=req.topology.level,
            required=req.topology.mode == TopologyMode.REQUIRED,
            best=self._best_fit_info(
                level, products, {}, True, self._preemptible_by_domain(mc, level)
            ),
            total_free_gpus=self._free_in(ROOT, 0, products),
            preemptible_cargos=plan.victims,
            preemptible_gpus=plan.freed_gpus,
            detail=detail,
        )

    def _explain_cargo(self, req: CargoRequest, mc: McState, detail: str) -> Explanation:
        products = self._products(mc.req.gpu_type)
        needed = req.replicas * req.gpus_per_replica
        level = self._level(req.topology.level)
        borrowing = mc.used + needed <= mc.req.max_gpus
        overlay = self._idle_overlay(mc) if mc.admitted else {}
        return Explanation(
            needed_gpus=needed,
            gpu_type=mc.req.gpu_type,
            level=req.topology.level,
            required=req.topology.mode == TopologyMode.REQUIRED,
            best=self._best_fit_info(level, products, overlay, borrowing, {}),
            total_free_gpus=self._free_in(ROOT, 0, products),
            detail=detail,
        )

    def estimated_start(self, key: str) -> float | None:
        """When a waiting MiniCluster is expected to be admitted, from running cargos'
        expected ends (``squeue --start``); None when unknown. Never mutates."""
        found = insight.estimated_start(self, key)
        return found[0] if found is not None else None

    def explain_minicluster(self, key: str) -> Explanation | None:
        """Why a MiniCluster waits, or None when it is admitted with its ``min`` reserved.
        When running cargos' expected ends tell, the detail says when it should start."""
        mc = self._mcs.get(key)
        if mc is None or not mc.waiting:
            return None
        with self._trial():
            decisions = self.admit()
        for decision in decisions:
            if decision.key == key and decision.explanation is not None:
                return decision.explanation
        return self._explain_mc(
            mc, PreemptionPlan(key), "fits now: the next admission pass admits it"
        )

    def explain_cargo(self, req: CargoRequest) -> Explanation:
        """Why a cargo would wait, or, when it fits, where it would go. Never mutates."""
        decision = self.dry_run_cargo(req)
        if decision.explanation is not None:
            return decision.explanation
        # A cargo placed before keeps its MiniCluster even if ``req`` names another one.
        mc = self._mcs.get(req.minicluster) or self._mcs[self._cargos[req.key].req.minicluster]
        return self._explain_cargo(
            req, mc, f"fits now: would be placed in {req.topology.level} {decision.domain}"
        )

    # --------------------------------------------------------------------------- what-if

    def dry_run_minicluster(self, req: MiniClusterRequest) -> AdmissionDecision:
        """What the next admission pass would decide for ``req``. Never mutates."""
        with self._trial():
            self.submit_minicluster(req)
            for decision in self.admit():
                if decision.key == req.key:
                    return decision
            return AdmissionDecision(
                req.key, Outcome.ADMITTED, reservation=self.reservation(req.key)
            )

    def dry_run_cargo(
        self, req: CargoRequest, minicluster: MiniClusterRequest | None = None
    ) -> CargoDecision:
        """What ``place_cargo`` would decide, optionally for a hypothetical MiniCluster
        (submitted and admitted in the trial). Never mutates."""
        with self._trial():
            if minicluster is not None:
                self.submit_minicluster(minicluster)
                self.admit()
            return self.place_cargo(req)

    def snapshot(self) -> Engine:
        """An independent copy (index rebuilt from the GPU states)."""
        self._no_trial()
        copy = Engine(self.levels)
        for name in sorted(self._nodes):
            copy.upsert_node(self._nodes[name].inv)
        for key in sorted(self._mcs):
            mc = self._mcs[key]
            copy._mcs[key] = McState(mc.req, mc.admitted, {}, set(mc.cargos), mc.used, mc.borrowed)
        for key in sorted(self._cargos):
            c = self._cargos[key]
            copy._cargos[key] = CargoState(c.req, self._copy(c.placements), c.borrowed)
        copy.ends = self.ends
        copy.shares = self.shares
        for name in sorted(self._nodes):
            node = self._nodes[name]
            copy._set_gpus(
                copy._nodes[name], [(g, node.resv[g], node.cargo[g]) for g in range(len(node.resv))]
            )
            copy._noms.set(copy._nodes[name], sorted(node.nominated.items()))
        copy._noms.preempted_for = dict(self._noms.preempted_for)
        return copy

    # ------------------------------------------------------------------------ read side

    def usage(self, key: str) -> MiniClusterUsage:
        mc = self._mcs.get(key)
        if mc is None:
            return MiniClusterUsage(0, 0, 0, 0)
        return MiniClusterUsage(mc.reserved_count, mc.used, mc.borrowed, len(mc.cargos))

    def gpu_map(self) -> list[GpuSlot]:
        slots = []
        for name in sorted(self._nodes):
            node = self._nodes[name]
            for g in range(len(node.resv)):
                cargo = node.cargo[g]
                owner = self._cargos[cargo].req.minicluster if cargo is not None else None
                slots.append(
                    GpuSlot(name, g, node.resv[g], cargo, owner, g in node.inv.busy_gpu_ids)
                )
        return slots

    def has_gpu(self, node: str, gpu: int) -> bool:
        """Whether ``node`` is known and has GPU id ``gpu``."""
        state = self._nodes.get(node)
        return state is not None and 0 <= gpu < len(state.resv)

    def has_minicluster(self, key: str) -> bool:
        """Whether MiniCluster ``key`` is submitted (admitted or not)."""
        return key in self._mcs

    def gpu_user(self, node: str, gpu: int) -> str | None:
        """The cargo using GPU ``node:gpu``, if any (None for an unknown GPU)."""
        return self._nodes[node].cargo[gpu] if self.has_gpu(node, gpu) else None

    def gpu_user_minicluster(self, node: str, gpu: int) -> str | None:
        """The MiniCluster whose cargo uses GPU ``node:gpu``, if any."""
        cargo = self.gpu_user(node, gpu)
        return self._cargos[cargo].req.minicluster if cargo is not None else None

    def gpu_reserver(self, node: str, gpu: int) -> str | None:
        """The MiniCluster reserving GPU ``node:gpu``, if any."""
        return self._nodes[node].resv[gpu] if self.has_gpu(node, gpu) else None

    def dump(self) -> dict[str, Any]:
        """A canonical, comparable dump of the whole state (used by tests)."""
        return {
            "nodes": {
                n: (list(s.resv), list(s.cargo), s.free, s.path, sorted(s.nominated.items()))
                for n, s in sorted(self._nodes.items())
            },
            "miniclusters": {
                k: (m.req, m.admitted, self.reservation(k), sorted(m.cargos), m.used, m.borrowed)
                for k, m in sorted(self._mcs.items())
            },
            "cargos": {
                k: (c.req, [p.model_dump() for p in c.placements], c.borrowed)
                for k, c in sorted(self._cargos.items())
            },
            "index": self._index.canonical(),
        }

    def rebuilt_index(self) -> dict[str, Any]:
        """The index built from scratch from the GPU states (for checking the live one)."""
        index = FreeIndex(self._depth)
        for node in self._nodes.values():
            index.add_capacity(node.product, node.path, len(node.resv))
            index.update(
                node.name, node.product, node.path, 0, node.count_free() if node.open else 0
            )
        return index.canonical()
