"""The admission pass: waiting MiniClusters in queue order (priority, creation, tenant
shares), reservations, backfill outside claimed domains, preemption plans and nominations.
The rules beyond the search live in ``crane/placement/admission.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

from crane.placement import admission, insight, shares
from crane.placement.admission import QueueingStrategy
from crane.placement.reasons import Reasons
from crane.placement.state import McState
from crane.placement.types import (
    AdmissionDecision,
    Outcome,
    PreemptionPlan,
)


class Admitting(Reasons):
    """The admission pass and the queue."""

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
                detail = admission.waits_behind_sentence((head,), "StrictFIFO queue", mc.key)
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
                        mc.key,
                    )
                elif not detail and head is not None:
                    behind = (head,)
                    detail = admission.waits_behind_sentence(
                        behind, "ahead in the queue; no room now", mc.key
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
