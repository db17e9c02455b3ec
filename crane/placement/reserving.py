"""MiniCluster records and reservations: submit, remove, restore, and find the GPUs a
MiniCluster reserves for its ``min`` (topology, GPU type order, tenant share limits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crane.model.shares import ShareTable
from crane.model.topology import TopologyMode
from crane.placement import admission, shares
from crane.placement.admission import QueueingStrategy
from crane.placement.fit import pick_gpu_ids
from crane.placement.ledger import GpuChange, Ledger
from crane.placement.search import Fit, Query, chunk_sizes, levels_for, search
from crane.placement.state import McState
from crane.placement.types import (
    MiniClusterRequest,
)


class Reserving(Ledger):
    """MiniCluster records and the search for their reservations."""

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

    def strategy(self, queue: str) -> QueueingStrategy:
        """The queueing strategy of a queue."""
        return self.queue_strategies.get(queue, self.queueing)

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
