"""Tenant shares on the wire: the engine's figures as the API shows them."""

from __future__ import annotations

from crane.api.schemas import TenantShareStatus
from crane.placement import Engine


def share_statuses(engine: Engine) -> dict[str, list[TenantShareStatus]]:
    """tenant -> its shares with what it uses and borrows in ``engine``, by GPU type."""
    out: dict[str, list[TenantShareStatus]] = {}
    for usage in engine.tenant_usage():
        out.setdefault(usage.tenant, []).append(
            TenantShareStatus(
                gpu_type=usage.gpu_type,
                nominal=usage.nominal,
                borrowing_limit=usage.borrowing_limit,
                lending_limit=usage.lending_limit,
                weight=usage.weight,
                in_use=usage.in_use,
                borrowing=usage.borrowing,
            )
        )
    return out
