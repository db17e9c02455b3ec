"""The API's backend in Docker mode: SQL rows are the truth, the reconciler acts on them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select
from typing_extensions import override

from crane.api import kube_snapshot
from crane.api.backend import Backend, patched_spec
from crane.api.db import TenantRow, aware
from crane.api.errors import Conflict, FieldError, Invalid, NotFound, Unreadable
from crane.api.kube_snapshot import explanation_out
from crane.api.mclock import MiniClusterLock
from crane.api.schemas import (
    Cargo,
    CargoCreate,
    CargoExplain,
    CargoGrant,
    DryRunRequest,
    DryRunResult,
    Event,
    ExecRequest,
    ExecResult,
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
    TenantShareStatus,
)
from crane.api.settings import ApiSettings
from crane.api.shares import share_statuses
from crane.api.usage import Holding, Snapshot
from crane.docker import api_hosts, store
from crane.docker.api_views import cargo_out, minicluster_out
from crane.docker.containers import LogBound, container_template
from crane.docker.reconciler import ACTIVE, Reconciler, template_cargo
from crane.docker.store import CargoRow, MiniClusterRow
from crane.lifecycle import service
from crane.lifecycle.suspend import is_held
from crane.model import CargoPhase, CargoSpec, MiniClusterSpec, parse_islands
from crane.model.shares import TenantShares

FINISHED = service.GROW_WAIT_OVER - {CargoPhase.RUNNING.value}
GROW_PASS_WAIT_SECONDS = 120.0
"""How long a ``:grow`` waits for another server's reconcile pass on the same database (an
image pull in that pass included) before running its own, whose placements it grants."""


class DockerBackend(Backend):
    """Implements :class:`crane.api.backend.Backend` over the Docker mode tables."""

    name = "docker"

    def __init__(self, settings: ApiSettings, reconciler: Reconciler | None = None) -> None:
        from crane.api.db import make_engine, migrate

        self.settings = settings
        self.db = reconciler.db if reconciler else make_engine(settings.database_url)
        migrate(self.db)
        self.reconciler = reconciler or Reconciler(
            self.db,
            emit=self._emit,
            logs=LogBound(settings.docker_log_max_size, settings.docker_log_max_file),
            allowed_mounts=settings.docker_allowed_mounts,
        )
        if reconciler is not None:
            reconciler.emit = self._emit
            reconciler.allowed_mounts = tuple(settings.docker_allowed_mounts)
        self._events: asyncio.Queue[Event] = asyncio.Queue(maxsize=settings.event_buffer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = MiniClusterLock(self.db)
        self._exclusive = self._lock.held
        """Holds a MiniCluster for one read-decide-write (create, patch, delete, grow, shrink,
        cargo create), against every other server on the database too."""

    # lifecycle

    @override
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.reconciler.start()

    @override
    async def close(self) -> None:
        await asyncio.to_thread(self.reconciler.stop)
        self._lock.dispose()

    async def ready(self) -> str | None:
        """Not ready only while hosts exist and none answers: one host down is reported on
        that host (``GET /v1/hosts``) and the others keep serving."""
        down = dict(self.reconciler.host_errors)
        with Session(self.db) as s:
            hosts = {h.name for h in store.hosts(s)}
        if hosts and hosts <= set(down):
            return f"no Docker host answers: {', '.join(sorted(down))}"
        return None

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
            placed = s.exec(select(CargoRow).where(col(CargoRow.placed_at).is_not(None))).all()
            rows = store.readable(list(placed))
        holdings = [
            Holding(
                tenant=r.tenant,
                minicluster=r.minicluster,
                cargo=r.name,
                gpus=r.cargo_spec().gpus,
                placed_at=aware(r.placed_at),
                finished_at=aware(r.finished_at) if r.finished_at else None,
                state=r.phase if r.phase in FINISHED else None,
                exit_code=r.exit_code if r.phase in FINISHED else None,
            )
            for r in rows
            if r.placed_at is not None
            and (r.phase in ACTIVE or (r.phase in FINISHED and r.finished_at is not None))
        ]
        return Snapshot(holdings=holdings, time=datetime.now(UTC))

    async def _pass(self, wait: float = 0.0) -> None:
        """Run a reconcile pass; ``wait``: seconds to wait for another server's pass on this
        database to end first (0: skip it then, that pass decides for both)."""
        await asyncio.to_thread(self.reconciler.reconcile_once, wait)

    def _check_template(self, tenant: str, template: dict[str, Any]) -> None:
        """Refuse at create what Docker mode would not honour, naming the field."""
        try:
            container_template(template, tenant, tuple(self.settings.docker_allowed_mounts))
        except ValueError as err:
            raise Invalid(str(err)) from None

    # MiniClusters

    def _mc(
        self, s: Session, tenant: str, name: str, *, unreadable_ok: bool = False
    ) -> MiniClusterRow:
        """MiniCluster ``name``'s row; 404 when none (or being deleted), 409 when it cannot be
        read unless ``unreadable_ok`` (a delete)."""
        row = store.minicluster(s, tenant, name)
        if row is None or row.deleting:
            raise NotFound(service.minicluster_not_found(name, tenant))
        if unreadable_ok:
            return row
        return _readable(row, f"MiniCluster {name!r} in tenant {tenant!r}")

    @override
    async def create_minicluster(self, tenant: str, body: MiniClusterCreate) -> MiniCluster:
        if body.spec.template is not None:
            self._check_template(tenant, body.spec.template.template)
        never = await asyncio.to_thread(self._never_admitted, tenant, body.name, body.spec)
        if never is not None:
            raise Invalid(never, [FieldError(["body", "spec", "gpus", "min"], never)])
        async with self._exclusive(tenant, body.name):
            with Session(self.db) as s:
                existing = store.minicluster(s, tenant, body.name)
                if existing is not None and existing.deleting:
                    raise Conflict(service.minicluster_being_deleted(body.name, tenant))
                if existing is not None:
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

    @override
    async def list_miniclusters(self, tenant: str) -> list[MiniCluster]:
        with Session(self.db) as s:
            rows = store.readable(store.miniclusters(s, tenant))
            return [minicluster_out(s, r) for r in rows if not r.deleting]

    @override
    async def has_miniclusters(self, tenant: str) -> bool:
        with Session(self.db) as s:
            return bool(store.miniclusters(s, tenant))

    @override
    async def get_minicluster(self, tenant: str, name: str) -> MiniCluster:
        with Session(self.db) as s:
            return minicluster_out(s, self._mc(s, tenant, name))

    @override
    async def patch_minicluster(
        self, tenant: str, name: str, patch: MiniClusterPatch
    ) -> MiniCluster:
        async with self._exclusive(tenant, name):
            with Session(self.db) as s:
                row = self._mc(s, tenant, name)
                current = row.mc_spec()
                new = patched_spec(current, patch)
                over = service.patch_over_max(name, current, new, self._facts(s, row))
                if over is not None:
                    raise Invalid(over, [FieldError(["body", "replicas"], over)])
                if service.asks_more_of_admission(current, new):
                    never = await asyncio.to_thread(self._never_admitted, tenant, name, new)
                    if never is not None:
                        raise Invalid(never, [FieldError(["body", "gpus", "min"], never)])
                if new != current:  # as Kubernetes: the generation counts changes of the spec
                    row.spec = new.model_dump_json(by_alias=True)
                    row.generation += 1
                if patch.labels is not None:
                    row.labels = json.dumps(patch.labels)
                s.add(row)
                s.commit()
        await self._pass()
        return await self.get_minicluster(tenant, name)

    @override
    async def delete_minicluster(self, tenant: str, name: str) -> None:
        async with self._exclusive(tenant, name):
            with Session(self.db) as s:
                row = self._mc(s, tenant, name, unreadable_ok=True)
                row.deleting = True
                s.add(row)
                s.commit()
        self.reconciler.wake()

    @override
    async def explain(self, tenant: str, name: str) -> ExplainResult:
        await self._pass()
        return await asyncio.to_thread(self._explain, tenant, name)

    def _explain(self, tenant: str, name: str) -> ExplainResult:
        """The engine's explanation, off the event loop."""
        engine = self.reconciler.snapshot()
        with Session(self.db) as s:
            mc = self._mc(s, tenant, name)
            spec = mc.mc_spec()
            said = service.explain_minicluster(
                engine, mc.key, mc.admitted, mc.message, spec.gpus.max, is_held(spec)
            )
            cargos = []
            for c in store.cargos(s, tenant, name):
                cargo_exp = (
                    service.explain_cargo(engine, c.key, c.cargo_spec(), c.created_at.timestamp())
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
        return ExplainResult(
            name=name,
            admitted=mc.admitted,
            message=said.message,
            queue_position=mc.queue_position,
            explanation=explanation_out(said.explanation),
            cargos=cargos,
        )

    # grow and shrink

    def _facts(self, s: Session, mc: MiniClusterRow) -> list[service.CargoFacts]:
        templated = mc.mc_spec().template is not None
        return [
            service.CargoFacts(
                name=c.name,
                gpus=c.cargo_spec().gpus,
                active=not c.deleting and c.phase in {*ACTIVE, CargoPhase.PENDING.value},
                template=service.template_index(mc.name, c.name) if templated else None,
                created=c.created_at.timestamp(),
                nodes=c.cargo_spec().replicas,
                deleting=c.deleting,
            )
            for c in store.cargos(s, mc.tenant, mc.name)
        ]

    @override
    async def grow(self, tenant: str, name: str, request: GrowRequest) -> GrowResult:
        async with self._exclusive(tenant, name):
            grants, reasons = await self._grow(tenant, name, request)
        timed_out = False
        if request.wait:  # the decision is stored: others may grow, shrink or delete meanwhile
            timed_out = not await self._wait_running(
                tenant, name, [g.name for g in grants if g.name], request.timeout_seconds
            )
            grants = [await self._refresh_grant(tenant, name, g) for g in grants]
        return GrowResult.of(grants, reasons, timed_out)

    async def _grow(
        self, tenant: str, name: str, request: GrowRequest
    ) -> tuple[list[CargoGrant], list[str]]:
        """Decide and store a grow: each requested cargo's grant, and the reasons to tell."""
        shapes = (
            None if request.cargos is None else [(c.name, c.spec(name)) for c in request.cargos]
        )
        for _, shape in shapes or []:
            self._check_template(tenant, shape.template)
        with Session(self.db) as s:
            mc_spec = self._mc(s, tenant, name).mc_spec()
        never = await asyncio.to_thread(
            service.impossible_grow, self.reconciler.snapshot(), tenant, name, mc_spec, shapes
        )
        if never is not None:
            raise Invalid(never)
        with Session(self.db) as s:
            mc = self._mc(s, tenant, name)
            taken = {c.name for c in store.cargos(s, tenant)}
            try:
                plan = service.plan_grow(
                    name, mc.mc_spec(), self._facts(s, mc), request.count, shapes, taken=taken
                )
            except service.ServiceError as err:
                raise Invalid(str(err)) from None
            before = mc.mc_spec().replicas
            if plan.replicas is not None:
                self._set_replicas(s, mc, plan.replicas)
                self._store_template_grants(s, mc, range(before or 0, plan.replicas), taken)
            for cargo_name, spec in plan.creates:
                s.add(
                    CargoRow(
                        tenant=tenant,
                        name=cargo_name,
                        minicluster=name,
                        spec=spec.model_dump_json(by_alias=True),
                    )
                )
            _commit_cargos(s, tenant, [g.name for g in plan.grants if g.name])
        if plan.creates or plan.replicas is not None:
            # without allowPending the grants below are what this pass placed: a pass skipped
            # because another server's holds the database would deny cargos that pass was
            # about to place; with it, a pending cargo is granted whichever pass places it
            await self._pass(wait=0.0 if request.allow_pending else GROW_PASS_WAIT_SECONDS)
        return await asyncio.to_thread(self._grants, tenant, name, request, plan, before)

    @staticmethod
    def _store_template_grants(
        s: Session, mc: MiniClusterRow, indices: range, taken: set[str]
    ) -> None:
        """Store the template cargos a grow grants (``indices``) with the raised ``replicas``,
        so that the answer and a list right after agree although another server's pass may
        hold the database (the grow's own pass is then skipped). A name in ``taken``, the
        tenant's cargo names, is still held by a cargo being deleted (a shrink's): it is left
        to the pass, which makes the cargo once that one is gone."""
        for index in indices:
            cargo = template_cargo(mc, index)
            if cargo.name not in taken:
                s.add(cargo)

    def _grants(
        self,
        tenant: str,
        name: str,
        request: GrowRequest,
        plan: service.GrowPlan,
        before: int | None,
    ) -> tuple[list[CargoGrant], list[str]]:
        """Each requested cargo's grant after the grow's pass; without ``allowPending`` the
        cargos still Pending are taken back. Decided under the pass lock of every server on
        the database: another server's pass, run in that moment, would otherwise place (and
        start) a cargo this grow denies and deletes. A pass holding that lock past the wait
        (an image pull) is still safe: a cargo is deleted only while no pass placed it. A grow
        with ``allowPending``, or one granted nothing, takes nothing back and does not wait."""
        grants: list[CargoGrant] = []
        reasons = list(plan.reasons)
        takes_back = plan.grants and not request.allow_pending
        with (
            self.reconciler.lock,
            self.reconciler.pass_lock.held(GROW_PASS_WAIT_SECONDS) if takes_back else nullcontext(),
            Session(self.db) as s,
        ):
            taken_back = 0
            suffix = True  # template cargos leave from the highest index only
            for grant in reversed(plan.grants):
                if grant.name is None:
                    grants.append(_grant(grant, "Denied"))
                    continue
                row = store.cargo(s, tenant, grant.name)
                if row is not None and row.deleting:
                    row = None  # a shrink's cargo of that name, going: the pass makes the new one
                phase = row.phase if row is not None else CargoPhase.PENDING.value
                message = row.message if row is not None else ""
                template = grant.name not in dict(plan.creates)
                deny = phase == CargoPhase.PENDING.value and not request.allow_pending
                if deny and (suffix or not template) and row is not None and not _take_back(s, row):
                    # placed by another server's pass after all (its pass held the lock past
                    # the wait): granted with its placement
                    s.refresh(row)
                    phase, message, deny = row.phase, row.message, False
                pending = phase == CargoPhase.PENDING.value
                if deny and (suffix or not template):
                    taken_back += template
                    reason = message or "cannot be placed now"
                    reasons.append(f"{grant.name} cannot be placed now: {reason}")
                    grants.append(
                        CargoGrant(
                            name=None, gpus=grant.gpus, added=False, phase="Denied", reason=reason
                        )
                    )
                    continue
                suffix = suffix and not template
                if pending:
                    reasons.append(f"{grant.name} waits: {message or 'not placed yet'}")
                grants.append(
                    CargoGrant(
                        name=grant.name, gpus=grant.gpus, added=True, phase=phase, reason=message
                    )
                )
            if taken_back and plan.replicas is not None:
                mc = self._mc(s, tenant, name)
                self._set_replicas(s, mc, plan.replicas - taken_back, before)
            s.commit()
        grants.reverse()
        return grants, reasons

    @staticmethod
    def _set_replicas(
        s: Session, mc: MiniClusterRow, replicas: int, before: int | None = None
    ) -> None:
        """Write ``spec.replicas`` (None again when it was unset and nothing is kept)."""
        spec = mc.mc_spec().model_dump(by_alias=True, mode="json")
        spec["replicas"] = None if (replicas == 0 and before is None) else replicas
        mc.spec = type(mc.mc_spec()).model_validate(spec).model_dump_json(by_alias=True)
        mc.generation += 1
        s.add(mc)

    async def _refresh_grant(self, tenant: str, mc: str, grant: CargoGrant) -> CargoGrant:
        if grant.name is None:
            return grant
        with Session(self.db) as s:
            row = store.cargo(s, tenant, grant.name)
            mc_row = store.minicluster(s, tenant, mc)
            phase = _awaited(mc, mc_row, grant.name, row)
            message = row.message if row is not None else ""
        phase, reason = service.grant_after_wait(phase, message)
        update = {"phase": phase} if reason is None else {"phase": phase, "reason": reason}
        return grant.model_copy(update=update)

    async def _wait_running(self, tenant: str, mc: str, names: list[str], timeout: float) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            with Session(self.db) as s:
                rows = {n: store.cargo(s, tenant, n) for n in names}
                mc_row = store.minicluster(s, tenant, mc)
            # a cargo deleted meanwhile (gone, or going) will never run: stop waiting for it
            phases = {n: _awaited(mc, mc_row, n, r) for n, r in rows.items()}
            try:
                over = service.grow_wait_over(mc, mc_row is None or mc_row.deleting, phases)
            except service.MiniClusterDeleted as err:
                raise NotFound(str(err)) from None
            if over:
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            self.reconciler.wake()
            await asyncio.sleep(0.25)

    @override
    async def shrink(self, tenant: str, name: str, request: ShrinkRequest) -> ShrinkResult:
        async with self._exclusive(tenant, name):
            with Session(self.db) as s:
                mc = self._mc(s, tenant, name)
                try:
                    plan = service.plan_shrink(
                        name, mc.mc_spec(), self._facts(s, mc), request.count, request.cargos
                    )
                except service.UnknownCargos as err:
                    raise NotFound(str(err)) from None
                except service.ServiceError as err:
                    raise Invalid(str(err)) from None
                if plan.replicas is not None:
                    self._set_replicas(s, mc, plan.replicas, mc.mc_spec().replicas)
                for victim in plan.removed:
                    row = store.cargo(s, tenant, victim)
                    if row is None:
                        continue
                    row.deleting = True
                    if request.grace_period_seconds is not None:
                        row.grace_seconds = request.grace_period_seconds
                    s.add(row)
                s.commit()
            self.reconciler.wake()
        return ShrinkResult(removed=plan.removed, grace_period_seconds=request.grace_period_seconds)

    # cargos

    async def create_cargo(self, tenant: str, body: CargoCreate) -> Cargo:
        """Create a cargo; 422 when it would take its MiniCluster over ``gpus.max`` or can
        never be placed. Serialised with grow, so concurrent creates cannot overshoot max."""
        self._check_template(tenant, body.spec.template)
        async with self._exclusive(tenant, body.spec.mini_cluster):
            with Session(self.db) as s:
                mc = self._mc(s, tenant, body.spec.mini_cluster)
                why = service.create_refusal(mc.name, mc.mc_spec(), self._facts(s, mc), body.spec)
            if why is not None:
                raise Invalid(why, [FieldError(["body", "spec", "replicas"], why)])
            never = await asyncio.to_thread(self._never_placed, tenant, body.spec)
            if never is not None:
                raise Invalid(never)
            return await self._create_cargo(tenant, body)

    def _never_placed(self, tenant: str, spec: CargoSpec) -> str | None:
        return service.never_placed(self.reconciler.snapshot(), tenant, spec)

    def _never_admitted(self, tenant: str, name: str, spec: MiniClusterSpec) -> str | None:
        return service.never_admitted(self.reconciler.snapshot(), tenant, name, spec)

    async def _create_cargo(self, tenant: str, body: CargoCreate) -> Cargo:
        with Session(self.db) as s:
            mc = self._mc(s, tenant, body.spec.mini_cluster)
            taken = {c.name for c in store.cargos(s, tenant)}
            template = mc.mc_spec().template is not None
            name = body.name or service.next_names(body.spec.mini_cluster, taken, 1, template)[0]
            if name in taken:
                if any(c.name == name and c.deleting for c in store.cargos(s, tenant)):
                    raise Conflict(service.cargo_being_deleted(name, tenant))
                raise Conflict(service.cargo_name_taken(name, tenant))
            s.add(
                CargoRow(
                    tenant=tenant,
                    name=name,
                    minicluster=body.spec.mini_cluster,
                    spec=body.spec.model_dump_json(by_alias=True),
                )
            )
            _commit_cargos(s, tenant, [name])
        await self._pass()
        return await self.get_cargo(tenant, name)

    @override
    async def list_cargos(self, tenant: str, minicluster: str | None = None) -> list[Cargo]:
        with Session(self.db) as s:
            rows = store.readable(store.cargos(s, tenant, minicluster))
            return [cargo_out(r) for r in rows if not r.deleting]

    def _cargo(
        self, s: Session, tenant: str, name: str, *, unreadable_ok: bool = False
    ) -> CargoRow:
        """Cargo ``name``'s row; 404 when none (or being deleted), 409 when it cannot be read
        unless ``unreadable_ok`` (a delete)."""
        row = store.cargo(s, tenant, name)
        if row is None or row.deleting:
            raise NotFound(service.cargo_not_found(name, tenant))
        if unreadable_ok:
            return row
        return _readable(row, f"cargo {name!r} in tenant {tenant!r}")

    @override
    async def get_cargo(self, tenant: str, name: str) -> Cargo:
        with Session(self.db) as s:
            return cargo_out(self._cargo(s, tenant, name))

    @override
    async def delete_cargo(
        self, tenant: str, name: str, grace_period_seconds: int | None = None
    ) -> None:
        with Session(self.db) as s:
            row = self._cargo(s, tenant, name, unreadable_ok=True)
            row.deleting = True
            if grace_period_seconds is not None:
                row.grace_seconds = grace_period_seconds
            s.add(row)
            s.commit()
        self.reconciler.wake()

    @override
    async def cargo_logs(
        self,
        tenant: str,
        name: str,
        replica: int = 0,
        follow: bool = False,
        tail: int | None = None,
        since_seconds: int | None = None,
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
        async for line in replica_log_lines(
            host.host(), tenant, name, replica, follow, tail, since_seconds
        ):
            yield line

    @override
    async def exec_replica(self, tenant: str, name: str, request: ExecRequest) -> ExecResult:
        from crane.docker.exec import exec_in_replica

        with Session(self.db) as s:
            row = self._cargo(s, tenant, name)
            placement = next((p for p in row.placements() if p.replica == request.replica), None)
            if placement is None:
                raise NotFound(
                    f"cargo {name!r} has no placed replica {request.replica}: "
                    f"it has {row.cargo_spec().replicas} replicas, phase {row.phase}"
                )
            host = s.get(store.HostRow, placement.node)
        if host is None:
            raise NotFound(f"host {placement.node!r} of cargo {name!r} was removed")
        return await exec_in_replica(host.host(), tenant, name, request)

    # hosts

    @override
    async def add_host(self, body: HostCreate) -> Host:
        spec = api_hosts.spec_of(body)
        twin = await asyncio.to_thread(self.reconciler.twin_of, spec)
        if twin is not None:
            raise Conflict(
                f"host {spec.name!r} reaches the same Docker daemon as host {twin!r}: one "
                "machine's GPUs would be given twice, so it is not added; one daemon is one host"
            )
        await asyncio.to_thread(api_hosts.add, self.db, spec)
        await self._pass()
        return await self.get_host(body.name)

    @override
    async def list_hosts(self) -> list[Host]:
        return await asyncio.to_thread(api_hosts.hosts_out, self.db, self.reconciler.host_errors)

    @override
    async def get_host(self, name: str) -> Host:
        with Session(self.db) as s:
            return api_hosts.host_out(s, api_hosts.row(s, name), self.reconciler.host_errors)

    @override
    async def remove_host(self, name: str, preempt: bool) -> Host:
        await asyncio.to_thread(api_hosts.drain, self.db, name, preempt)
        host = await self.get_host(name)
        self.reconciler.wake()
        return host

    # tenants

    @override
    async def tenant_shares(self) -> dict[str, list[TenantShareStatus]]:
        await self._pass()
        with self.reconciler.lock:
            return share_statuses(self.reconciler.engine)

    @override
    async def set_tenant_shares(self, tenant: str, shares: TenantShares) -> None:
        def write() -> None:
            with Session(self.db) as s:
                row = s.get(TenantRow, tenant)
                if row is None:
                    raise NotFound(f"tenant {tenant!r} not found")
                row.shares = json.dumps(
                    [share.model_dump(mode="json", by_alias=True) for share in shares.shares]
                )
                s.add(row)
                s.commit()

        await asyncio.to_thread(write)
        await self._pass()

    # cluster-wide

    @override
    async def nodes(self) -> list[NodeOut]:
        await self._pass()
        return await asyncio.to_thread(self._nodes)

    def _nodes(self) -> list[NodeOut]:
        """The GPU map, off the event loop."""
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
                        islands=[list(i) for i in parse_islands(spec.islands, spec.gpu_count)],
                        gpus=gpus,
                    )
                )
            return out

    @override
    async def dry_run(self, tenant: str, request: DryRunRequest) -> DryRunResult:
        return await asyncio.to_thread(self._dry_run, tenant, request)

    def _dry_run(self, tenant: str, request: DryRunRequest) -> DryRunResult:
        engine = self.reconciler.snapshot()
        if request.mini_cluster is not None:
            return kube_snapshot.dry_run_minicluster(engine, tenant, request.mini_cluster)
        assert request.cargo is not None
        with Session(self.db) as s:
            self._mc(s, tenant, request.cargo.mini_cluster)
        return kube_snapshot.dry_run_cargo(engine, tenant, request.cargo)


