"""What-if questions on the live state, inside trials that roll back exactly: dry-runs,
explanations, estimated starts.
"""

from __future__ import annotations

from crane.placement import insight
from crane.placement.cargos import PlacingCargos
from crane.placement.types import (
    AdmissionDecision,
    CargoDecision,
    CargoRequest,
    Explanation,
    MiniClusterRequest,
    Outcome,
    PreemptionPlan,
)


class Answering(PlacingCargos):
    """Dry-runs and explanations; none of them mutates."""

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
