"""Preemption plans: which borrowed cargos to stop so a waiting MiniCluster fits (whole,
newest first, no more than needed), which to stop when ``max`` is lowered, and the GPUs held
(nominated) for a MiniCluster while its victims drain.
"""

from __future__ import annotations

from collections.abc import Sequence

from crane.placement import admission, shares
from crane.placement.reserving import Reserving
from crane.placement.state import CargoState, McState
from crane.placement.types import (
    PreemptionPlan,
)


class Preempting(Reserving):
    """Preemption plans and nominations."""

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
