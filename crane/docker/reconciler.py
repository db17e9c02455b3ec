"""One loop that schedules on the placement engine and converges Docker hosts to SQL.

Each pass rebuilds the engine from SQL (a handful of hosts makes that cheap and leaves no
drift), restores what is reserved and placed, finishes cargos whose containers ended, applies
deletions and drains, admits MiniClusters, places pending cargos (committing the placement
before any container exists) and starts or adopts their containers. Docker events wake the loop.

Stops, which wait up to a grace period, never run in a pass: it hands them to a
:class:`~crane.docker.retire.Retirer` and finishes (releasing GPUs, deleting rows) in a later
pass, once the containers are gone, so API calls that run a pass never wait for a grace period.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

import docker
from docker.errors import APIError, DockerException, NotFound
from docker.models.containers import Container
from sqlalchemy import Engine as Database
from sqlmodel import Session

from crane.api.schemas import Event, EventType
from crane.docker import host_health, store
from crane.docker import labels as L
from crane.docker.conditions import (
    IMAGE_PULL_FAILED,
    PULLING,
    RECONCILE_ERROR,
    mark,
    record,
    store_conditions,
    unmark,
)
from crane.docker.containers import (
    ImagePullFailed,
    LogBound,
    NameTaken,
    RendezvousSpec,
    ReplicaSpec,
    busy_gpu_ids,
    container_template,
    free_port,
    has_image,
    impostors,
    is_own,
    managed_containers,
    managed_networks,
    off_network,
    remove_container,
    rendezvous_containers,
    run_rendezvous,
    run_replica,
    store_listening,
    store_trouble,
)
from crane.docker.hosts import HostSpec, connect, host_names, inventory, network_hostname
from crane.docker.pass_lock import PassLock
from crane.docker.retire import Retirer
from crane.docker.scheduling import (
    HOLDING,
    LIVE_STATES,
    LiveReplica,
    cargo_request,
    live_replicas,
    restore,
)
from crane.docker.store import CargoRow, HostRow, MiniClusterRow
from crane.lifecycle import cargo_end, cargo_status, preemption, service
from crane.lifecycle.admission_status import Before, admission_status
from crane.lifecycle.cargo_end import CargoEnd
from crane.lifecycle.cargo_status import Verdict
from crane.lifecycle.gang import Failure, ReplicaSeen, ReplicaState, judge
from crane.lifecycle.pod_security import creation_refusal
from crane.lifecycle.restart import (
    first_start,
    is_restarting,
)
from crane.lifecycle.suspend import held_message, is_held, takes_part
from crane.model import CargoPhase, NodeInventory, RestartPolicy, TopologyLevels
from crane.model.podsecurity import DEFAULT_LEVEL, PodSecurityLevel
from crane.model.refusal import INVALID_SPEC, refusal_reason
from crane.model.world import notice_text, rendezvous_name, world_env
from crane.placement import Engine
from crane.placement.types import CargoDecision, Outcome

STORE_WAIT = "waiting for the rendezvous store"
"""How a placed cargo's message starts while its replicas wait for their world's store."""
STORE_NEEDS = "the store runs the template's image, which needs python3 with torch"
"""What the message adds once it says what is wrong with the store."""


@dataclass(frozen=True)
class StoreWait:
    """A MiniCluster's rendezvous store does not serve yet: its cargos' missing replicas
    wait; ``why``, when known, says what is wrong with it (else it may be starting)."""

    why: str


log = logging.getLogger(__name__)

ACTIVE = store.ACTIVE
STOPPING = "; stopping the other replicas"

GONE = "its container is gone (removed, or renamed by hand: Crane stops a renamed one)"
"""Why a running replica failed whose container Crane no longer finds under its name."""
RESTARTED = (
    "it exited and Docker started it again (a restart policy set by hand; Crane's is `no`, and "
    "is set back)"
)
"""Why a replica failed whose container Docker restarted (its exit code is lost once it runs)."""
UNREADABLE = f"{INVALID_SPEC}: its stored row cannot be read"
"""How the message of a row that does not parse (edited in the database by hand) starts."""
OFF_NETWORK = "its container was cut off (disconnected by hand) from its MiniCluster's network"

EmitFn = Callable[[Event], None]
TWIN_CHECK_SECONDS = 5
"""How long adding a host waits for its daemon to say who it is (a host that does not answer
is added; the passes check it once it does)."""


def _now() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    """Owns the engine and the Docker clients; thread-safe through one lock."""

    def __init__(
        self,
        db: Database,
        levels: TopologyLevels | None = None,
        interval: float = 2.0,
        emit: EmitFn | None = None,
        logs: LogBound | None = None,
        allowed_mounts: Sequence[str] = (),
    ) -> None:
        self.db = db
        self.allowed_mounts = tuple(allowed_mounts)
        """The admin's allowed bind mounts (CRANE_DOCKER_ALLOWED_MOUNTS), for the Pod Security
        check of each container made."""
        self.pod_levels: dict[str, PodSecurityLevel] = {}
        """Each tenant's Pod Security level, as its row held it at the start of the pass."""
        self.logs = logs or LogBound()
        """How much log each container Crane creates keeps (rotated json-file logs)."""
        self.levels = levels or TopologyLevels()
        self.interval = interval
        self.emit: EmitFn = emit or (lambda _event: None)
        self.engine = Engine(self.levels)
        self.pass_lock = PassLock(db)
        self._live: dict[str, list[LiveReplica]] = {}
        self._errors: dict[str, str] = {}
        """What failed in the last pass (an object, as logs name it) -> why, logged once."""
        self._failing: dict[str, str] = {}
        """What failed in this pass -> its row's uid (the name itself for no row)."""
        self._skip: frozenset[str] = frozenset()
        """The uids of the rows this pass cannot read, or whose MiniCluster it cannot read."""
        self.host_errors: dict[str, str] = {}
        self._store_errors: dict[str, str] = {}
        """MiniCluster uid -> why its rendezvous store could not be made (the last try)."""
        self.lock = threading.RLock()
        self._clients: dict[str, tuple[str, docker.DockerClient, str]] = {}
        """Host name -> (its stored spec, its client, its daemon's ID once read)."""
        self._watchers: dict[str, tuple[threading.Thread, docker.DockerClient]] = {}
        self._wake = threading.Event()
        self.retirer = Retirer(self.wake)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # lifecycle

    def start(self) -> None:
        """Start the reconcile loop in a daemon thread; :meth:`stop` ends it."""
        self._thread = threading.Thread(target=self._run, name="crane-reconciler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop and the event watchers; containers keep running."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for _thread, client in self._watchers.values():
            client.close()
        for _spec, client, _id in self._clients.values():
            client.close()

    def wake(self) -> None:
        """Run the next reconcile pass now instead of after the interval."""
        self._wake.set()

    def _run(self) -> None:
        said = ""
        while not self._stop.is_set():
            try:
                self.reconcile_once()
                said = ""
            except Exception as err:  # the database or a bug: logged once per distinct error
                why = f"{type(err).__name__}: {err}"
                if why != said:
                    log.exception("reconcile pass failed; retrying")
                said = why
            self._wake.wait(self.interval)
            self._wake.clear()

    # one pass

    def reconcile_once(self, wait: float = 0.0) -> None:
        """One pass: build the engine from rows and live containers, then act and commit.

        Skipped while another server on this database runs one (:mod:`crane.docker.pass_lock`):
        two passes deciding at once would give the same GPUs twice. ``wait``: seconds to wait
        for that one to end first, for a caller that answers with this pass's outcome."""
        with self.lock, self.pass_lock.held(wait) as mine:
            if not mine:
                log.debug("another server on this database is running a pass; skipping")
                return
            self._pass()

    def _pass(self) -> None:
        with Session(self.db) as s:
            hosts = store.hosts(s)
            clients = self._connect(hosts)
            self.pod_levels = store.pod_security_levels(s)
            self._failing = {}
            mcs, cargos = self._readable(s)
            released = self._hold(s, mcs, cargos)
            self.engine = self._build(
                hosts, [m for m in mcs if m.key not in released], cargos, clients
            )
            self.engine.set_shares(store.share_table(s))
            by_mc = {(m.tenant, m.name): m for m in mcs}
            preempting = {h.name for h in hosts if h.draining and h.preempt}
            for row in cargos:
                if not row.deleting and (row.tenant, row.minicluster) not in by_mc:
                    # made in the moment its MiniCluster was deleted: it goes as theirs went
                    row.deleting = True
                    s.add(row)
                if not any(p.node in preempting for p in row.placements()):
                    step = partial(self._cargo_pass, s, row, by_mc, clients)
                    self._isolated(s, f"cargo {row.key}", step, row)
            self._delete_miniclusters(s, mcs, clients)
            self._drain(s, hosts, clients)
            self._admit(s, mcs, clients)
            where = {h.name: h.host() for h in hosts}
            step = partial(self._rendezvous, mcs, cargos, where, clients)
            self._isolated(s, "the rendezvous stores", step)
            self._expand_templates(s, mcs)
            for row in store.cargos(s):
                if (
                    row.uid not in self._skip
                    and row.phase == CargoPhase.PENDING.value
                    and not row.deleting
                    and not row.placements()
                ):
                    step = partial(self._place, s, row, by_mc, clients)
                    self._isolated(s, f"cargo {row.key}", step, row)
            self._remove_orphans(s, clients)
            self._unmark(s)
            store_conditions(s, self._skip)
            s.commit()
            self._errors = {k: v for k, v in self._errors.items() if k in self._failing}

    # isolation: one object's fault is that object's

    def _readable(self, s: Session) -> tuple[list[MiniClusterRow], list[CargoRow]]:
        """The MiniClusters and cargos the pass can read. A row that does not parse (edited
        in the database by hand) is left as it is, its containers too (their GPUs stay held),
        with the cargos of such a MiniCluster; it says why (``Reconciled`` False,
        ``InvalidSpec``) and the pass goes on with the others. Once deleted through the API,
        such a row is removed (:meth:`_forget_unreadable`)."""
        skip: set[str] = set()
        mcs, cargos = [], []
        unread: set[tuple[str, str]] = set()
        for mc in store.miniclusters(s):
            why = store.unreadable(mc)
            if why is None:
                mcs.append(mc)
                continue
            skip.add(mc.uid)
            if mc.deleting:
                self._forget_unreadable(s, mc)
                continue
            unread.add((mc.tenant, mc.name))
            self._unreadable(s, f"MiniCluster {mc.key}", mc, why)
        for row in store.cargos(s):
            why = store.unreadable(row)
            if why is None and (row.tenant, row.minicluster) not in unread:
                cargos.append(row)
                continue
            skip.add(row.uid)
            if why is not None and row.deleting:
                self._forget_unreadable(s, row)
            elif why is not None:
                self._unreadable(s, f"cargo {row.key}", row, why)
        self._skip = frozenset(skip)
        s.commit()
        return mcs, cargos

    def _forget_unreadable(self, s: Session, row: CargoRow | MiniClusterRow) -> None:
        """Remove the row of a deleted object that cannot be read. Its containers, rendezvous
        store and network then belong to no row: :meth:`_remove_orphans` removes them this
        pass, at once (no grace period: the placement that names them cannot be read). A
        MiniCluster's cargos are deleted first (a readable one as any, with its grace period);
        its row goes the pass after the last of them."""
        if isinstance(row, MiniClusterRow):
            left = store.cargos(s, row.tenant, row.name)
            for child in left:
                child.deleting = True
                s.add(child)
            s.commit()
            if left:
                return
            what: tuple[str, str | None, str] = (row.name, None, "MiniCluster")
        else:
            what = (row.minicluster, row.name, "cargo")
        s.delete(row)
        s.commit()
        log.info("%s %s: deleted, and its unreadable row removed", what[2], row.key)
        self._event(EventType.DELETED, row.tenant, what[0], what[1], 0, f"{what[2]} deleted")

    def _unreadable(self, s: Session, what: str, row: CargoRow | MiniClusterRow, why: str) -> None:
        """Say (once: message, condition, one log line) that ``row`` cannot be read."""
        self._failing[what] = row.uid
        message = f"{UNREADABLE} ({why}); left as it is"
        if self._errors.get(what) != message:
            log.warning("%s: %s; the others go on", what, message)
        self._errors[what] = message
        if row.message != message:
            row.message = message
            mark(row, INVALID_SPEC, message)
            s.add(row)

    def _isolated(
        self,
        s: Session,
        what: str,
        step: Callable[[], object],
        row: CargoRow | MiniClusterRow | None = None,
    ) -> None:
        """``step()``, one object's step of the pass (``what``: which). Whatever it raises (a
        Docker daemon's odd answer, a row the database refuses) is that object's: what the
        step wrote and had not committed yet is rolled back, the error is logged once (one
        line, again when it changes), ``row`` says it (``Reconciled`` False,
        ``ReconcileError``), and the step is tried again next pass while the pass goes on with
        the others."""
        s.commit()  # what earlier steps wrote stays
        try:
            step()
        except Exception as err:
            s.rollback()
            why = " ".join(f"{type(err).__name__}: {err}".split())[:300]
            if self._errors.get(what) != why:
                log.warning("%s: %s; tried again next pass, the others go on", what, why)
                log.debug("%s failed", what, exc_info=True)
            self._errors[what] = why
            self._failing[what] = row.uid if row is not None else what
            if row is not None:
                self._mark(s, row, why)

    @staticmethod
    def _mark(s: Session, row: CargoRow | MiniClusterRow, why: str) -> None:
        try:
            mark(row, RECONCILE_ERROR, why)
            s.add(row)
            s.commit()
        except Exception:  # the row is gone, or the database refuses it too: the log says
            s.rollback()
            log.debug("cannot mark %s", row, exc_info=True)

    def _unmark(self, s: Session) -> None:
        """Rows a failed pass marked (``Reconciled`` False) that this pass handled: say so."""
        failed = self._skip | set(self._failing.values())
        rows: list[CargoRow | MiniClusterRow] = [*store.miniclusters(s), *store.cargos(s)]
        for row in rows:
            if row.uid not in failed and unmark(row):
                if row.message.startswith(UNREADABLE):
                    row.message = ""
                s.add(row)

    def _build(
        self,
        hosts: list[HostRow],
        mcs: list[MiniClusterRow],
        cargos: list[CargoRow],
        clients: dict[str, docker.DockerClient],
    ) -> Engine:
        engine = Engine(self.levels)
        for row in hosts:
            host_health.add_host(
                engine, row.name, partial(self._node, row, clients), row.host, self.host_errors
            )
        live = live_replicas({name: self._managed(client) for name, client in clients.items()})
        self._live = live
        conflicts = restore(engine, mcs, cargos, live)
        by_key = {c.key: c for c in cargos}
        for conflict in conflicts:
            lost = by_key.get(conflict.loser)
            if lost is None or lost.phase not in ACTIVE:
                continue
            if conflict.kind == "cargo" or (
                # GPUs past the count its host declares now (`crane up --gpus 4` after 8):
                # stopped and placed again; a host the engine lacks keeps its cargos as they are
                conflict.kind == "node"
                and live.get(lost.uid)
                and all(engine.has_gpu(node, 0) for node, _ in conflict.gpus)
            ):
                self._lost_gpus(lost, conflict.reason, bool(live.get(lost.uid)), conflict.winner)
        return engine

    @staticmethod
    def _managed(client: docker.DockerClient) -> list[Container]:
        try:
            return managed_containers(client)
        except (DockerException, OSError) as err:
            log.warning("cannot list containers: %s", err)
            return []

    def _lost_gpus(
        self, row: CargoRow, reason: str, has_containers: bool, winner: str | None = None
    ) -> None:
        """A cargo whose placement clashed with one that keeps the GPUs: with containers it is
        stopped like a preempted one, without it waits to be placed again."""
        log.warning("cargo %s lost its GPUs: %s (kept by %s)", row.key, reason, winner)
        if has_containers:
            row.phase = CargoPhase.PREEMPTED.value
            row.message = f"{reason}; stopping it to place it again"
        else:
            row.phase, row.placement = CargoPhase.PENDING.value, "[]"
            row.message = f"{reason}; waiting to be placed again"

    def _node(self, row: HostRow, clients: dict[str, docker.DockerClient]) -> NodeInventory:
        spec = row.host()
        client = clients.get(row.name)
        busy = busy_gpu_ids(client) if client and not spec.simulated else frozenset()
        return inventory(
            spec, self.levels, ready=client is not None, schedulable=not row.draining, busy=busy
        )

    def twin_of(self, spec: HostSpec) -> str | None:
        """The known host whose Docker daemon ``spec`` reaches too (None: none, or the daemon
        does not answer now; the passes check again once it does)."""
        try:
            with closing(connect(spec, timeout=TWIN_CHECK_SECONDS)) as client:
                wanted = daemon_id(client)
        except (DockerException, OSError):
            return None
        with Session(self.db) as s:
            stored = {h.name for h in store.hosts(s)}
        known = list(self._clients.items())  # a copy: a pass (holding the lock) may pull for long
        for name, (_spec, _client, daemon) in known:
            if daemon == wanted and name != spec.name and name in stored:
                return name
        return None

    def snapshot(self) -> Engine:
        """A copy of the engine after the last pass, for what-if questions."""
        with self.lock:
            return self.engine.snapshot()

    # hosts

    def _connect(self, hosts: list[HostRow]) -> dict[str, docker.DockerClient]:
        """A client per host that answers. A host whose daemon is one an older host already
        is (two names, one machine) is not ready: its GPUs would be handed out twice."""
        ready: dict[str, docker.DockerClient] = {}
        hosts_of: dict[str, str] = {}
        for row in hosts:
            known = self._clients.get(row.name)
            if known is None or known[0] != row.spec:
                if known is not None:
                    known[1].close()
                    del self._clients[row.name]
                client = host_health.guarded(
                    self.host_errors, row.name, "connecting", partial(_connect_row, row)
                )
                if client is None:
                    continue
                known = (row.spec, client, "")
                self._clients[row.name] = known
            try:
                known[1].ping()
                if not known[2]:
                    known = (known[0], known[1], daemon_id(known[1]))
                    self._clients[row.name] = known
            except (DockerException, OSError) as err:
                self.host_errors[row.name] = str(err)
                continue
            twin = hosts_of.setdefault(known[2], row.name)
            if twin != row.name:
                self.host_errors[row.name] = same_daemon(row.name, twin)
                continue
            self.host_errors.pop(row.name, None)
            ready[row.name] = known[1]
            host_health.guarded(
                self.host_errors, row.name, "watching", partial(self._watch_row, row)
            )
        for name in set(self._clients) - {h.name for h in hosts}:
            self._clients.pop(name)[1].close()
        return ready

    def _watch_row(self, row: HostRow) -> None:
        self._watch(row.name, row.host())

    def _watch(self, name: str, spec: HostSpec) -> None:
        """Wake the loop on every event of a Crane container of this host."""
        running = self._watchers.get(name)
        if running is not None and running[0].is_alive():
            return
        client = connect(spec, timeout=3600)

        def follow() -> None:
            try:
                filters = {"type": "container", "label": f"{L.MANAGED}=true"}
                for _event in client.events(decode=True, filters=filters):
                    self._wake.set()
            except (DockerException, OSError, ValueError):
                return

        thread = threading.Thread(target=follow, name=f"crane-events-{name}", daemon=True)
        self._watchers[name] = (thread, client)
        thread.start()

    # MiniClusters

    def _hold(self, s: Session, mcs: list[MiniClusterRow], cargos: list[CargoRow]) -> set[str]:
        """Held MiniClusters (:mod:`crane.lifecycle.suspend`): delete their cargos; returns the
        keys of those whose cargos hold no GPU any more, which leave the engine unreserved."""
        released: set[str] = set()
        for mc in mcs:
            if mc.deleting or not is_held(mc.mc_spec()):
                if mc.message == held_message(mc.name, 0):
                    mc.message = ""
                    s.add(mc)
                continue
            mine = [c for c in cargos if (c.tenant, c.minicluster) == (mc.tenant, mc.name)]
            for row in mine:
                if not row.deleting:
                    row.deleting = True
                    s.add(row)
            if not takes_part(
                mc.mc_spec(), any(c.phase in HOLDING and c.placements() for c in mine)
            ):
                released.add(mc.key)
                mc.admitted, mc.reservation, mc.queue_position = False, "{}", None
                mc.waits_behind, mc.estimated_start = "[]", None
            mc.message = held_message(mc.name, len(mine))
            s.add(mc)
        s.commit()
        return released

    def _admit(
        self, s: Session, mcs: list[MiniClusterRow], clients: dict[str, docker.DockerClient]
    ) -> None:
        """Each live, unheld MiniCluster's row as the admission pass leaves it (its status is
        decided once for both backends: :mod:`crane.lifecycle.admission_status`), then the
        preemptions it asks for, each with its notice."""
        by_key = {m.key: m for m in mcs if not m.deleting and not is_held(m.mc_spec())}
        by_decision = {d.key: d for d in self.engine.admit()}
        victims: list[tuple[str, str]] = []
        for key, mc in by_key.items():
            decision = by_decision.get(key)
            if decision is None and not self.engine.is_admitted(key):
                continue  # the pass did not look at it: its row stays as it was
            spec = mc.mc_spec()
            now = admission_status(
                self.engine, key, spec, decision, Before(mc.admitted, mc.message)
            )
            mc.admitted, mc.reservation = now.admitted, json.dumps(now.reservation)
            mc.queue_position, mc.message = now.queue_position, now.message
            mc.waits_behind = json.dumps(now.waits_behind)
            mc.estimated_start = now.estimated_start
            for type_, verdict in now.conditions:
                record(mc, type_, verdict)
            if now.admitted and now.event is not None:
                # a waiting one's reasons are its status (the API's events carry no queue moves)
                self._event(
                    EventType.ADMITTED, mc.tenant, mc.name, None, spec.gpus.min, now.event[1]
                )
            victims.extend(now.victims)
            s.add(mc)
        s.commit()
        for victim, notice in victims:
            step = partial(self._preempt, s, victim, notice, clients)
            self._isolated(s, f"cargo {victim}", step)

    def _preempt(
        self, s: Session, key: str, why: str, clients: dict[str, docker.DockerClient]
    ) -> None:
        """Post the notice (message, event), then stop the containers with their grace period;
        the GPUs are released once the containers are gone (:meth:`_preempted`)."""
        tenant, _, name = key.partition("/")
        row = store.cargo(s, tenant, name)
        if row is None or row.phase not in ACTIVE:
            return
        row.phase = CargoPhase.PREEMPTED.value
        row.message = preemption.notice(why, "containers")
        s.add(row)
        s.commit()
        for kind in preemption.NOTICE_EVENTS:
            self._event(
                EventType(kind),
                row.tenant,
                row.minicluster,
                row.name,
                row.cargo_spec().gpus,
                row.message,
            )
        self._preempted(s, row, clients)

    def _restarting(
        self, s: Session, row: CargoRow, clients: dict[str, docker.DockerClient]
    ) -> None:
        """A gang restarting after a failure (Pending, its placement kept, as in Kubernetes
        mode): once its containers are gone, release its GPUs and clear its placement; the pass
        then places it again (on the same GPUs when they are still free)."""
        if any(p.node not in clients for p in row.placements()) or self._retire_all(row, clients):
            return
        self.engine.release_cargo(row.key)
        row.placement = "[]"
        s.add(row)
        s.commit()

    def _preempted(
        self, s: Session, row: CargoRow, clients: dict[str, docker.DockerClient]
    ) -> None:
        """A preempted cargo: once its containers are gone, release its GPUs; it waits to be
        placed again (behind the MiniCluster it made room for)."""
        notice = ("Preempted", row.message)
        if any(p.node not in clients for p in row.placements()) or self._retire_all(
            row, clients, notice
        ):
            return
        self.engine.release_cargo(row.key)
        row.phase, row.placement = CargoPhase.PENDING.value, "[]"
        row.message = "preempted; waiting to be placed again"
        s.add(row)
        s.commit()

    def _rendezvous(
        self,
        mcs: list[MiniClusterRow],
        cargos: list[CargoRow],
        hosts: dict[str, HostSpec],
        clients: dict[str, docker.DockerClient],
    ) -> None:
        """Keep one rendezvous store per admitted MiniCluster that asks (spec.rendezvous), on
        the first host of its reservation (with host networking and a port of its own there
        when the host declares an address); one that exists anywhere (any state) is kept:
        Docker restarts it, and it goes with the MiniCluster (:meth:`_delete_miniclusters`).
        While a host does not answer, a MiniCluster whose world may be running (a cargo
        Running, or placed on that host) gets no second store: its store may be there, and
        its running replicas keep the endpoint they started with; the others are not held up."""
        wanted = {
            m.uid: m
            for m in mcs
            if m.admitted
            and not m.deleting
            and (spec := m.mc_spec()).rendezvous is not None
            and spec.rendezvous.enabled
            and spec.template is not None
        }
        self._store_errors = {uid: why for uid, why in self._store_errors.items() if uid in wanted}
        if not wanted or not clients:
            return
        for client in clients.values():
            for c in rendezvous_containers(client):
                wanted.pop(c.labels.get(L.RENDEZVOUS, ""), None)
        down = {h for h in hosts if h not in clients}
        if down:
            may_run = {
                (row.tenant, row.minicluster)
                for row in cargos
                if row.phase == CargoPhase.RUNNING.value
                or any(p.node in down for p in row.placements())
            }
            wanted = {uid: m for uid, m in wanted.items() if (m.tenant, m.name) not in may_run}
        for mc in wanted.values():
            spec = mc.mc_spec()
            node = _store_host(mc, clients)
            address = hosts[node].address if node in hosts else None
            try:
                template = container_template(
                    spec.template.template if spec.template else {}, mc.tenant
                )
                port = spec.rendezvous.port if spec.rendezvous else 0
                run_rendezvous(
                    clients[node],
                    RendezvousSpec(
                        mc.tenant,
                        mc.name,
                        mc.uid,
                        template.image,
                        free_port(clients[node], port) if address else port,
                        host=network_hostname(hosts[node]) if address else node,
                        address=address,
                        volumes=tuple(v for v in template.volumes if v.endswith(":ro")),
                        logs=self.logs,
                    ),
                )
            except (ValueError, ImagePullFailed, DockerException) as err:
                log.warning("rendezvous store of %s on %s: %s", mc.key, node, err)
                self._store_errors[mc.uid] = f"it could not be made on {node}: {err}"
            else:
                self._store_errors.pop(mc.uid, None)

    def _world(
        self,
        mc: MiniClusterRow,
        hosts: dict[str, HostSpec],
        clients: dict[str, docker.DockerClient],
    ) -> dict[str, str] | StoreWait:
        """The MiniCluster's rendezvous env: the store's alias on the MiniCluster's network, or
        its host's address and the port Crane gave it there (host networking). A
        :class:`StoreWait` until the store has said it listens on a host that answers: an
        endpoint guessed before (a port another MiniCluster's store holds, or a host it is not
        on) would put the replicas in no world or another's, and a world they would never
        leave; and replicas made for a store that cannot start (no ``python3`` or no torch in
        the template's image) ran in a world without a store, while only the server's log
        said why."""
        spec = mc.mc_spec()
        if spec.rendezvous is None or not spec.rendezvous.enabled or spec.template is None:
            return {}
        node, port = None, None
        found_store: Container | None = None
        for name, client in clients.items():
            found = [
                c
                for c in client.containers.list(
                    all=True, filters={"label": f"{L.RENDEZVOUS}={mc.uid}"}, ignore_removed=True
                )
                if is_own(c)
            ]
            if found:
                found_store = found[0]
                node, label = name, found_store.labels.get(L.PORT, "")
                port = int(label) if label.isdigit() else None
                break
        if node is None or found_store is None:
            return StoreWait(self._store_errors.get(mc.uid, ""))
        if not store_listening(found_store):
            # no store would answer them; with host networking an agent on the store's host
            # would even serve the endpoint itself (store_listening)
            return StoreWait(store_trouble(found_store))
        address = hosts[node].address if node in hosts else None
        if address:
            return world_env(mc.uid, spec, f"[{address}]" if ":" in address else address, port)
        return world_env(mc.uid, spec, rendezvous_name(mc.name))

    def _expand_templates(self, s: Session, mcs: list[MiniClusterRow]) -> None:
        """Keep cargos ``<mc>-<i>`` for i < spec.replicas where a template is given. A name that
        another cargo of the tenant holds (one of another MiniCluster) is left to it: the
        MiniCluster says so (``ReplicaFailure``, ``NameTaken``) as in Kubernetes mode, and makes
        that cargo once the name is free."""
        for mc in mcs:
            self._isolated(s, f"MiniCluster {mc.key}", partial(self._expand, s, mc), mc)

    def _expand(self, s: Session, mc: MiniClusterRow) -> None:
        """The template cargos of one MiniCluster (:meth:`_expand_templates`)."""
        spec = mc.mc_spec()
        if mc.deleting or is_held(spec) or spec.template is None or spec.replicas is None:
            return
        by_index = {
            index: row
            for row in store.cargos(s, mc.tenant, mc.name)
            if (index := service.template_index(mc.name, row.name)) is not None
        }
        changes = service.template_changes(
            spec.replicas, {i: row.deleting for i, row in by_index.items()}
        )
        names = {row.name for row in store.cargos(s, mc.tenant)}
        taken = []
        for i in changes.create:
            if (name := service.template_cargo_name(mc.name, i)) in names:
                taken.append(name)
            else:
                s.add(template_cargo(mc, i))
        for i in changes.delete:
            by_index[i].deleting = True
            s.add(by_index[i])
        _name_taken(mc, taken)
        s.add(mc)
        s.commit()

    def _delete_miniclusters(
        self, s: Session, mcs: list[MiniClusterRow], clients: dict[str, docker.DockerClient]
    ) -> None:
        for mc in mcs:
            if mc.deleting:
                step = partial(self._delete_minicluster, s, mc, clients)
                self._isolated(s, f"MiniCluster {mc.key}", step, mc)

    def _delete_minicluster(
        self, s: Session, mc: MiniClusterRow, clients: dict[str, docker.DockerClient]
    ) -> None:
        """Delete a MiniCluster's cargos, then, once they are gone, its store, network and row."""
        remaining = store.cargos(s, mc.tenant, mc.name)
        for row in remaining:
            if not row.deleting:
                row.deleting = True
                s.add(row)
        if remaining:
            s.commit()
            return
        for client in clients.values():
            for c in rendezvous_containers(client):
                if c.labels.get(L.RENDEZVOUS) == mc.uid:
                    remove_container(c, 0)
            for net in managed_networks(client):
                if net.attrs.get("Labels", {}).get(L.MINICLUSTER_UID) == mc.uid:
                    net.remove()
        self.engine.remove_minicluster(mc.key)
        s.delete(mc)
        s.commit()
        self._event(EventType.DELETED, mc.tenant, mc.name, None, 0, "MiniCluster deleted")

    # cargos

    def _containers(
        self,
        row: CargoRow,
        clients: dict[str, docker.DockerClient],
        nodes: set[str] | None = None,
    ) -> dict[int, Container]:
        """The cargo's containers (any state) by replica on ``nodes`` (default: its placement's)."""
        found: dict[int, Container] = {}
        for node in nodes if nodes is not None else {p.node for p in row.placements()}:
            client = clients.get(node)
            if client is None:
                continue
            for c in client.containers.list(
                all=True, filters={"label": f"{L.CARGO_UID}={row.uid}"}, ignore_removed=True
            ):
                if is_own(c):
                    found[int(c.labels[L.REPLICA])] = c
        return found

    def _cargo_pass(
        self,
        s: Session,
        row: CargoRow,
        by_mc: dict[tuple[str, str], MiniClusterRow],
        clients: dict[str, docker.DockerClient],
    ) -> None:
        if row.deleting:
            self._delete_cargo(s, row, clients)
        elif row.phase == CargoPhase.PREEMPTED.value:
            self._preempted(s, row, clients)
        elif is_restarting(CargoPhase(row.phase), bool(row.placements())):
            self._restarting(s, row, clients)
        elif row.phase in ACTIVE:
            self._converge(s, row, by_mc[(row.tenant, row.minicluster)], clients)
        elif self._live.get(row.uid):
            self._stop_strays(row, clients)

    def _stop_strays(self, row: CargoRow, clients: dict[str, docker.DockerClient]) -> None:
        """Live containers of a cargo that holds no placement (finished, failed, or waiting to
        be placed again): stopped (a waiting cargo's removed); the rebuild keeps their GPUs held
        until they are."""
        pending = row.phase == CargoPhase.PENDING.value
        nodes = {f.placement.node for f in self._live.get(row.uid, [])}
        for c in self._containers(row, clients, nodes).values():
            if c.status in LIVE_STATES:
                remove = pending or c.status == "created"
                self.retirer.retire(c, row.grace_seconds, remove=remove)

    def _place(
        self,
        s: Session,
        row: CargoRow,
        by_mc: dict[tuple[str, str], MiniClusterRow],
        clients: dict[str, docker.DockerClient],
    ) -> None:
        refused = self._beyond_level(row)
        if refused is not None:  # the level was raised while the cargo waited
            self._end(s, row, cargo_end.refusal(row.restarts, refused.reason, refused.message))
            return
        mc = by_mc.get((row.tenant, row.minicluster)) or store.minicluster(
            s, row.tenant, row.minicluster
        )
        if mc is None or mc.deleting or is_held(mc.mc_spec()):
            return
        spec = row.cargo_spec()
        admitted = self.engine.is_admitted(mc.key)
        verdict = cargo_status.waiting(
            row.tenant, row.minicluster, True, admitted, mc.message, spec.replicas
        )
        if verdict is None:
            decision = self.engine.place_cargo(cargo_request(row))
            if decision.outcome is Outcome.PLACED:
                self._placed(s, row, mc, clients, decision)
                return
            verdict = cargo_status.unplaced(decision)
        row.message = verdict.message
        record(row, "Placed", verdict)
        s.add(row)
        s.commit()

    def _placed(
        self,
        s: Session,
        row: CargoRow,
        mc: MiniClusterRow,
        clients: dict[str, docker.DockerClient],
        decision: CargoDecision,
    ) -> None:
        """The engine placed the cargo: store its placement, then start its containers."""
        spec = row.cargo_spec()
        placed = cargo_status.placed(spec.replicas, spec.gpus_per_replica, decision)
        row.set_placements(list(decision.placements))
        row.phase, row.placed_at, row.message = CargoPhase.PLACED.value, _now(), ""
        record(row, "Placed", placed)
        record(row, "Ready", cargo_status.replicas_ready(0, len(decision.placements)))
        s.add(row)
        s.commit()
        said = cargo_status.phase_event(CargoPhase.PLACED, placed.message, spec.replicas, "")
        self._event(EventType.PLACED, row.tenant, row.minicluster, row.name, spec.gpus, said)
        self._converge(s, row, mc, clients)

    def _converge(
        self,
        s: Session,
        row: CargoRow,
        mc: MiniClusterRow,
        clients: dict[str, docker.DockerClient],
    ) -> None:
        placements = row.placements()
        if any(p.node not in clients for p in placements):
            return
        # a container being removed (``docker rm -f``: killed, its files going) is gone already:
        # counted as there, it made a Running gang read Placed for a pass, and the pass after
        # made the replica again instead of failing the gang by its restart policy
        containers = {
            r: c for r, c in self._containers(row, clients).items() if c.status != "removing"
        }
        stale = [c for c in containers.values() if c.labels.get(L.ATTEMPT) != str(row.restarts)]
        for c in stale:
            self.retirer.retire(c, row.grace_seconds)
        if stale:
            return
        for c in containers.values():
            _no_restart_policy(c)
        network = L.network_name(row.tenant, row.minicluster)
        seen = {r: _seen(c, network) for r, c in containers.items()}
        placed = [p.replica for p in placements]
        gang = judge(CargoPhase(row.phase), placed, seen, len(placements), GONE)
        if gang.failure is not None:
            self._fail(s, row, containers, gang.failure)
            return
        if gang.succeeded:
            self._end(s, row, cargo_end.success(row.restarts, len(placements)))
            return
        hosts = {h.name: h.host() for h in store.hosts(s)}
        spec = row.cargo_spec()
        try:
            template = container_template(spec.template, row.tenant)
        except ValueError as err:
            self._end(s, row, cargo_end.refusal(row.restarts, INVALID_SPEC, str(err)))
            return
        missing = [
            p
            for p in placements
            if (c := containers.get(p.replica)) is None or c.status == "created"
        ]
        refused = self._beyond_level(row) if missing else None
        if refused is not None:
            self._unmade(s, row, containers, refused.reason, refused.message)
            return
        world = self._world(mc, hosts, clients) if missing else {}
        if isinstance(world, StoreWait):
            down = sorted(h for h in hosts if h not in clients)
            why = f"{STORE_WAIT} of MiniCluster {mc.name} to run" + (
                f"; it may be on {', '.join(down)}, which does not answer" if down else ""
            )
            if world.why:
                why += f"; {world.why} ({STORE_NEEDS})"
            if row.message != why:
                row.message = why
                s.add(row)
                s.commit()
            return
        master_addr, master_port = _master(row, containers, hosts, clients)
        names = host_names(hosts.values())
        for p in missing:
            created = containers.get(p.replica)
            address = hosts[p.node].address
            replica_spec = ReplicaSpec(
                tenant=row.tenant,
                minicluster=row.minicluster,
                minicluster_uid=mc.uid,
                cargo=row.name,
                cargo_uid=row.uid,
                replica=p.replica,
                replicas=spec.replicas,
                gpu_ids=tuple(p.gpu_ids),
                simulated=hosts[p.node].simulated,
                template=template,
                restart_policy=spec.restart_policy.value,
                attempt=row.restarts,
                world=world,
                host=network_hostname(hosts[p.node]),
                address=address,
                extra_hosts=names if address else None,
                master_addr=master_addr,
                master_port=master_port,
                logs=self.logs,
            )
            try:
                if created is not None:  # created, never started (the reconciler stopped between)
                    created.start()
                    created.reload()
                    continue
                if not has_image(clients[p.node], template.image):
                    self._pulling(s, row, template.image, p.node)
                containers[p.replica] = run_replica(clients[p.node], replica_spec)
            except NameTaken as err:  # asked again next pass
                row.message = f"replica {p.replica} on {p.node}: {err}"
                s.add(row)
                s.commit()
                return
            except ImagePullFailed as err:
                self._unmade(s, row, containers, IMAGE_PULL_FAILED, f"{IMAGE_PULL_FAILED}: {err}")
                return
            except APIError as err:
                why = f"replica {p.replica} on {p.node}: {err.explanation or err}"
                reason = refusal_reason(err.status_code, why)
                if reason is None:  # may pass later: asked again next pass
                    row.message = why
                    s.add(row)
                    s.commit()
                    return
                with contextlib.suppress(APIError):  # created, refused at start: goes too
                    containers[p.replica] = clients[p.node].containers.get(replica_spec.name)
                self._unmade(s, row, containers, reason, f"{reason}: dockerd refused {why}")
                return
        if row.message.startswith((PULLING, STORE_WAIT)):
            row.message = ""
            s.add(row)
            s.commit()
        running = sum(
            1
            for p in placements
            if (c := containers.get(p.replica)) is not None and c.status == "running"
        )
        phase, ready = cargo_status.placed_progress(running, len(placements))
        before, was = row.conditions, row.phase
        record(row, "Ready", ready)
        row.phase = phase.value
        if ready.ok:
            row.started_at = first_start(row.started_at, _now())
        if row.conditions != before or row.phase != was:
            s.add(row)
            s.commit()
        if ready.ok and was != CargoPhase.RUNNING.value:
            self._event(
                EventType.RUNNING,
                row.tenant,
                row.minicluster,
                row.name,
                spec.gpus,
                cargo_status.phase_event(CargoPhase.RUNNING, "", len(placements), ""),
            )

    def _beyond_level(self, row: CargoRow) -> Verdict | None:
        """Why no container of the cargo may be made under its tenant's Pod Security level as
        the store holds it now (an admin may have raised it since the template was stored), as
        Kubernetes mode refuses a pod (:mod:`crane.lifecycle.pod_security`); None when it fits."""
        level = self.pod_levels.get(row.tenant, DEFAULT_LEVEL)
        return creation_refusal(row.cargo_spec().template, level, self.allowed_mounts)

    def _pulling(self, s: Session, row: CargoRow, image: str, node: str) -> None:
        """Say (message, event) that the image is being pulled before the pull blocks."""
        row.message = f"{PULLING}: pulling image {image} on {node}"
        s.add(row)
        s.commit()
        self._event(
            EventType.PLACED,
            row.tenant,
            row.minicluster,
            row.name,
            row.cargo_spec().gpus,
            row.message,
        )

    def _fail(
        self,
        s: Session,
        row: CargoRow,
        containers: dict[int, Container],
        failure: Failure,
    ) -> None:
        """A replica failed (:func:`crane.lifecycle.gang.judge` says which, and how): the gang
        restarts or fails by its restart policy, as on Kubernetes."""
        spec = row.cargo_spec()
        end = cargo_end.failure(
            spec, row.restarts, cargo_status.REPLICA_FAILED, failure.what, failure.exit_code
        )
        if end.restart:
            self._end(s, row, end, release=False)
            self._wake.set()
            return
        if row.message.endswith(STOPPING):  # the failure that stopped the others is told
            end = end.saying(row.message.removesuffix(STOPPING))
        running = [c for c in containers.values() if c.status in LIVE_STATES]
        if running:
            for c in running:
                # a created container never started: stopping it is a no-op, so remove it
                self.retirer.retire(c, row.grace_seconds, remove=c.status == "created")
            record(row, "Ready", end.ready)
            row.message = end.message + STOPPING
            s.add(row)
            s.commit()
            return
        self._end(s, row, end)

    def _unmade(
        self,
        s: Session,
        row: CargoRow,
        containers: dict[int, Container],
        reason: str,
        message: str,
    ) -> None:
        """A replica could not be made, for good: stop the gang's containers and fail the cargo
        for ``reason``, saying ``message``. The GPUs of containers still stopping stay held (the
        next rebuild reads them); with none, they are released now."""
        for c in containers.values():
            self.retirer.retire(c, row.grace_seconds)
        self._end(s, row, cargo_end.refusal(row.restarts, reason, message), release=not containers)

    def _end(self, s: Session, row: CargoRow, end: CargoEnd, release: bool = True) -> None:
        """Store how the cargo's attempt ended (:mod:`crane.lifecycle.cargo_end`: its phase,
        restart count, message, conditions, exit code) and post its event. A finished cargo's
        GPUs are released unless ``release`` is False (containers still stopping hold them: the
        next rebuild reads them); a restarting gang keeps its placement until its containers
        are gone (:meth:`_restarting`)."""
        for type_, verdict in end.conditions:
            record(row, type_, verdict)
        row.phase, row.restarts, row.message = end.phase.value, end.restarts, end.message
        if end.restart:
            s.add(row)
            s.commit()
            return
        if release:
            self.engine.release_cargo(row.key)
        row.finished_at, row.exit_code = _now(), end.exit_code
        s.add(row)
        s.commit()
        self._event(
            EventType(end.phase.value),
            row.tenant,
            row.minicluster,
            row.name,
            row.cargo_spec().gpus,
            end.event_message,
            exit_code=row.exit_code,
        )

    def _delete_cargo(
        self, s: Session, row: CargoRow, clients: dict[str, docker.DockerClient]
    ) -> None:
        if any(p.node not in clients for p in row.placements()) and row.phase in HOLDING:
            return
        notice = ("Removed", f"cargo {row.name} is being deleted (shrink or delete)")
        if self._retire_all(row, clients, notice):
            return
        if row.phase in HOLDING:
            self.engine.release_cargo(row.key)
        s.delete(row)
        s.commit()
        self._event(
            EventType.DELETED,
            row.tenant,
            row.minicluster,
            row.name,
            row.cargo_spec().gpus,
            "cargo deleted",
        )

    def _retire_all(
        self,
        row: CargoRow,
        clients: dict[str, docker.DockerClient],
        notice: tuple[str, str] | None = None,
    ) -> bool:
        """Hand the cargo's containers to the retirer; whether any is still there. A
        ``notice`` (reason, message) is written into each first (crane/model/world.py)."""
        left = self._containers(row, clients)
        text = notice_text(*notice, _now(), row.grace_seconds) if notice else None
        for c in left.values():
            self.retirer.retire(c, row.grace_seconds, notice=text)
        return bool(left)

    # hosts leaving

    def _drain(
        self, s: Session, hosts: list[HostRow], clients: dict[str, docker.DockerClient]
    ) -> None:
        """Forget a draining host once none of its cargos is active. A preempting drain first
        moves OnFailure cargos off it (placed again whole) and fails Never ones."""
        for host in hosts:
            if host.draining:
                step = partial(self._drain_host, s, host, clients)
                self._isolated(s, f"the drain of host {host.name}", step)

    def _drain_host(
        self, s: Session, host: HostRow, clients: dict[str, docker.DockerClient]
    ) -> None:
        on_host = cargos_on(s, host.name, self._skip)
        if on_host and (not host.preempt or any(c.uid in self._skip for c in on_host)):
            return  # a cargo whose row cannot be read keeps its host until the row is fixed
        waiting = False
        for row in on_host:
            if self._retire_all(row, clients):
                waiting = True
                continue
            self.engine.release_cargo(row.key)
            if row.cargo_spec().restart_policy is RestartPolicy.ON_FAILURE:
                row.phase, row.placement = CargoPhase.PENDING.value, "[]"
                row.message = f"host {host.name} drained; placing the gang again"
                s.add(row)
            else:
                drained = f"host {host.name} drained"
                lost = cargo_end.refusal(row.restarts, cargo_status.NODE_LOST, drained)
                self._end(s, row, lost)
        client = clients.get(host.name)
        leftovers = managed_containers(client) if client is not None else []
        for c in leftovers:
            self.retirer.retire(c, 0)
        if waiting or leftovers:
            return
        if client is not None:
            for net in managed_networks(client):
                net.remove()
        for mc in store.miniclusters(s):
            if mc.uid not in self._skip and host.name in mc.reserved():
                mc.admitted, mc.reservation = False, "{}"
                s.add(mc)
        s.delete(host)
        s.commit()

    def _remove_orphans(self, s: Session, clients: dict[str, docker.DockerClient]) -> None:
        """Containers and networks labelled by Crane that SQL no longer knows, and live
        containers wearing Crane's labels that are not Crane's (renamed by hand, or labelled
        to pass for a cargo: :func:`~crane.docker.containers.is_own`), which are stopped and
        left for their owner to inspect; until then their device requests count as busy."""
        cargo_uids = {c.uid for c in store.cargos(s)}
        mc_uids = {m.uid for m in store.miniclusters(s)}
        for name, client in clients.items():
            step = partial(self._remove_host_orphans, name, client, cargo_uids, mc_uids)
            self._isolated(s, f"the orphans of host {name}", step)

    def _remove_host_orphans(
        self, name: str, client: docker.DockerClient, cargo_uids: set[str], mc_uids: set[str]
    ) -> None:
        """:meth:`_remove_orphans` on one host."""
        for c in impostors(client):
            log.warning(
                "container %s (%s) on %s carries Crane's labels but is not Crane's "
                "(renamed by hand, or labelled to pass for one); stopping it",
                c.name,
                c.short_id,
                name,
            )
            self.retirer.retire(c, 0, remove=False)
        for c in managed_containers(client):
            store_of = c.labels.get(L.RENDEZVOUS)  # a rendezvous store: its MiniCluster's
            if store_of is not None:
                orphan = store_of not in mc_uids
            else:
                orphan = c.labels.get(L.CARGO_UID) not in cargo_uids
            if orphan:
                self.retirer.retire(c, 0)
        for net in managed_networks(client):
            if net.attrs.get("Labels", {}).get(L.MINICLUSTER_UID) not in mc_uids:
                try:
                    net.remove()
                except (APIError, NotFound):
                    log.info("network %s still in use", net.name)

    def _event(
        self,
        kind: EventType,
        tenant: str,
        mc: str,
        cargo: str | None,
        gpus: int,
        message: str,
        exit_code: int | None = None,
    ) -> None:
        self.emit(
            Event(
                type=kind,
                tenant=tenant,
                mini_cluster=mc,
                cargo=cargo,
                gpus=gpus,
                message=message,
                exit_code=exit_code,
                time=_now(),
            )
        )


def _restarted(container: Container) -> tuple[int | None, str]:
    """A replica's container that Docker restarted by a restart policy set by hand (Crane's
    is ``no``, so its restarts are gang-wide, by the cargo's ``restartPolicy``): its last
    exit code (while it waits to start again, or from its daemon's recent events once it runs
    again), else what happened; ``(None, "")`` when Docker never restarted it. A failure
    Docker hid that way is still the replica's failure, with its code."""
    state = container.attrs.get("State") or {}
    code = state.get("ExitCode")
    if container.status == "restarting" and code:
        return int(code), ""
    if container.status == "restarting" or int(container.attrs.get("RestartCount") or 0) > 0:
        last = _last_exit_code(container)
        return (last, "") if last else (None, RESTARTED)
    return None, ""


def _last_exit_code(container: Container) -> int | None:
    """The code of a container's last exit, from its daemon's recent events: Docker's
    inspect forgets it once the container runs again. None when the events (the daemon keeps
    the last 256 or so) no longer hold it."""
    created = str(container.attrs.get("Created", ""))[:19]
    try:
        since = int(datetime.strptime(created, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
    except ValueError:
        since = 0
    filters = {"container": container.id, "event": "die"}
    try:
        seen = container.client.api.events(  # until now, to the microsecond: it ends
            since=since, until=f"{time.time():.6f}", filters=filters, decode=True
        )
        codes = [((e.get("Actor") or {}).get("Attributes") or {}).get("exitCode") for e in seen]
    except (DockerException, OSError, ValueError):
        return None
    last = next((c for c in reversed(codes) if str(c).lstrip("-").isdigit()), None)
    return int(str(last)) if last is not None else None


def _seen(container: Container, network: str) -> ReplicaSeen:
    """What a replica's container says of it: failed when it exited non-zero, when Docker
    restarted it (a restart policy set by hand) or when it was cut off from ``network`` (its
    MiniCluster's); succeeded when it exited 0; running; else waiting (created, paused)."""
    code = container.attrs["State"]["ExitCode"]
    if container.status in ("exited", "dead") and code != 0:
        return ReplicaSeen(ReplicaState.FAILED, code)
    restarted, detail = _restarted(container)
    if container.status not in ("exited", "dead") and (restarted is not None or detail):
        return ReplicaSeen(ReplicaState.FAILED, restarted, detail)
    if off_network(container, network):
        return ReplicaSeen(ReplicaState.FAILED, None, f"{OFF_NETWORK} {network}")
    if container.status == "exited":
        return ReplicaSeen(ReplicaState.SUCCEEDED)
    if container.status == "running":
        return ReplicaSeen(ReplicaState.RUNNING)
    return ReplicaSeen(ReplicaState.WAITING)


def _no_restart_policy(container: Container) -> None:
    """Set Docker's restart policy of a replica's container back to ``no`` when set otherwise
    by hand: a container Crane stopped must not come back when its daemon restarts."""
    policy = (container.attrs.get("HostConfig") or {}).get("RestartPolicy") or {}
    if policy.get("Name") in (None, "", "no"):
        return
    log.warning(
        "container %s had restart policy %s set by hand; setting it back to no",
        container.name,
        policy.get("Name"),
    )
    try:
        container.update(restart_policy={"Name": "no"})
    except (DockerException, OSError) as err:
        log.warning("setting the restart policy of %s back failed: %s", container.name, err)


def _store_host(mc: MiniClusterRow, clients: dict[str, docker.DockerClient]) -> str:
    """Where a MiniCluster's store goes: the first host of its reservation that answers."""
    return next((h for h in sorted(mc.reserved()) if h in clients), None) or sorted(clients)[0]


def _master(
    row: CargoRow,
    containers: dict[int, Container],
    hosts: dict[str, HostSpec],
    clients: dict[str, docker.DockerClient],
) -> tuple[str | None, int]:
    """``MASTER_ADDR`` and ``MASTER_PORT`` of a cargo: replica 0's alias and 29500 on the
    MiniCluster's network; with host networking, the address of replica 0's host and a port
    no other Crane container of that host holds (the one its containers already carry)."""
    first = next((p for p in row.placements() if p.replica == 0), None)
    address = hosts[first.node].address if first is not None else None
    if first is None or not address:
        return None, L.MASTER_PORT
    for c in containers.values():
        if (label := c.labels.get(L.PORT, "")).isdigit():
            return address, int(label)
    return address, free_port(clients[first.node], L.MASTER_PORT)


def daemon_id(client: docker.DockerClient) -> str:
    """Who a Docker daemon is, through every URL that reaches it: its ID (shared by the
    daemons of one machine that share a key), its machine's name, and its data root."""
    info = client.info()
    return f"{info.get('ID')}|{info.get('Name')}|{info.get('DockerRootDir')}"


def same_daemon(name: str, twin: str) -> str:
    """Why host ``name`` takes no work: it is host ``twin``'s daemon under a second name."""
    return (
        f"host {name!r} reaches the same Docker daemon as host {twin!r}: one machine's GPUs "
        f"would be given twice; remove one of them (`crane node remove {name}`)"
    )


def _connect_row(row: HostRow) -> docker.DockerClient:
    return connect(row.host())


def _name_taken(mc: MiniClusterRow, taken: list[str]) -> None:
    """Say which template cargo names another cargo holds (``ReplicaFailure``, ``NameTaken``);
    clear it once none is."""
    if taken:
        message = service.template_name_taken(mc.name, taken)
        record(mc, "ReplicaFailure", Verdict(True, service.NAME_TAKEN, message))
    elif '"ReplicaFailure"' in mc.conditions:
        kept = [c for c in store.stored_conditions(mc.conditions) if c.type != "ReplicaFailure"]
        mc.conditions = store.dump_conditions(kept)


def template_cargo(mc: MiniClusterRow, index: int) -> CargoRow:
    """The ``index``-th cargo of a MiniCluster's template."""
    spec = mc.mc_spec()
    assert spec.template is not None
    body = service.template_cargo_spec(mc.name, spec.template)
    return CargoRow(
        tenant=mc.tenant,
        name=service.template_cargo_name(mc.name, index),
        minicluster=mc.name,
        spec=body.model_dump_json(by_alias=True),
    )


def cargos_on(s: Session, host: str, unread: frozenset[str] = frozenset()) -> list[CargoRow]:
    """The placed or running cargos with a replica on ``host``, and every cargo whose uid is
    in ``unread`` (rows that cannot be read: where their replicas are is not known)."""
    return [
        c
        for c in store.cargos(s)
        if c.uid in unread or (c.phase in ACTIVE and any(p.node == host for p in c.placements()))
    ]
