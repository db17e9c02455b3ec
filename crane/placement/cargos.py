"""Cargo placement: a gang placed whole on the MiniCluster's idle reserved GPUs, then by
exchange inside its reservation's domain, then borrowed within ``max``; refusals with their
reason; cargos restored from status after a restart.
"""

from __future__ import annotations

from collections.abc import Sequence

from crane.model.specs import ReplicaPlacement
from crane.model.topology import TopologyMode
from crane.placement import admission, shares
from crane.placement.admitting import Admitting
from crane.placement.fit import pick_gpu_ids
from crane.placement.search import Fit, Query, levels_for, search
from crane.placement.state import CargoState, McState
from crane.placement.types import (
    CargoDecision,
    CargoRequest,
    Explanation,
    Outcome,
)


class PlacingCargos(Admitting):
    """Placing, refusing and restoring cargos."""

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