def _readable(row: store.Row, what: str) -> store.Row:
    """``row``, or a 409 saying it cannot be read (edited in the database by hand): the
    reconciler leaves it as it is, and so does the API, until an admin fixes or removes it, or
    it is deleted (DELETE takes such a row)."""
    why = store.unreadable(row)
    if why is not None:
        raise Unreadable(
            f"{what} cannot be read from the database ({why}); it is left as it is: "
            "an admin must fix or remove its row, or delete it"
        )
    return row


def _awaited(mc: str, mc_row: MiniClusterRow | None, name: str, row: CargoRow | None) -> str | None:
    """Cargo ``name``'s phase for a grow's wait (:func:`service.awaited_phase`): None once
    deleted or being deleted; Pending while a template cargo the next pass makes is not there
    (or a shrink's old cargo of that name is still being deleted)."""
    phase = None if row is None or row.deleting else row.phase
    if mc_row is None:
        return phase
    return service.awaited_phase(mc, mc_row.mc_spec(), name, phase, phase is not None)


def _commit_cargos(s: Session, tenant: str, names: list[str]) -> None:
    """Commit new cargos ``names``; 409 when another server took one of the names meanwhile
    (for a cargo of another MiniCluster: cargo names are the tenant's)."""
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        raise Conflict(
            f"cargo {' or '.join(repr(n) for n in names)} was just created in tenant "
            f"{tenant!r} by another request: pick another name, or grow again"
        ) from None


def _take_back(s: Session, row: CargoRow) -> bool:
    """Delete a cargo a grow denies, only while no pass has placed it (a placement is
    committed before any container is made); whether it was deleted."""
    gone = s.connection().execute(
        delete(CargoRow).where(
            col(CargoRow.uid) == row.uid,
            col(CargoRow.phase) == CargoPhase.PENDING.value,
            col(CargoRow.placement) == "[]",
        )
    )
    if gone.rowcount == 1:
        s.expunge(row)
        return True
    return False


def _grant(grant: service.Grant, phase: str) -> CargoGrant:
    return CargoGrant(
        name=grant.name, gpus=grant.gpus, added=grant.added, phase=phase, reason=grant.reason
    )
