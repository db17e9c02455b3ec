"""Tenant shares in the engine: use, limits, fair order and reclaim (``docs/tenants.md``).

A tenant's *use* of a GPU type T is the GPUs of T its MiniClusters reserve plus the GPUs of
T their cargos borrow outside a reservation. With a share (nominal N, borrowing limit B,
lending limit L, weight w) for T:

- **Borrowing limit.** A reservation or a borrowing cargo that would take the tenant's use
  of T above ``N + B`` waits (no limit when B is unset).
- **Lending limit.** Of a tenant's unused guarantee, ``guard = max(0, N - L - use)`` GPUs of T
  stay free for it alone: another tenant may take GPUs of T only while the free GPUs of T
  left after it still cover every other tenant's guard (L unset: guard 0).
- **Fair division.** Waiting MiniClusters are admitted lowest weighted share first, where
  ``share = max(0, use - N) / w`` of the tenant, for the MiniCluster's GPU type (Kueue's
  dominant resource share with one resource per decision); ties by priority (higher first),
  then creation time, then key. A tenant within its guarantee has share 0 and goes first.
- **Reclaim.** A waiting MiniCluster whose tenant's use plus what it needs stays within N may
  preempt borrowed cargos of MiniClusters of tenants whose use is above their N, whatever
  their priority (the usual preemption with notice).

A tenant without a share for T has ``N = 0``, no borrowing limit and weight 1. With no share
configured at all, none of this runs and the engine behaves as without tenants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crane.model.shares import TenantShare
from crane.placement.admission import type_groups

if TYPE_CHECKING:
    from crane.placement.ledger import Ledger
    from crane.placement.state import McState

DEFAULT = TenantShare(gpu_type="any")
"""The share of a tenant that has none for a type: nothing guaranteed, no limit, weight 1."""


@dataclass(frozen=True)
class TenantUsage:
    """One tenant's share of one GPU type and how much of it it uses."""

    tenant: str
    gpu_type: str
    nominal: int
    borrowing_limit: int | None
    lending_limit: int | None
    weight: float
    in_use: int
    """GPUs of the type its MiniClusters reserve or their cargos borrow."""

    @property
    def borrowing(self) -> int:
        """GPUs in use beyond the guarantee."""
        return max(0, self.in_use - self.nominal)


def share_for(engine: Ledger, tenant: str, products: tuple[str, ...]) -> TenantShare:
    """The tenant's share whose type covers ``products``, else :data:`DEFAULT`."""
    wanted = set(products)
    for share in engine.shares.shares.get(tenant, ()):
        if wanted & set(engine._products(share.gpu_type)):
            return share
    return DEFAULT


def scope(engine: Ledger, tenant: str, products: tuple[str, ...]) -> tuple[str, ...]:
    """The products a tenant's use is counted over: those of its share's type, or
    ``products`` when it has none for them."""
    share = share_for(engine, tenant, products)
    return engine._products(share.gpu_type) if share is not DEFAULT else products


def use(engine: Ledger, tenant: str, products: tuple[str, ...]) -> int:
    """GPUs of ``products`` reserved by the tenant's MiniClusters or borrowed by their cargos."""
    wanted = set(products)
    total = 0
    for mc in engine._mcs.values():
        if engine.shares.tenant_of(mc.key) != tenant:
            continue
        for name, ids in mc.reserved.items():
            if engine._nodes[name].product in wanted:
                total += len(ids)
        for cargo_key in mc.cargos:
            for p in engine._cargos[cargo_key].placements:
                node = engine._nodes.get(p.node)
                if node is not None and node.product in wanted:
                    total += sum(1 for g in p.gpu_ids if node.resv[g] != mc.key)
    return total


def _tenants(engine: Ledger) -> set[str]:
    return set(engine.shares.shares) | {engine.shares.tenant_of(k) for k in engine._mcs}


def blocked(engine: Ledger, mc: McState, products: tuple[str, ...], need: int) -> str | None:
    """Why ``mc``'s tenant may not take ``need`` more GPUs of ``products``, or None."""
    if not engine.shares or need <= 0:
        return None
    tenant = engine.shares.tenant_of(mc.key)
    share = share_for(engine, tenant, products)
    counted = scope(engine, tenant, products)
    mine = use(engine, tenant, counted)
    if share.borrowing_limit is not None and mine + need > share.nominal + share.borrowing_limit:
        return (
            f"tenant {tenant} would use {mine + need} {share_name(share, mc)} GPUs, over its "
            f"guarantee {share.nominal} + borrowing limit {share.borrowing_limit}"
        )
    guards = 0
    for other in sorted(_tenants(engine) - {tenant}):
        theirs = share_for(engine, other, products)
        if theirs.lending_limit is None:
            continue
        over = scope(engine, other, products)
        guards += max(0, theirs.nominal - theirs.lending_limit - use(engine, other, over))
    free = engine._free_in("*", 0, products)
    if guards and need > free - guards:
        return (
            f"{min(guards, free)} of the {free} free {share_name(share, mc)} GPUs are kept for "
            "tenants below their guarantee (lending limits)"
        )
    return None


def share_name(share: TenantShare, mc: McState) -> str:
    """The GPU type to name in a sentence."""
    return share.gpu_type if share is not DEFAULT else mc.req.gpu_type


def weighted_share(
    engine: Ledger, mc: McState, memo: dict[tuple[str, tuple[str, ...]], float]
) -> float:
    """``max(0, use - nominal) / weight`` of ``mc``'s tenant for its first usable GPU type;
    ``memo`` keeps each tenant's figure while nothing changes (one admission step)."""
    products = _first_products(engine, mc)
    tenant = engine.shares.tenant_of(mc.key)
    found = memo.get((tenant, products))
    if found is None:
        share = share_for(engine, tenant, products)
        mine = use(engine, tenant, scope(engine, tenant, products))
        found = memo[(tenant, products)] = max(0, mine - share.nominal) / share.weight
    return found


def _first_products(engine: Ledger, mc: McState) -> tuple[str, ...]:
    groups = type_groups(engine, mc)
    return groups[0][1] if groups else engine._products(mc.req.gpu_type)


def reclaims(engine: Ledger, mc: McState) -> bool:
    """Whether ``mc``'s tenant is below its guarantee by at least what ``mc`` still needs."""
    if not engine.shares:
        return False
    products = _first_products(engine, mc)
    tenant = engine.shares.tenant_of(mc.key)
    share = share_for(engine, tenant, products)
    need = mc.req.min_gpus - mc.reserved_count
    return (
        share.nominal > 0
        and use(engine, tenant, scope(engine, tenant, products)) + need <= share.nominal
    )


def above_nominal(engine: Ledger, minicluster: str, products: tuple[str, ...]) -> bool:
    """Whether the tenant of ``minicluster`` uses more of ``products``' type than its nominal."""
    tenant = engine.shares.tenant_of(minicluster)
    share = share_for(engine, tenant, products)
    return use(engine, tenant, scope(engine, tenant, products)) > share.nominal


def usage(engine: Ledger) -> list[TenantUsage]:
    """Every configured share with its tenant's use, by tenant then type."""
    out = []
    for tenant in sorted(engine.shares.shares):
        for share in engine.shares.shares[tenant]:
            products = engine._products(share.gpu_type)
            out.append(
                TenantUsage(
                    tenant,
                    share.gpu_type,
                    share.nominal,
                    share.borrowing_limit,
                    share.lending_limit,
                    share.weight,
                    use(engine, tenant, products),
                )
            )
    return out
