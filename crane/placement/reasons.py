"""Explanations of a waiting MiniCluster or a pending cargo: what it needs, the best domain
for it with the GPUs free and preemptible there, and a sentence of detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from crane.model.topology import TopologyMode
from crane.placement.preempting import Preempting
from crane.placement.state import ROOT, McState
from crane.placement.types import (
    CargoRequest,
    DomainFit,
    Explanation,
    PreemptionPlan,
)


class Reasons(Preempting):
    """The explanation builders used by admission, placement and the what-if questions."""

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
