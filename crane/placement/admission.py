"""Admission rules beyond the search: impossible requests, queueing strategies, what a waiting
MiniCluster waits behind, the domain a blocked one claims, and which GPU type a reservation
takes from an ordered ``gpuType`` list.

Queues: every MiniCluster names a queue (``MiniClusterRequest.queue``; today every
MiniCluster is in the cluster's queue ``""``; per-tenant queues add names, not code). Each
queue has a :class:`QueueingStrategy`; one admission pass walks all waiting MiniClusters by
priority (desc), creation time (asc), key, and applies the strategy of each one's queue.

- A MiniCluster that can never fit the cluster as it is (:func:`impossible`) is REJECTED with
  the numbers and takes no queue position; it blocks nobody. It is looked at again on every
  pass, so it is admitted once the cluster grows enough.
- ``BestEffortFIFO`` (default): when a MiniCluster does not fit, those behind it proceed
  (backfill), but never inside the domain it *claims* (:func:`claim_level`), so backfill
  cannot take the GPUs it waits for: the starvation rule.
- ``StrictFIFO``: when a MiniCluster of a queue does not fit, every later MiniCluster of that
  queue waits behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from crane.model.gpu import describe_products, gpu_types
from crane.model.keys import owner
from crane.model.topology import TopologyMode
from crane.placement.types import AdmissionDecision, Outcome

if TYPE_CHECKING:
    from crane.placement.ledger import Ledger
    from crane.placement.state import McState


class QueueingStrategy(StrEnum):
    """How a queue treats those behind a MiniCluster that does not fit."""

    BEST_EFFORT_FIFO = "BestEffortFIFO"
    """Those behind proceed (backfill) outside the domain the blocked one claims."""
    STRICT_FIFO = "StrictFIFO"
    """Those behind wait until the blocked one is admitted."""


def type_groups(engine: Ledger, mc: McState) -> list[tuple[str, tuple[str, ...]]]:
    """The GPU types ``mc`` may reserve, in its order of preference, each with its matching
    products. Once it holds a reservation, only the type of that reservation (a reservation
    stays on one type)."""
    groups = [(t, engine._products(t)) for t in gpu_types(mc.req.gpu_type)]
    groups = [(t, p) for t, p in groups if p]
    if mc.reserved:
        held = {engine._nodes[n].product for n in mc.reserved}
        groups = [(t, p) for t, p in groups if held & set(p)][:1]
    return groups


def mc_products(engine: Ledger, mc: McState) -> tuple[str, ...]:
    """Products a MiniCluster's cargos and growth may use: those of its reservation's type
    when it has one, else every type it accepts."""
    groups = type_groups(engine, mc)
    if mc.reserved and groups:
        return groups[0][1]
    return engine._products(mc.req.gpu_type)


def products_note(engine: Ledger, gpu_type: str) -> str:
    """``no node has X GPUs; the cluster has: <products with counts>``."""
    counts: dict[str, int] = {}
    for node in engine._nodes.values():
        if node.product:
            counts[node.product] = counts.get(node.product, 0) + len(node.resv)
    return f"no node has {gpu_type} GPUs; the cluster has {describe_products(counts.items())}"


def impossible(engine: Ledger, mc: McState) -> str | None:
    """Why ``mc``'s ``min`` can never be reserved in the cluster as it is, or None.

    Never: ``min`` above ``max``; no node of an accepted type; a template replica larger than
    the largest node of every accepted type; with Required topology, more than the largest
    domain of the level holds of one type; with Preferred, more than the cluster holds of one
    type. Costs O(types x distinct domain sizes): the index keeps capacities."""
    req = mc.req
    if req.min_gpus > req.max_gpus:
        return f"gpus.min {req.min_gpus} is more than gpus.max {req.max_gpus}"
    groups = type_groups(engine, mc)
    if not groups:
        return products_note(engine, req.gpu_type)
    required = req.topology.mode == TopologyMode.REQUIRED
    level = engine._level(req.topology.level) if required else 0
    where = f"{req.topology.level}" if required else "cluster"
    reasons: list[str] = []
    for gpu_type, products in groups:
        slot = req.template_gpus_per_replica
        node_size = engine._node_size(products)
        if slot and slot > node_size:
            reasons.append(
                f"a template replica needs {slot} GPUs; the largest {gpu_type} node has {node_size}"
            )
            continue
        largest = engine._domain_capacity(level, products)
        if req.min_gpus > largest:
            what = f"the largest {where}" if required else "the cluster"
            reasons.append(f"{what} has {largest} {gpu_type} GPUs in all")
            continue
        return None
    return "; ".join(reasons)


def cargo_impossible(engine: Ledger, mc: McState, needed: int, required: bool) -> str | None:
    """Why a cargo of ``needed`` GPUs can never be placed (no node of the type, or more than
    the cluster holds of it when not Required), or None. Required levels, replica sizes and
    ``max`` are checked by the engine's refusal."""
    products = mc_products(engine, mc)
    if not products:
        return products_note(engine, mc.req.gpu_type)
    if not required:
        total = engine._domain_capacity(0, products)
        if needed > total:
            return f"the cluster has {total} {mc.req.gpu_type} GPUs in all"
    return None


def claim_level(engine: Ledger, mc: McState) -> int:
    """The level at which a blocked MiniCluster claims a domain: its level when Required; when
    Preferred, the narrowest level whose largest domain can hold its ``min`` (claiming a node
    for a MiniCluster that needs several would protect nothing)."""
    level = engine._level(mc.req.topology.level)
    if mc.req.topology.mode == TopologyMode.REQUIRED:
        return level
    products = mc_products(engine, mc)
    for lv in range(engine._depth - 1, -1, -1):
        if engine._domain_capacity(lv, products) >= mc.req.min_gpus:
            return min(lv, level)
    return 0


def waits_behind_sentence(keys: Sequence[str], why: str, reader: str = "") -> str:
    """``waits behind t/a, t/b (why)``, said to the owner of the ``reader`` key: MiniClusters of
    another tenant are counted, never named (the sentence is stored on the reader's object)."""
    named = [k for k in keys if not reader or owner(k) == owner(reader)]
    hidden = len(keys) - len(named)
    if hidden:
        named.append(
            "a MiniCluster of another tenant"
            if hidden == 1
            else f"{hidden} MiniClusters of other tenants"
        )
    return f"waits behind {', '.join(named)} ({why})"


def unschedulable_reason(decision: AdmissionDecision | None) -> str | None:
    """The condition reason for an admission that can never succeed as the cluster is
    (``Unschedulable``), or None for one that waits in the queue."""
    if decision is not None and decision.outcome is Outcome.REJECTED:
        return "Unschedulable"
    return None


def cargo_over_max(minicluster: str, max_gpus: int, used: int, gpus: int) -> str | None:
    """Why a new cargo of ``gpus`` GPUs must be refused at create for a MiniCluster whose live
    cargos (placed or pending) ask for ``used`` GPUs, or None. One rule for every backend."""
    if gpus > max_gpus:
        return (
            f"the cargo asks for {gpus} GPUs, more than MiniCluster {minicluster}'s gpus.max "
            f"({max_gpus}): it could never run; ask for fewer or raise gpus.max"
        )
    if used + gpus > max_gpus:
        return (
            f"the cargo would take MiniCluster {minicluster} to {used + gpus} GPUs, over gpus.max "
            f"({max_gpus}, {used} asked for by its cargos): raise gpus.max or shrink first"
        )
    return None
