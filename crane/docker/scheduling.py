"""Engine requests built from Docker mode's rows, and the engine rebuilt from SQL."""

from __future__ import annotations

import logging

from crane.docker.store import CargoRow, MiniClusterRow
from crane.placement import Engine
from crane.placement.types import CargoRequest, MiniClusterRequest

log = logging.getLogger(__name__)


def minicluster_request(row: MiniClusterRow) -> MiniClusterRequest:
    spec = row.mc_spec()
    template = spec.template
    return MiniClusterRequest(
        key=row.key,
        gpu_type=spec.gpu_type,
        min_gpus=spec.gpus.min,
        max_gpus=spec.gpus.max,
        topology=spec.topology,
        priority=spec.priority,
        created=row.created_at.timestamp(),
        template_gpus_per_replica=template.gpus_per_replica if template else None,
        template_replicas=template.replicas if template else None,
    )


def cargo_request(row: CargoRow) -> CargoRequest:
    spec = row.cargo_spec()
    return CargoRequest(
        key=row.key,
        minicluster=f"{row.tenant}/{row.minicluster}",
        replicas=spec.replicas,
        gpus_per_replica=spec.gpus_per_replica,
        topology=spec.topology,
        created=row.created_at.timestamp(),
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
    for row in active:
        engine.restore_cargo(cargo_request(row), row.placements())
    return lost
