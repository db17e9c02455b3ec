"""The API's backend in Docker mode: SQL rows are the truth, the reconciler acts on them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from sqlmodel import Session, col, select

from crane.api.errors import Conflict, Invalid, NotFound
from crane.api.kube_snapshot import explanation_out
from crane.api.schemas import (
    Cargo,
    CargoCreate,
    CargoExplain,
    CargoGrant,
    DryRunPlacement,
    DryRunRequest,
    DryRunResult,
    Event,
    ExplainResult,
    GpuSlotOut,
    GrowRequest,
    GrowResult,
    Host,
    HostCreate,
    MiniCluster,
    MiniClusterCreate,
    MiniClusterPatch,
    NodeOut,
    ShrinkRequest,
    ShrinkResult,
)
from crane.api.settings import ApiSettings
from crane.api.usage import Holding, Snapshot, aware
from crane.docker import api_hosts, store
from crane.docker.api_views import cargo_out, minicluster_out
from crane.docker.reconciler import ACTIVE, Reconciler
from crane.docker.scheduling import cargo_request
from crane.docker.store import CargoRow, MiniClusterRow
from crane.model import CargoPhase, CargoSpec
from crane.placement.types import CargoRequest, MiniClusterRequest, Outcome

SETTLED = frozenset(
    p.value
    for p in (CargoPhase.RUNNING, CargoPhase.SUCCEEDED, CargoPhase.FAILED, CargoPhase.PREEMPTED)
)
"""Phases a grow with ``wait`` stops waiting at: the cargo ran, or never will."""
FINISHED = SETTLED - {CargoPhase.RUNNING.value}


class DockerBackend:
    """Implements :class:`crane.api.backend.Backend` over the Docker mode tables."""

    name = "docker"

    def __init__(self, settings: ApiSettings, reconciler: Reconciler | None = None) -> None:
        from crane.api.db import make_engine, migrate

        self.settings = settings
        self.db = reconciler.db if reconciler else make_engine(settings.database_url)
        migrate(self.db)
        self.reconciler = reconciler or Reconciler(self.db, emit=self._emit)
        if reconciler is not None:
            reconciler.emit = self._emit
        self._events: asyncio.Queue[Event] = asyncio.Queue(maxsize=settings.event_buffer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._grow_lock = asyncio.Lock()

    # lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.reconciler.start()

    async def close(self) -> None:
        await asyncio.to_thread(self.reconciler.stop)

    async def ready(self) -> str | None:
        down = self.reconciler.host_errors
        return f"Docker hosts unreachable: {', '.join(sorted(down))}" if down else None

    def _emit(self, event: Event) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: Event) -> None:
        if self._events.full():
            self._events.get_nowait()
        self._events.put_nowait(event)

    async def events(self) -> AsyncIterator[Event | Snapshot]:
        """A usage snapshot from the cargo table first (what changed while no server recorded
        it: a crash between a phase change and its event), then the reconciler's events."""
        yield await asyncio.to_thread(self._snapshot)
        while True:
            yield await self._events.get()

    def _snapshot(self) -> Snapshot:
        with Session(self.db) as s:
            rows = s.exec(select(CargoRow).where(col(CargoRow.placed_at).is_not(None))).all()
        holdings = [
            Holding(
                tenant=r.tenant,
                minicluster=r.minicluster,
                cargo=r.name,
                gpus=r.cargo_spec().gpus,
                placed_at=aware(r.placed_at),
                finished_at=aware(r.finished_at) if r.finished_at else None,
            )
            for r in rows
            if r.placed_at is not None
            and (r.phase in ACTIVE or (r.phase in FINISHED and r.finished_at is not None))
        ]
        return Snapshot(holdings=holdings, time=datetime.now(UTC))

    async def _pass(self) -> None:
        await asyncio.to_thread(self.reconciler.reconcile_once)

    # MiniClusters

    def _mc(self, s: Session, tenant: str, name: str) -> MiniClusterRow:
        row = store.minicluster(s, tenant, name)
        if row is None or row.deleting:
            raise NotFound(
                f"MiniCluster {name!r} not found in tenant {tenant!r}: "
                "list them with `crane mc list`"
            )
        return row

    async def create_minicluster(self, tenant: str, body: MiniClusterCreate) -> MiniCluster:
        with Session(self.db) as s:
            if store.minicluster(s, tenant, body.name) is not None:
                raise Conflict(
                    f"MiniCluster {body.name!r} exists in tenant {tenant!r}: "
                    "pick another name or delete it first"
                )
            row = MiniClusterRow(
                tenant=tenant,
                name=body.name,
                spec=body.spec.model_dump_json(by_alias=True),
                labels=json.dumps(body.labels),
            )
            s.add(row)
            s.commit()
        await self._pass()
        return await self.get_minicluster(tenant, body.name)

    async def list_miniclusters(self, tenant: str) -> list[MiniCluster]:
        with Session(self.db) as s:
            return [minicluster_out(s, r) for r in store.miniclusters(s, tenant) if not r.deleting]

    async def get_minicluster(self, tenant: str, name: str) -> MiniCluster:
        with Session(self.db) as s:
            return minicluster_out(s, self._mc(s, tenant, name))

    async def patch_minicluster(
        self, tenant: str, name: str, patch: MiniClusterPatch
    ) -> MiniCluster:
        with Session(self.db) as s:
            row = self._mc(s, tenant, name)
            spec = row.mc_spec().model_dump(by_alias=True)
            changes = patch.model_dump(by_alias=True, exclude_unset=True, exclude={"labels"})
            try:
                new = type(row.mc_spec()).model_validate({**spec, **changes})
            except ValueError as err:
                raise Invalid(f"the patched spec is invalid: {err}") from None
            row.spec = new.model_dump_json(by_alias=True)
            if patch.labels is not None:
                row.labels = json.dumps(patch.labels)
            row.generation += 1
            s.add(row)
            s.commit()
        await self._pass()
        return await self.get_minicluster(tenant, name)

    async def delete_minicluster(self, tenant: str, name: str) -> None:
        with Session(self.db) as s:
            row = self._mc(s, tenant, name)
            row.deleting = True
            s.add(row)
            s.commit()
        self.reconciler.wake()

    async def explain(self, tenant: str, name: str) -> ExplainResult:
        await self._pass()
        engine = self.reconciler.snapshot()
        with Session(self.db) as s:
            mc = self._mc(s, tenant, name)
            out = minicluster_out(s, mc)
            exp = engine.explain_minicluster(mc.key)
            cargos = []
            for c in store.cargos(s, tenant, name):
                cargo_exp = (
                    engine.explain_cargo(cargo_request(c))
                    if c.phase == CargoPhase.PENDING.value and not c.deleting
                    else None
                )
                cargos.append(
                    CargoExplain(
                        name=c.name,
                        phase=c.phase,
                        message=cargo_exp.sentence() if cargo_exp else c.message,
                        explanation=explanation_out(cargo_exp),
                    )
                )
        st = out.status
        if exp is not None:
            message = exp.sentence()
        elif mc.admitted:
            message = (
                f"admitted: {st.reserved_gpus} GPUs reserved, {st.in_use_gpus} in use, "
                f"{st.borrowed_gpus} borrowed (gpus.max {out.spec.gpus.max})"
            )
        else:
            message = mc.message or "waiting for the next admission pass"
        return ExplainResult(
            name=name,
            admitted=mc.admitted,
            message=message,
            queue_position=mc.queue_position,
            explanation=explanation_out(exp),
            cargos=cargos,
        )

    # grow and shrink

    def _used_gpus(self, s: Session, tenant: str, name: str) -> int:
        return sum(
            c.cargo_spec().gpus
            for c in store.cargos(s, tenant, name)
            if not c.deleting and c.phase in {*ACTIVE, CargoPhase.PENDING.value}
        )

    async def grow(self, tenant: str, name: str, request: GrowRequest) -> GrowResult:
        async with self._grow_lock:
            return await self._grow(tenant, name, request)

    async def _grow(self, tenant: str, name: str, request: GrowRequest) -> GrowResult:
        with Session(self.db) as s:
            mc = self._mc(s, tenant, name)
            spec = mc.mc_spec()
            if request.cargos is not None:
                shapes = [c.spec(name) for c in request.cargos]
                names = [c.name for c in request.cargos]
            elif spec.template is None:
                raise Invalid(
                    "this MiniCluster has no template: give cargos (shapes) instead of count"
                )
            else:
                t = spec.template
                shapes = [
                    CargoSpec(
                        mini_cluster=name,
                        replicas=t.replicas,
                        gpus_per_replica=t.gpus_per_replica,
                        template=t.template,
                        topology=t.topology,
                        restart_policy=t.restart_policy,
                        backoff_limit=t.backoff_limit,
                    )
                ] * (request.count or 0)
                names = [None] * len(shapes)
            used = self._used_gpus(s, tenant, name)
            taken = {c.name for c in store.cargos(s, tenant)}
        grants: list[CargoGrant] = []
        reasons: list[str] = []
        for shape, wanted in zip(shapes, names, strict=True):
            if used + shape.gpus > spec.gpus.max:
                reason = (
                    f"adding {shape.gpus} GPUs would use {used + shape.gpus} of gpus.max "
                    f"{spec.gpus.max}: raise gpus.max or shrink first"
                )
                grants.append(
                    CargoGrant(
                        name=None, gpus=shape.gpus, added=False, phase="Denied", reason=reason
                    )
                )
                reasons.append(reason)
                continue
            cargo_name = wanted or _next_name(name, taken)
            taken.add(cargo_name)
            created = await self.create_cargo(tenant, CargoCreate(name=cargo_name, spec=shape))
            if created.status.phase is CargoPhase.PENDING and not request.allow_pending:
                await self._remove_cargo_now(tenant, cargo_name)
                reason = created.status.message or "cannot be placed now"
                grants.append(
                    CargoGrant(
                        name=None, gpus=shape.gpus, added=False, phase="Denied", reason=reason
                    )
                )
                reasons.append(reason)
                continue
            used += shape.gpus
            grants.append(
                CargoGrant(
                    name=cargo_name,
                    gpus=shape.gpus,
                    added=True,
                    phase=created.status.phase.value,
                    reason=created.status.message,
                )
            )
        timed_out = False
        if request.wait:
            timed_out = not await self._wait_running(
                tenant, [g.name for g in grants if g.name], request.timeout_seconds
            )
            grants = [await self._refresh_grant(tenant, g) for g in grants]
        return GrowResult.of(grants, reasons, timed_out)

    async def _refresh_grant(self, tenant: str, grant: CargoGrant) -> CargoGrant:
        if grant.name is None:
            return grant
        cargo = await self.get_cargo(tenant, grant.name)
        return grant.model_copy(update={"phase": cargo.status.phase.value})

    async def _wait_running(self, tenant: str, names: list[str], timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            with Session(self.db) as s:
                phases = [getattr(store.cargo(s, tenant, n), "phase", None) for n in names]
            if all(p in SETTLED for p in phases):
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            self.reconciler.wake()
            await asyncio.sleep(0.25)

    async def _remove_cargo_now(self, tenant: str, name: str) -> None:
        with Session(self.db) as s:
            row = store.cargo(s, tenant, name)
            if row is not None:
                s.delete(row)
                s.commit()

    async def shrink(self, tenant: str, name: str, request: ShrinkRequest) -> ShrinkResult:
        with Session(self.db) as s:
            self._mc(s, tenant, name)
            live = [c for c in store.cargos(s, tenant, name) if not c.deleting]
            if request.cargos is not None:
                known = {c.name for c in live}
                missing = [n for n in request.cargos if n not in known]
                if missing:
                    raise NotFound(
                        f"cargos {missing} are not in MiniCluster {name!r}: "
                        f"see `crane cargo list --mc {name}`"
                    )
                victims = list(request.cargos)
            else:
                victims = [c.name for c in reversed(live)][: request.count]
        for victim in victims:
            await self.delete_cargo(tenant, victim, request.grace_period_seconds)
        return ShrinkResult(removed=victims, grace_period_seconds=request.grace_period_seconds)

    # cargos

    async def create_cargo(self, tenant: str, body: CargoCreate) -> Cargo:
        with Session(self.db) as s:
            self._mc(s, tenant, body.spec.mini_cluster)
            taken = {c.name for c in store.cargos(s, tenant)}
            name = body.name or _next_name(body.spec.mini_cluster, taken)
            if name in taken:
                raise Conflict(f"cargo {name!r} exists in tenant {tenant!r}: pick another name")
            s.add(
                CargoRow(
                    tenant=tenant,
                    name=name,
                    minicluster=body.spec.mini_cluster,
                    spec=body.spec.model_dump_json(by_alias=True),
                )
            )
            s.commit()
        await self._pass()
        return await self.get_cargo(tenant, name)

    async def list_cargos(self, tenant: str, minicluster: str | None = None) -> list[Cargo]:
        with Session(self.db) as s:
            return [cargo_out(r) for r in store.cargos(s, tenant, minicluster) if not r.deleting]

    def _cargo(self, s: Session, tenant: str, name: str) -> CargoRow:
        row = store.cargo(s, tenant, name)
        if row is None or row.deleting:
            raise NotFound(
                f"cargo {name!r} not found in tenant {tenant!r}: list them with `crane cargo list`"
            )
        return row

    async def get_cargo(self, tenant: str, name: str) -> Cargo:
        with Session(self.db) as s:
            return cargo_out(self._cargo(s, tenant, name))

    async def delete_cargo(
        self, tenant: str, name: str, grace_period_seconds: int | None = None
    ) -> None:
        with Session(self.db) as s:
            row = self._cargo(s, tenant, name)
            row.deleting = True
            if grace_period_seconds is not None:
                row.grace_seconds = grace_period_seconds
            s.add(row)
            s.commit()
        self.reconciler.wake()

    async def cargo_logs(
        self,
        tenant: str,
        name: str,
        replica: int = 0,
        follow: bool = False,
        tail: int | None = None,
    ) -> AsyncIterator[str]:
        from crane.docker.logs import replica_log_lines

        with Session(self.db) as s:
            row = self._cargo(s, tenant, name)
            placement = next((p for p in row.placements() if p.replica == replica), None)
            if placement is None:
                raise NotFound(
                    f"cargo {name!r} has no placed replica {replica}: "
                    f"it has {row.cargo_spec().replicas} replicas, phase {row.phase}"
                )
            host = s.get(store.HostRow, placement.node)
        if host is None:
            raise NotFound(f"host {placement.node!r} of cargo {name!r} was removed")
        async for line in replica_log_lines(host.host(), tenant, name, replica, follow, tail):
            yield line

    # hosts

    async def add_host(self, body: HostCreate) -> Host:
        await asyncio.to_thread(api_hosts.add, self.db, api_hosts.spec_of(body))
        await self._pass()
        return await self.get_host(body.name)

    async def list_hosts(self) -> list[Host]:
        return await asyncio.to_thread(api_hosts.hosts_out, self.db, self.reconciler.host_errors)

    async def get_host(self, name: str) -> Host:
        with Session(self.db) as s:
            return api_hosts.host_out(s, api_hosts.row(s, name), self.reconciler.host_errors)

    async def remove_host(self, name: str, preempt: bool) -> Host:
        await asyncio.to_thread(api_hosts.drain, self.db, name, preempt)
        host = await self.get_host(name)
        self.reconciler.wake()
        return host

    # cluster-wide

    async def nodes(self) -> list[NodeOut]:
        await self._pass()
        with self.reconciler.lock, Session(self.db) as s:
            slots = self.reconciler.engine.gpu_map()
            out: list[NodeOut] = []
            for host in store.hosts(s):
                spec = host.host()
                gpus = [
                    GpuSlotOut(
                        id=g.gpu_id,
                        reserved_for=g.reserved_for,
                        mini_cluster=g.minicluster,
                        cargo=g.cargo,
                        busy=g.busy,
                    )
                    for g in slots
                    if g.node == host.name
                ]
                out.append(
                    NodeOut(
                        name=host.name,
                        gpu_product=spec.gpu_product,
                        gpu_count=spec.gpu_count,
                        ready=host.name not in self.reconciler.host_errors,
                        schedulable=not host.draining,
                        labels=spec.labels,
                        gpus=gpus,
                    )
                )
            return out

    async def dry_run(self, tenant: str, request: DryRunRequest) -> DryRunResult:
        return await asyncio.to_thread(self._dry_run, tenant, request)

    def _dry_run(self, tenant: str, request: DryRunRequest) -> DryRunResult:
        engine = self.reconciler.snapshot()
        now = datetime.now(UTC).timestamp()
        if request.mini_cluster is not None:
            spec = request.mini_cluster
            admission = engine.dry_run_minicluster(
                MiniClusterRequest(
                    key=f"{tenant}/dry-run",
                    gpu_type=spec.gpu_type,
                    min_gpus=spec.gpus.min,
                    max_gpus=spec.gpus.max,
                    topology=spec.topology,
                    priority=spec.priority,
                    created=now,
                )
            )
            fits = admission.outcome is Outcome.ADMITTED
            return DryRunResult(
                outcome=admission.outcome.value,
                fits=fits,
                message="fits" if fits else _sentence(admission.explanation),
                reservation={n: list(ids) for n, ids in admission.reservation.items()},
            )
        assert request.cargo is not None
        c = request.cargo
        placed = engine.dry_run_cargo(
            CargoRequest(
                key=f"{tenant}/dry-run",
                minicluster=f"{tenant}/{c.mini_cluster}",
                replicas=c.replicas,
                gpus_per_replica=c.gpus_per_replica,
                topology=c.topology,
                created=now,
            )
        )
        fits = placed.outcome is Outcome.PLACED
        return DryRunResult(
            outcome=placed.outcome.value,
            fits=fits,
            message="fits" if fits else _sentence(placed.explanation),
            placements=[
                DryRunPlacement(
                    replica=p.replica, node=p.node, gpu_ids=p.gpu_ids, borrowed=p.borrowed
                )
                for p in placed.placements
            ],
        )


def _sentence(explanation: object) -> str:
    sentence = getattr(explanation, "sentence", None)
    return sentence() if callable(sentence) else "does not fit now"


def _next_name(minicluster: str, taken: set[str]) -> str:
    i = 0
    while f"{minicluster}-{i}" in taken:
        i += 1
    return f"{minicluster}-{i}"
