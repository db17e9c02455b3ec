"""Engine requests built from Docker mode's rows, and the engine rebuilt from SQL."""

from __future__ import annotations

import logging

from crane.docker.store import CargoRow, MiniClusterRow
from crane.lifecycle import service
from crane.placement import Engine
from crane.placement.restore import CargoClaim, restore_cargos
from crane.placement.types import CargoRequest, MiniClusterRequest

log = logging.getLogger(__name__)


def minicluster_request(row: MiniClusterRow) -> MiniClusterRequest:
    """The engine's request for a MiniCluster row (built once, in crane.lifecycle.service)."""
    return service.minicluster_request(row.key, row.mc_spec(), row.created_at.timestamp())


def cargo_request(row: CargoRow) -> CargoRequest:
    """The engine's request for a cargo row (built once, in crane.lifecycle.service)."""
    started = row.started_at or row.placed_at
    return service.cargo_request(
        row.key,
        row.cargo_spec(),
        row.created_at.timestamp(),
        started.timestamp() if started else None,
    )


def restore(engine: Engine, mcs: list[MiniClusterRow], active: list[CargoRow]) -> list[str]:
    """Feed the engine what SQL says is reserved and placed; returns the keys of MiniClusters
    whose reservation no longer fits the hosts (a host was removed) and must be admitted again."""
    lost: list[str] = []
    for mc in mcs:
        engine.submit_minicluster(minicluster_request(mc))
        if mc.admitted:
            try:
                engine.restore_reservation(
                    mc.key, {node: tuple(ids) for node, ids in mc.reserved().items()}
                )
            except (KeyError, ValueError) as err:
                log.warning("reservation of %s is gone: %s", mc.key, err)
                lost.append(mc.key)
    for conflict in restore_cargos(
        engine, [CargoClaim(cargo_request(r), tuple(r.placements())) for r in active]
    ).conflicts:
        log.warning("restore: %s", conflict.reason)
    return lost
