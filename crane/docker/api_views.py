"""Docker mode rows rendered as the API's public MiniCluster and Cargo."""

from __future__ import annotations

import json

from sqlmodel import Session

from crane.api.schemas import Cargo, MiniCluster
from crane.docker import store
from crane.docker.conditions import cargo_conditions, minicluster_conditions
from crane.docker.store import ACTIVE, CargoRow, MiniClusterRow
from crane.lifecycle import service
from crane.model import (
    CargoPhase,
    CargoStatus,
    MiniClusterStatus,
)


def minicluster_out(s: Session, row: MiniClusterRow) -> MiniCluster:
    """The MiniCluster row on the wire: its cargos counted without those being deleted, its
    GPUs in use with them (a stopping cargo holds its GPUs until its containers are gone)."""
    spec = row.mc_spec()
    every = store.readable(store.cargos(s, row.tenant, row.name))
    cargos = [c for c in every if not c.deleting]
    active = [c for c in every if c.phase in ACTIVE]
    in_use = sum(c.cargo_spec().gpus for c in active)
    borrowed = sum(len(p.gpu_ids) for c in active for p in c.placements() if p.borrowed)
    reservation = row.reserved()
    running = [c for c in cargos if c.phase == CargoPhase.RUNNING.value]
    status = MiniClusterStatus(
        conditions=minicluster_conditions(s, row),
        reserved_gpus=sum(len(ids) for ids in reservation.values()),
        in_use_gpus=in_use,
        borrowed_gpus=borrowed,
        reservation=reservation,
        cargos=len(cargos),
        ready_cargos=len(running),
        replicas=service.status_replicas(
            spec,
            sum(1 for c in cargos if service.template_index(row.name, c.name) is not None),
            len(cargos),
        ),
        selector=f"crane.io/minicluster={row.name}",
        queue_position=row.queue_position,
        waits_behind=json.loads(row.waits_behind),
        estimated_start=row.estimated_start,
        message=row.message,
        observed_generation=row.generation,
    )
    return MiniCluster(
        name=row.name,
        tenant=row.tenant,
        uid=row.uid,
        spec=spec,
        status=status,
        labels=json.loads(row.labels),
        created_at=row.created_at,
        generation=row.generation,
    )


def cargo_out(row: CargoRow) -> Cargo:
    """The cargo row on the wire, with its phase, conditions and placement."""
    phase = CargoPhase(row.phase)
    spec = row.cargo_spec()
    conditions = cargo_conditions(row)
    status = CargoStatus(
        phase=phase,
        conditions=conditions,
        placement=row.placements(),
        replicas=len(row.placements()),
        selector=f"crane.io/cargo={row.name}",
        restarts=row.restarts,
        message=row.message,
        placed_at=row.placed_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        exit_code=row.exit_code,
    )
    return Cargo(
        name=row.name,
        tenant=row.tenant,
        uid=row.uid,
        spec=spec,
        status=status,
        created_at=row.created_at,
    )
