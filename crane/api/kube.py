"""The Kubernetes backend: MiniCluster and Cargo CRs are the truth, tenant = namespace.

The operator places; this backend writes specs, reads statuses, watches cargos for events and
streams pod logs. The kubernetes client is synchronous, so every call runs in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from typing_extensions import override
from urllib3 import HTTPResponse

from crane.api import kube_snapshot
from crane.api.backend import Backend, patched_spec
from crane.api.db import make_engine
from crane.api.errors import (
    Conflict,
    CraneError,
    ExecUnfinished,
    ExecUnsupported,
    FieldError,
    HostsManagedByKubernetes,
    Invalid,
    NotFound,
    SharesManagedByKubernetes,
    Unavailable,
)
from crane.api.loglines import log_lines
from crane.api.mclock import MiniClusterLock
from crane.api.schemas import (
    MAX_EXEC_OUTPUT,
    Cargo,
    CargoCreate,
    CargoExplain,
    CargoGrant,
    DryRunRequest,
    DryRunResult,
    Event,
    EventType,
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
from crane.api.threads import on_own_thread
from crane.api.usage import Holding, Snapshot
from crane.kube import dra
from crane.kube import shares as kube_shares
from crane.kube.fleet import KWOK_NODE_ANNOTATION
from crane.kube.names import (
    CARGO_LABEL,
    FINALIZER,
    GPU_IDS_ANNOTATION,
    GROUP,
    TEMPLATE_INDEX_LABEL,
    VERSION,
)
from crane.kube.names import CARGOS as CARGOS
from crane.kube.names import MINICLUSTER_LABEL as MC_LABEL
from crane.kube.names import MINICLUSTERS as MCS
from crane.kube.nodes import node_view, with_dra
from crane.kube.shares import TENANTSHARES
from crane.lifecycle import cargo_status, service
from crane.lifecycle.suspend import is_held
from crane.model import (
    CargoPhase,
    CargoSpec,
    CargoStatus,
    Condition,
    MiniClusterSpec,
    MiniClusterStatus,
)
from crane.model.conditions import find_condition
from crane.model.inventory import GPU_PRODUCT_LABEL
from crane.model.podsecurity import DEFAULT_LEVEL, ENFORCE_LABEL, PodSecurityLevel, parse_level
from crane.model.shares import ShareTable, TenantShares
from crane.placement import Engine

TERMINAL = frozenset({CargoPhase.SUCCEEDED, CargoPhase.FAILED, CargoPhase.PREEMPTED})
LIVE = frozenset({CargoPhase.PLACED, CargoPhase.RUNNING})
DECISION_SECONDS = 10.0
"""How long grow waits for the operator to place or pend a new cargo before answering."""
POLL_SECONDS = 0.2
WATCH_SECONDS = 300
"""How long one watch of cargos or MiniClusters lasts before the API server ends it."""
T = TypeVar("T")


def _time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _mc(body: dict[str, Any]) -> MiniCluster:
    meta = body["metadata"]
    return MiniCluster(
        name=meta["name"],
        tenant=meta["namespace"],
        uid=meta.get("uid", ""),
        spec=MiniClusterSpec.model_validate(body.get("spec") or {}),
        status=MiniClusterStatus.model_validate(body.get("status") or {}),
        labels=meta.get("labels") or {},
        created_at=_time(meta.get("creationTimestamp")),
        generation=meta.get("generation", 1),
    )


def _cargo(body: dict[str, Any]) -> Cargo:
    meta = body["metadata"]
    return Cargo(
        name=meta["name"],
        tenant=meta["namespace"],
        uid=meta.get("uid", ""),
        spec=CargoSpec.model_validate(body.get("spec") or {}),
        status=CargoStatus.model_validate(body.get("status") or {}),
        created_at=_time(meta.get("creationTimestamp")),
    )


def _taken_back(body: dict[str, Any]) -> bool:
    """Being deleted and holding no GPUs: never placed, or its pods gone and its GPUs released
    (the operator then takes Crane's finalizer off; the object may linger a while longer, for
    the garbage collector's foreground deletion). Such a cargo no longer counts against
    ``gpus.max``, as the MiniCluster's ``inUseGpus`` no longer counts it."""
    meta = body["metadata"]
    if not meta.get("deletionTimestamp"):
        return False
    placed = bool((body.get("status") or {}).get("placement"))
    return not placed or FINALIZER not in (meta.get("finalizers") or [])


class _Subject(str):
    """What a call is about (``minicluster 'x'``), with the one wording of its 404 both
    backends give (:func:`service.minicluster_not_found`, :func:`service.cargo_not_found`)."""

    missing: str

    @classmethod
    def minicluster(cls, name: str, tenant: str) -> _Subject:
        """A MiniCluster of ``tenant``."""
        subject = cls(f"minicluster {name!r}")
        subject.missing = service.minicluster_not_found(name, tenant)
        return subject

    @classmethod
    def cargo(cls, name: str, tenant: str) -> _Subject:
        """A cargo of ``tenant``."""
        subject = cls(f"cargo {name!r}")
        subject.missing = service.cargo_not_found(name, tenant)
        return subject


def _api_error(err: ApiException, what: str) -> CraneError:
    """Map the Kubernetes API's answer to an error a person can act on."""
    try:
        message = json.loads(err.body or "{}").get("message", "") or str(err.reason)
    except ValueError:
        message = str(err.reason)
    if err.status == 404:
        return NotFound(getattr(what, "missing", f"{what} not found"))
    if err.status == 409:
        return Conflict(f"{what} exists already or changed meanwhile: {message}")
    if err.status in (400, 422):
        return Invalid(f"{what} is invalid: {message}")
    return Unavailable(f"the Kubernetes API answered {err.status} for {what}: {message}")


def _exec(
    configuration: client.Configuration, namespace: str, pod: str, request: ExecRequest
) -> ExecResult:
    """Blocking: run the command through the pods/exec subresource (a websocket of its own, on
    an API client of its own: ``stream`` patches the client it is given)."""
    from kubernetes.stream import stream
    from websocket import WebSocketException

    with client.ApiClient(configuration) as own:
        try:
            ws = stream(
                client.CoreV1Api(own).connect_get_namespaced_pod_exec,
                pod,
                namespace,
                command=request.command,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
            )
        except WebSocketException as err:
            raise ExecUnsupported(f"pod {pod!r} cannot run a command: {err}") from None
        try:
            deadline = time.monotonic() + request.timeout_seconds
            while ws.is_open() and (left := deadline - time.monotonic()) > 0:
                ws.update(timeout=left)
                if len(ws.peek_stdout()) + len(ws.peek_stderr()) > MAX_EXEC_OUTPUT:
                    raise _too_long()  # characters: at least as many bytes
            if ws.is_open():
                raise ExecUnfinished.timed_out(request.timeout_seconds)
            output = ws.read_all()
            code = ws.returncode
        finally:
            ws.close()
    if len(output.encode()) > MAX_EXEC_OUTPUT:
        raise _too_long()
    return ExecResult(exit_code=code if code is not None else -1, output=output)


def _timed_out(err: urllib3.exceptions.HTTPError) -> bool:
    """Whether ``err`` (after the client's retries, or not) is the Kubernetes API not answering
    in time, rather than refusing the connection."""
    if isinstance(err, urllib3.exceptions.MaxRetryError):
        return isinstance(err.reason, urllib3.exceptions.TimeoutError)
    return isinstance(err, urllib3.exceptions.TimeoutError)


def _too_long() -> ExecUnfinished:
    """The 409 of an exec whose output passed :data:`MAX_EXEC_OUTPUT`, as in Docker mode."""
    return ExecUnfinished.too_long(MAX_EXEC_OUTPUT)


class KubeBackend(Backend):
    """Reads and writes ``miniclusters.crane.io`` and ``cargos.crane.io`` v1alpha1."""

    name = "kube"

    def __init__(self, settings: ApiSettings) -> None:
        self._settings = settings
        self._api: client.ApiClient | None = None
        self._no_config = "the Kubernetes backend has not started"
        self._lock_db = make_engine(settings.database_url)
        self._lock = MiniClusterLock(self._lock_db)
        self._exclusive = self._lock.held
        """Holds a MiniCluster for one read-decide-write (grow, shrink, cargo create), against
        every other API server on the database too (``api.replicas`` > 1)."""

    # --- plumbing ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the kubeconfig (or the in-cluster account); without one, serve 503s that say so."""
        cfg = client.Configuration()
        try:
            config.load_kube_config(config_file=self._settings.kubeconfig, client_configuration=cfg)
        except (config.ConfigException, OSError):
            try:
                config.load_incluster_config(client_configuration=cfg)
            except config.ConfigException:
                self._no_config = (
                    "no Kubernetes configuration: set CRANE_KUBECONFIG or KUBECONFIG, "
                    "run in a cluster, or use --backend docker"
                )
                return
        cfg.connection_pool_maxsize = 32
        self._api = client.ApiClient(cfg)

    @override
    async def close(self) -> None:
        if self._api is not None:
            self._api.close()
        self._lock.dispose()
        self._lock_db.dispose()

    @property
    def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self._api)

    @property
    def _core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self._api)

    async def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(self._mapped(what, fn, *args, **kwargs))

    def _mapped(
        self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> Callable[[], T]:
        """``fn(*args, **kwargs)`` with the client's errors turned into the API's, bounded by
        ``kube_timeout`` (a call that streams, ``_request_timeout=(connect, None)``, bounds the
        connection only)."""
        if self._api is None:
            raise Unavailable(self._no_config)
        limit = self._settings.kube_timeout
        kwargs.setdefault("_request_timeout", limit)

        def run() -> T:
            try:
                return fn(*args, **kwargs)
            except ApiException as err:
                raise _api_error(err, what) from None
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.MaxRetryError) as err:
                if not _timed_out(err):
                    raise Unavailable(
                        f"cannot reach the Kubernetes API ({err}): is it up?"
                    ) from None
                raise Unavailable(
                    f"the Kubernetes API did not answer within {limit:g} s: is it overloaded or "
                    "stalled? (an admin raises the limit with CRANE_KUBE_TIMEOUT)"
                ) from None
            except (OSError, urllib3.exceptions.HTTPError) as err:
                raise Unavailable(f"cannot reach the Kubernetes API ({err}): is it up?") from None

        return run

    async def _object(
        self, what: str, fn: Callable[..., object], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """A custom-objects call: the client types its answer ``object``; it is the JSON body."""
        return cast(dict[str, Any], await self._call(what, fn, *args, **kwargs))

    @override
    async def ready(self) -> str | None:
        if self._api is None:
            return self._no_config
        try:
            await self._call(
                "the cargos CRD",
                self._custom.list_cluster_custom_object,
                GROUP,
                VERSION,
                CARGOS,
                limit=1,
            )
        except CraneError as err:
            return f"{err.detail} (are Crane's CRDs installed? kubectl apply -f helm/crane/crds/)"
        return None

    # --- MiniClusters -----------------------------------------------------------------------

    async def _ensure_namespace(self, tenant: str, level: PodSecurityLevel = DEFAULT_LEVEL) -> Any:
        """The tenant's namespace, created (with the Pod Security label) when absent."""
        try:
            return await self._call(f"namespace {tenant!r}", self._core.read_namespace, tenant)
        except NotFound:
            labels = {"crane.io/tenant": "true", ENFORCE_LABEL: level.value}
            body = {"metadata": {"name": tenant, "labels": labels}}
            with contextlib.suppress(Conflict):
                await self._call(f"namespace {tenant!r}", self._core.create_namespace, body)
            return None

    async def pod_security_level(self, tenant: str) -> PodSecurityLevel | None:
        """The namespace's ``pod-security.kubernetes.io/enforce`` level (baseline when not
        labelled); None when the namespace does not exist yet."""
        try:
            ns = await self._call(f"namespace {tenant!r}", self._core.read_namespace, tenant)
        except NotFound:
            return None
        labels = (ns.metadata.labels if ns.metadata is not None else None) or {}
        return parse_level(labels.get(ENFORCE_LABEL))

    async def set_pod_security(self, tenant: str, level: PodSecurityLevel) -> None:
        """Label the tenant's namespace (created if absent) with the Pod Security level."""
        if await self._ensure_namespace(tenant, level) is not None:
            patch = {"metadata": {"labels": {ENFORCE_LABEL: level.value}}}
            await self._call(f"namespace {tenant!r}", self._core.patch_namespace, tenant, patch)

    @override
    async def create_minicluster(self, tenant: str, body: MiniClusterCreate) -> MiniCluster:
        engine = await self._snapshot()
        never = await asyncio.to_thread(
            service.never_admitted, engine, tenant, body.name, body.spec
        )
        if never is not None:
            raise Invalid(never, [FieldError(["body", "spec", "gpus", "min"], never)])
        await self._ensure_namespace(tenant)
        obj = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MiniCluster",
            "metadata": {"name": body.name, "namespace": tenant, "labels": body.labels},
            "spec": body.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        try:
            created = await self._object(
                f"minicluster {body.name!r}",
                self._custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                tenant,
                MCS,
                obj,
            )
        except Conflict:
            with contextlib.suppress(NotFound):
                if (await self._get_mc_body(tenant, body.name))["metadata"].get(
                    "deletionTimestamp"
                ):
                    raise Conflict(service.minicluster_being_deleted(body.name, tenant)) from None
            raise
        return _mc(created)

    @override
    async def list_miniclusters(self, tenant: str) -> list[MiniCluster]:
        bodies = await self._mc_bodies(tenant)
        items = [_mc(b) for b in bodies if not b["metadata"].get("deletionTimestamp")]
        return sorted(items, key=lambda m: (m.created_at, m.name))

    @override
    async def has_miniclusters(self, tenant: str) -> bool:
        return bool(await self._mc_bodies(tenant))

    async def _mc_bodies(self, tenant: str) -> list[dict[str, Any]]:
        """The tenant's MiniCluster objects, those being deleted too."""
        try:
            got = await self._object(
                "miniclusters",
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                tenant,
                MCS,
            )
        except NotFound:
            return []
        return list(got["items"])

    async def _get_mc_body(self, tenant: str, name: str) -> dict[str, Any]:
        return await self._object(
            _Subject.minicluster(name, tenant),
            self._custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            tenant,
            MCS,
            name,
        )

    async def _live_mc_body(self, tenant: str, name: str) -> dict[str, Any]:
        """The MiniCluster's object; NotFound once it is being deleted, as in Docker mode (the
        object lingers until its cargos are gone, but it is no longer one to act on)."""
        body = await self._get_mc_body(tenant, name)
        if body["metadata"].get("deletionTimestamp"):
            raise NotFound(service.minicluster_not_found(name, tenant))
        return body

    @override
    async def get_minicluster(self, tenant: str, name: str) -> MiniCluster:
        return _mc(await self._live_mc_body(tenant, name))

    @override
    async def patch_minicluster(
        self, tenant: str, name: str, patch: MiniClusterPatch
    ) -> MiniCluster:
        # the whole spec is written back: under the MiniCluster's lock, so that a grow's or
        # another patch's change made between this read and this write is not undone
        async with self._exclusive(tenant, name):
            current = await self.get_minicluster(tenant, name)
            spec = patched_spec(current.spec, patch)
            if spec.replicas != current.spec.replicas or spec.template != current.spec.template:
                existing = await self._cargo_bodies(tenant, name)
                over = service.patch_over_max(
                    name, current.spec, spec, self._facts(current, existing)
                )
                if over is not None:
                    raise Invalid(over, [FieldError(["body", "replicas"], over)])
            if service.asks_more_of_admission(current.spec, spec):
                engine = await self._snapshot()
                never = await asyncio.to_thread(service.never_admitted, engine, tenant, name, spec)
                if never is not None:
                    raise Invalid(never, [FieldError(["body", "gpus", "min"], never)])
            labels = patch.labels
            body: dict[str, Any] = {
                "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True)
            }
            if labels is not None:  # the labels given replace the set, as in Docker mode
                gone: dict[str, str | None] = {key: None for key in current.labels}
                body["metadata"] = {"labels": gone | labels}
            return _mc(await self._patch_mc(tenant, name, body))

    @override
    async def delete_minicluster(self, tenant: str, name: str) -> None:
        await self._live_mc_body(tenant, name)  # one being deleted is gone already, as in Docker
        await self._call(
            _Subject.minicluster(name, tenant),
            self._custom.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            tenant,
            MCS,
            name,
            propagation_policy="Foreground",
        )

    # --- cargos -----------------------------------------------------------------------------

    async def _cargo_bodies(self, tenant: str, minicluster: str | None) -> list[dict[str, Any]]:
        try:
            got = await self._object(
                "cargos",
                self._custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                tenant,
                CARGOS,
            )
        except NotFound:
            return []
        items: list[dict[str, Any]] = got["items"]
        if minicluster is None:
            return items
        return [b for b in items if (b.get("spec") or {}).get("miniCluster") == minicluster]

    @override
    async def list_cargos(self, tenant: str, minicluster: str | None = None) -> list[Cargo]:
        bodies = await self._cargo_bodies(tenant, minicluster)
        items = [_cargo(b) for b in bodies if not b["metadata"].get("deletionTimestamp")]
        return sorted(items, key=lambda c: (c.created_at, c.name))

    async def _get_cargo_body(self, tenant: str, name: str) -> dict[str, Any]:
        return await self._object(
            _Subject.cargo(name, tenant),
            self._custom.get_namespaced_custom_object,
            GROUP,
            VERSION,
            tenant,
            CARGOS,
            name,
        )

    async def _live_cargo_body(self, tenant: str, name: str) -> dict[str, Any]:
        """The cargo's object; NotFound once it is being deleted, as in Docker mode."""
        body = await self._get_cargo_body(tenant, name)
        if body["metadata"].get("deletionTimestamp"):
            raise NotFound(service.cargo_not_found(name, tenant))
        return body

    @override
    async def get_cargo(self, tenant: str, name: str) -> Cargo:
        return _cargo(await self._live_cargo_body(tenant, name))

    async def _create_cargo(
        self, tenant: str, mc: dict[str, Any], name: str, spec: CargoSpec
    ) -> Cargo:
        meta = mc["metadata"]
        obj = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Cargo",
            "metadata": {
                "name": name,
                "namespace": tenant,
                "labels": {MC_LABEL: meta["name"]},
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "MiniCluster",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
        }
        try:
            created = await self._object(
                f"cargo {name!r}",
                self._custom.create_namespaced_custom_object,
                GROUP,
                VERSION,
                tenant,
                CARGOS,
                obj,
            )
        except Conflict:
            try:
                body = await self._get_cargo_body(tenant, name)
                going = bool(body["metadata"].get("deletionTimestamp"))
            except NotFound:
                going = True  # gone between the two calls: it was being deleted
            why = service.cargo_being_deleted if going else service.cargo_name_taken
            raise Conflict(why(name, tenant)) from None
        return _cargo(created)

    @override
    async def create_cargo(self, tenant: str, body: CargoCreate) -> Cargo:
        mc_name = body.spec.mini_cluster
        async with self._exclusive(tenant, mc_name):
            mc = await self._live_mc_body(tenant, mc_name)
            existing = await self._cargo_bodies(tenant, mc_name)
            facts = self._facts(_mc(mc), existing)
            why = service.create_refusal(mc_name, _mc(mc).spec, facts, body.spec)
            if why is not None:
                raise Invalid(why, [FieldError(["body", "spec", "replicas"], why)])
            engine = await self._snapshot()
            never = await asyncio.to_thread(service.never_placed, engine, tenant, body.spec)
            if never is not None:
                raise Invalid(never)
            name = (
                body.name
                or service.next_names(
                    mc_name,
                    {b["metadata"]["name"] for b in existing},
                    1,
                    _mc(mc).spec.template is not None,
                )[0]
            )
            return await self._create_cargo(tenant, mc, name, body.spec)

    @override
    async def delete_cargo(
        self, tenant: str, name: str, grace_period_seconds: int | None = None
    ) -> None:
        await self._live_cargo_body(tenant, name)  # one being deleted is gone already
        await self._call(
            _Subject.cargo(name, tenant),
            self._custom.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            tenant,
            CARGOS,
            name,
            grace_period_seconds=grace_period_seconds,
            propagation_policy="Foreground",
        )

    # --- grow, shrink, explain --------------------------------------------------------------

    def _facts(self, mc: MiniCluster, existing: list[dict[str, Any]]) -> list[service.CargoFacts]:
        facts = []
        for body in existing:
            cargo = _cargo(body)
            index = (body["metadata"].get("labels") or {}).get(TEMPLATE_INDEX_LABEL, "")
            facts.append(
                service.CargoFacts(
                    name=cargo.name,
                    gpus=cargo.spec.gpus,
                    active=cargo.status.phase not in TERMINAL and not _taken_back(body),
                    template=int(index) if index.isdigit() else None,
                    created=cargo.created_at.timestamp(),
                    nodes=cargo.spec.replicas,
                    deleting=bool(body["metadata"].get("deletionTimestamp")),
                )
            )
        return facts

    async def _patch_mc(self, tenant: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the MiniCluster's object with ``body``; the object as stored after."""
        return await self._object(
            _Subject.minicluster(name, tenant),
            self._custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            tenant,
            MCS,
            name,
            body,
        )

    async def _set_replicas(self, tenant: str, name: str, replicas: int | None) -> None:
        await self._patch_mc(tenant, name, {"spec": {"replicas": replicas}})

    @override
    async def grow(self, tenant: str, name: str, request: GrowRequest) -> GrowResult:
        async with self._exclusive(tenant, name):
            mc_body = await self._live_mc_body(tenant, name)
            mc = _mc(mc_body)
            existing = await self._cargo_bodies(tenant, None)
            mine = [b for b in existing if (b.get("spec") or {}).get("miniCluster") == name]
            shapes = (
                None if request.cargos is None else [(c.name, c.spec(name)) for c in request.cargos]
            )
            engine = await self._snapshot()
            never = await asyncio.to_thread(
                service.impossible_grow, engine, tenant, name, mc.spec, shapes
            )
            if never is not None:
                raise Invalid(never)
            try:
                plan = service.plan_grow(
                    name,
                    mc.spec,
                    self._facts(mc, mine),
                    request.count,
                    shapes,
                    taken={b["metadata"]["name"] for b in existing},
                )
            except service.ServiceError as err:
                raise Invalid(str(err)) from None
            if plan.replicas is not None:
                await self._set_replicas(tenant, name, plan.replicas)
            for cargo_name, spec in plan.creates:
                await self._create_cargo(tenant, mc_body, cargo_name, spec)
            grants = [
                CargoGrant(
                    name=g.name,
                    gpus=g.gpus,
                    added=g.added,
                    phase="Pending" if g.added else "Denied",
                    reason=g.reason,
                )
                for g in plan.grants
            ]
            reasons = list(plan.reasons)
            templated = {g.name for g in plan.grants if g.added} - {n for n, _ in plan.creates}
            await self._settle(tenant, name, grants, request, reasons, templated, mc.spec.replicas)
        if request.wait:
            timed_out = await self._wait_running(tenant, name, grants, request.timeout_seconds)
        else:
            timed_out = False
        return GrowResult.of(grants, reasons, timed_out)

    async def _settle(
        self,
        tenant: str,
        mc: str,
        grants: list[CargoGrant],
        request: GrowRequest,
        reasons: list[str],
        templated: set[str | None],
        before: int | None,
    ) -> None:
        """Wait for the operator's decision on each new cargo; without ``allow_pending`` a cargo
        it cannot place now is taken back and reported denied with the operator's reason (a
        template cargo by lowering ``spec.replicas``, from the highest index only)."""
        pending = {g.name: g for g in grants if g.added and g.name}
        deadline = time.monotonic() + min(DECISION_SECONDS, request.timeout_seconds)
        while pending:
            for cargo_name, grant in list(pending.items()):
                try:
                    cargo = _cargo(await self._live_cargo_body(tenant, cargo_name))
                except NotFound:
                    # a template cargo the operator has not created yet, or whose name a
                    # shrink's cargo, still being deleted, holds: its phase is not this grant's
                    continue
                placed = find_condition(cargo.status.conditions, "Placed")
                grant.phase = cargo.status.phase.value
                if cargo.status.phase is not CargoPhase.PENDING:
                    del pending[cargo_name]
                elif placed is not None and placed.status.value == "False":
                    grant.reason = placed.message or cargo.status.message
                    del pending[cargo_name]
            if time.monotonic() > deadline:
                break
            if pending:
                await asyncio.sleep(POLL_SECONDS)
        suffix, taken_back = True, 0
        for grant in reversed(grants):
            if not grant.added:
                continue
            template = grant.name in templated
            if grant.phase == CargoPhase.PENDING.value:
                grant.reason = grant.reason or "the operator has not placed it yet"
                if request.allow_pending or (template and not suffix):
                    reasons.append(f"{grant.name} waits: {grant.reason}")
                    suffix = suffix and not template
                    continue
                assert grant.name is not None
                if template:
                    taken_back += 1
                else:
                    await self.delete_cargo(tenant, grant.name, 0)
                grant.added, grant.phase = False, "Denied"
                reasons.append(f"{grant.name} cannot be placed now: {grant.reason}")
            else:
                suffix = suffix and not template
        if taken_back:
            kept = len([g for g in grants if g.name in templated and g.added])
            current = before or 0
            await self._set_replicas(
                tenant, mc, None if (before is None and current + kept == 0) else current + kept
            )

    async def _wait_running(
        self, tenant: str, mc: str, grants: list[CargoGrant], timeout: float
    ) -> bool:
        """Wait until each granted cargo ran or never will (:func:`service.grow_wait_over`);
        True when ``timeout`` passed first. 404 when the MiniCluster is deleted meanwhile."""
        deadline = time.monotonic() + timeout
        waiting = [g for g in grants if g.added and g.name]
        while True:
            spec: MiniClusterSpec | None = None
            try:
                mc_body = await self._get_mc_body(tenant, mc)
                deleted = bool(mc_body["metadata"].get("deletionTimestamp"))
                spec = MiniClusterSpec.model_validate(mc_body.get("spec") or {})
            except NotFound:
                deleted = True
            phases: dict[str, str | None] = {}
            for grant in waiting:
                assert grant.name is not None
                try:
                    body = await self._get_cargo_body(tenant, grant.name)
                except NotFound:
                    body = None
                gone = body is None or bool(body["metadata"].get("deletionTimestamp"))
                cargo = None if body is None else _cargo(body)
                phase = None if gone or cargo is None else cargo.status.phase.value
                if spec is not None:  # a template cargo the operator has not made yet waits
                    phase = service.awaited_phase(mc, spec, grant.name, phase, not gone)
                phases[grant.name] = phase
                grant.phase, reason = service.grant_after_wait(
                    phase, cargo.status.message if cargo is not None else ""
                )
                if reason is not None:
                    grant.reason = reason
            try:
                if service.grow_wait_over(mc, deleted, phases):
                    return False
            except service.MiniClusterDeleted as err:
                raise NotFound(str(err)) from None
            if time.monotonic() > deadline:
                return True
            await asyncio.sleep(POLL_SECONDS)

    @override
    async def shrink(self, tenant: str, name: str, request: ShrinkRequest) -> ShrinkResult:
        async with self._exclusive(tenant, name):
            mc = _mc(await self._live_mc_body(tenant, name))
            mine = await self._cargo_bodies(tenant, name)
            try:
                plan = service.plan_shrink(
                    name, mc.spec, self._facts(mc, mine), request.count, request.cargos
                )
            except service.UnknownCargos as err:
                raise NotFound(str(err)) from None
            except service.ServiceError as err:
                raise Invalid(str(err)) from None
            if plan.replicas is not None:
                # the template cargos leaving are deleted here, with the grace period asked for;
                # the operator then keeps the lower count
                await self._set_replicas(tenant, name, plan.replicas)
            for victim in plan.removed:
                with contextlib.suppress(NotFound):
                    await self.delete_cargo(tenant, victim, request.grace_period_seconds)
        return ShrinkResult(removed=plan.removed, grace_period_seconds=request.grace_period_seconds)

    @override
    async def explain(self, tenant: str, name: str) -> ExplainResult:
        mc = await self.get_minicluster(tenant, name)
        admitted = find_condition(mc.status.conditions, "Admitted")
        is_admitted = admitted is not None and admitted.status.value == "True"
        waiting = (
            mc.status.message
            or (admitted.message if admitted else "")
            or "the operator has not looked at it yet: is it running?"
        )
        listed = await self.list_cargos(tenant, name)
        engine = await self._snapshot()
        said = await asyncio.to_thread(
            service.explain_minicluster,
            engine,
            f"{tenant}/{name}",
            is_admitted,
            waiting,
            mc.spec.gpus.max,
            is_held(mc.spec),
        )
        cargos = []
        for c in listed:
            exp = (
                service.explain_cargo(
                    engine, f"{tenant}/{c.name}", c.spec, c.created_at.timestamp()
                )
                if c.status.phase is CargoPhase.PENDING
                else None
            )
            cargos.append(
                CargoExplain(
                    name=c.name,
                    phase=c.status.phase.value,
                    message=exp.sentence() if exp else c.status.message,
                    explanation=kube_snapshot.explanation_out(exp),
                )
            )
        return ExplainResult(
            name=name,
            admitted=is_admitted,
            # the operator's own sentence while it waits: its engine is the live one
            message=(mc.status.message if not is_admitted and mc.status.message else said.message),
            queue_position=mc.status.queue_position,
            explanation=kube_snapshot.explanation_out(said.explanation),
            cargos=cargos,
        )

    # --- cluster-wide -----------------------------------------------------------------------

    @override
    async def nodes(self) -> list[NodeOut]:
        nodes = await self._raw("nodes", self._core.list_node)
        pods = await self._live_pods()
        mcs = await self._raw(
            "miniclusters", self._custom.list_cluster_custom_object, GROUP, VERSION, MCS
        )
        reserved: dict[tuple[str, int], str] = {}
        for body in mcs:
            meta = body["metadata"]
            status = MiniClusterStatus.model_validate(body.get("status") or {})
            for held_on, ids in status.reservation.items():
                for gpu in ids:
                    reserved[(held_on, gpu)] = f"{meta['namespace']}/{meta['name']}"
        used: dict[tuple[str, int], tuple[str | None, str | None]] = {}
        for pod in pods:
            meta = pod["metadata"]
            node_name: str | None = (pod.get("spec") or {}).get("nodeName")
            labels = meta.get("labels") or {}
            if not node_name or CARGO_LABEL not in labels:
                continue
            gpu_ids = (meta.get("annotations") or {}).get(GPU_IDS_ANNOTATION, "")
            holder = (
                f"{meta['namespace']}/{labels.get(MC_LABEL, '')}",
                f"{meta['namespace']}/{labels[CARGO_LABEL]}",
            )
            for gpu in filter(None, gpu_ids.split(",")):
                used[(node_name, int(gpu))] = holder
        published = await self._dra_state()
        busy = kube_snapshot.busy_gpus(nodes, pods, published)
        out: list[NodeOut] = []
        for body in nodes:
            view = node_view(body, ())
            view = with_dra(view, published.nodes.get(view.name))
            if not view.gpu_count or not view.managed:
                continue
            gpus = []
            for gpu in range(view.gpu_count):
                mc, cargo = used.get((view.name, gpu), (None, None))
                gpus.append(
                    GpuSlotOut(
                        id=gpu,
                        reserved_for=reserved.get((view.name, gpu)),
                        mini_cluster=mc,
                        cargo=cargo,
                        busy=gpu in busy.get(view.name, ()),
                    )
                )
            labels = body["metadata"].get("labels") or {}
            product = view.gpu_product if view.dra else labels.get(GPU_PRODUCT_LABEL, "")
            out.append(
                NodeOut(
                    name=view.name,
                    gpu_product=product,
                    gpu_count=view.gpu_count,
                    ready=view.ready,
                    schedulable=view.schedulable,
                    labels=labels,
                    islands=[list(island) for island in view.islands],
                    gpus=gpus,
                )
            )
        return sorted(out, key=lambda n: n.name)

    async def _live_pods(self) -> list[dict[str, Any]]:
        """Pods that may hold GPUs: bound somewhere and not Succeeded or Failed."""
        return await self._raw(
            "pods",
            self._core.list_pod_for_all_namespaces,
            field_selector="spec.nodeName!=,status.phase!=Succeeded,status.phase!=Failed",
        )

    async def _dra_state(self) -> kube_snapshot.DraState:
        """The GPUs DRA drivers publish and the claims holding them (none where the API server
        does not serve ``resource.k8s.io/v1``)."""
        lists: list[list[dict[str, Any]]] = []
        for plural in (dra.RESOURCESLICES, dra.RESOURCECLAIMS):
            try:
                lists.append(
                    await self._raw(
                        plural,
                        self._custom.list_cluster_custom_object,
                        dra.RESOURCE_GROUP,
                        dra.RESOURCE_VERSION,
                        plural,
                    )
                )
            except NotFound:
                lists.append([])
        return kube_snapshot.DraState(*lists)

    async def _raw(
        self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> list[dict[str, Any]]:
        """The ``items`` of a listing, read and parsed as plain JSON in the worker thread: the
        body (megabytes on a large cluster) is read under the call's time limit, and neither
        its reading nor its parsing holds the event loop every request shares."""

        def listed(**limits: Any) -> list[dict[str, Any]]:  # ``_request_timeout``
            resp = fn(*args, _preload_content=False, **kwargs, **limits)
            items: list[dict[str, Any]] = json.loads(resp.data)["items"]
            return items

        return await self._call(what, listed)

    async def _snapshot(self) -> Engine:
        """The live state as a what-if engine (Nodes, MiniCluster and Cargo statuses)."""
        nodes = await self._raw("nodes", self._core.list_node)
        mcs = await self._raw(
            "miniclusters", self._custom.list_cluster_custom_object, GROUP, VERSION, MCS
        )
        cargos = await self._raw(
            "cargos", self._custom.list_cluster_custom_object, GROUP, VERSION, CARGOS
        )
        pods = await self._live_pods()
        published = await self._dra_state()
        engine = await asyncio.to_thread(
            kube_snapshot.build, nodes, mcs, cargos, None, pods, published
        )
        engine.set_shares(await self._share_table())
        return engine

    async def _share_table(self) -> ShareTable:
        """The TenantShares and the namespaces they select (none before the CRD is installed)."""
        try:
            bodies = await self._raw(
                TENANTSHARES, self._custom.list_cluster_custom_object, GROUP, VERSION, TENANTSHARES
            )
        except NotFound:
            return ShareTable()
        if not bodies:
            return ShareTable()
        namespaces = await self._raw("namespaces", self._core.list_namespace)
        labels = {n["metadata"]["name"]: n["metadata"].get("labels") or {} for n in namespaces}
        return kube_shares.table(bodies, labels)

    # --- hosts: Kubernetes nodes are not Crane's to add ---------------------------------------

    @override
    async def add_host(self, body: HostCreate) -> Host:
        raise HostsManagedByKubernetes()

    @override
    async def tenant_shares(self) -> dict[str, list[TenantShareStatus]]:
        return share_statuses(await self._snapshot())

    @override
    async def set_tenant_shares(self, tenant: str, shares: TenantShares) -> None:
        raise SharesManagedByKubernetes()

    @override
    async def list_hosts(self) -> list[Host]:
        raise HostsManagedByKubernetes()

    @override
    async def get_host(self, name: str) -> Host:
        raise HostsManagedByKubernetes()

    @override
    async def remove_host(self, name: str, preempt: bool) -> Host:
        raise HostsManagedByKubernetes()

    @override
    async def dry_run(self, tenant: str, request: DryRunRequest) -> DryRunResult:
        if request.cargo is not None:
            await self._live_mc_body(tenant, request.cargo.mini_cluster)
            engine = await self._snapshot()
            return await asyncio.to_thread(
                kube_snapshot.dry_run_cargo, engine, tenant, request.cargo
            )
        assert request.mini_cluster is not None
        engine = await self._snapshot()
        return await asyncio.to_thread(
            kube_snapshot.dry_run_minicluster, engine, tenant, request.mini_cluster
        )

    @override
    def cargo_logs(
        self,
        tenant: str,
        name: str,
        replica: int = 0,
        follow: bool = False,
        tail: int | None = None,
        since_seconds: int | None = None,
    ) -> AsyncIterator[str]:
        return self._logs(tenant, name, replica, follow, tail, since_seconds)

    async def _logs(
        self,
        tenant: str,
        name: str,
        replica: int,
        follow: bool,
        tail: int | None,
        since_seconds: int | None,
    ) -> AsyncIterator[str]:
        pod = f"{name}-{replica}"
        limit = self._settings.kube_timeout  # a followed log may be silent for long
        try:
            # Without preloading, the client answers the raw urllib3 response (typed ``str``).
            resp = cast(
                HTTPResponse,
                await self._call(
                    f"pod {pod!r} of cargo {name!r} (is it placed? replica {replica} exists?)",
                    self._core.read_namespaced_pod_log,
                    pod,
                    tenant,
                    follow=follow,
                    tail_lines=tail,
                    since_seconds=since_seconds,
                    _preload_content=False,
                    _request_timeout=(limit, None if follow else limit),
                ),
            )
        except Invalid as err:  # Kubernetes answers 400 when a container has no log to give
            message = err.detail.partition(" is invalid: ")[2] or err.detail
            raise Unavailable(
                f"no log of pod {pod!r} yet ({message}): its container has not started, or its "
                "node serves no logs (simulated kwok nodes do not)"
            ) from None
        lines = _thread_iter(lambda: (f"{line}\n" for line in log_lines(resp.stream())))
        try:
            async for line in lines:
                yield line
        finally:
            resp.release_conn()

    @override
    async def exec_replica(self, tenant: str, name: str, request: ExecRequest) -> ExecResult:
        pod_name = f"{name}-{request.replica}"
        what = f"pod {pod_name!r} of cargo {name!r} (is it placed? has it that replica?)"
        pod = await self._call(what, self._core.read_namespaced_pod, pod_name, tenant)
        phase = pod.status.phase if pod.status is not None else None
        if phase != "Running":
            raise ExecUnsupported(
                f"pod {pod_name!r} is {phase or 'not started'}: exec needs a running replica"
            )
        node_name = pod.spec.node_name if pod.spec is not None else None
        if node_name:
            node = await self._call(f"node {node_name!r}", self._core.read_node, node_name)
            annotations = (node.metadata.annotations if node.metadata else None) or {}
            if KWOK_NODE_ANNOTATION in annotations:
                raise ExecUnsupported(
                    f"pod {pod_name!r} runs on {node_name!r}, a node simulated by kwok: it has "
                    "no container to run a command in"
                )
        assert self._api is not None  # _call above raised Unavailable otherwise
        configuration = self._api.configuration
        # Up to timeoutSeconds: on a thread of its own, not one the rest of the API shares.
        return await on_own_thread(
            self._mapped(what, _exec, configuration, tenant, pod_name, request),
            f"crane-exec-{name}-{request.replica}",
        )

    @override
    def events(self) -> AsyncIterator[Event | Snapshot]:
        if self._api is None:
            return _never()
        return _thread_iter(self._watch_cargos, self._watch_miniclusters)

    def _watch_cargos(self) -> Iterator[Event | Snapshot]:
        """List the cargos (a usage snapshot), then watch from the list's resourceVersion and
        turn phase changes into events; list again when the watch answers 410 Gone."""
        seen: dict[str, CargoPhase] = {}
        noticed: set[str] = set()
        for kind, body in _list_and_watch(self._custom, CARGOS, self._settings.kube_timeout):
            if kind == LISTED:
                cargos = [c for c in map(_parsed, body["items"]) if c is not None]
                seen = {f"{c.tenant}/{c.name}": c.status.phase for c in cargos}
                yield _snapshot(cargos)
                continue
            cargo = _parsed(body)
            if cargo is not None:
                yield from self._changes(kind, cargo, seen, noticed)

    def _watch_miniclusters(self) -> Iterator[Event]:
        """Watch the MiniClusters and say, as Docker mode does, when one is admitted (its
        ``Admitted`` condition turns True: an ``Admitted`` event with the condition's message,
        "2 L20 GPUs reserved", and its ``gpus.min``) and when one is gone (the object itself,
        after its finalizer: ``Deleted`` without a cargo). Those admitted at a listing are
        remembered, not announced."""
        admitted: set[str] = set()
        for kind, body in _list_and_watch(self._custom, MCS, self._settings.kube_timeout):
            if kind == LISTED:
                admitted = {key for item in body["items"] if (key := _admitted_key(item))}
                continue
            meta = body.get("metadata", {})
            if not (meta.get("namespace") and meta.get("name")):
                continue
            key = f"{meta['namespace']}/{meta['name']}"
            if kind == "DELETED":
                admitted.discard(key)
                yield Event(
                    type=EventType.DELETED,
                    tenant=meta["namespace"],
                    mini_cluster=meta["name"],
                    message="MiniCluster deleted",
                    time=datetime.now(UTC),
                )
                continue
            if _admitted_key(body) is None:
                admitted.discard(key)
            elif key not in admitted:
                admitted.add(key)
                cond = find_condition(_mc_conditions(body), "Admitted")
                yield Event(
                    type=EventType.ADMITTED,
                    tenant=meta["namespace"],
                    mini_cluster=meta["name"],
                    gpus=int(((body.get("spec") or {}).get("gpus") or {}).get("min") or 0),
                    message=cond.message if cond is not None else "",
                    time=datetime.now(UTC),
                )

    def _changes(
        self, kind: str, cargo: Cargo, seen: dict[str, CargoPhase], noticed: set[str]
    ) -> Iterator[Event]:
        """The events one watch notification of ``cargo`` means, given the phases seen."""
        key = f"{cargo.tenant}/{cargo.name}"
        if kind == "DELETED":
            noticed.discard(key)
            if seen.pop(key, None) is not None:
                yield self._event(EventType.DELETED, cargo, "cargo deleted")
            return
        before, now = seen.get(key), cargo.status.phase
        seen[key] = now
        notice = find_condition(cargo.status.conditions, "Preempted")
        if notice is not None and notice.status.value == "True" and key not in noticed:
            noticed.add(key)
            yield self._event(EventType.PREEMPTING, cargo, notice.message)
        elif notice is None or notice.status.value != "True":
            noticed.discard(key)
        if before == now or now is CargoPhase.PENDING:
            return
        placing = before in (None, CargoPhase.PENDING)
        if now is CargoPhase.PLACED and not placing:
            return  # a replica of a running gang ended: no new placement, as in Docker mode
        if now is CargoPhase.RUNNING and placing:
            yield self._event(EventType.PLACED, cargo, _phase_event(CargoPhase.PLACED, cargo))
        yield self._event(EventType(now.value), cargo, _phase_event(now, cargo))

    @staticmethod
    def _event(kind: EventType, cargo: Cargo, message: str) -> Event:
        """``cargo``'s event, at its placement or finish time where its status has one."""
        at = {EventType.PLACED: cargo.status.placed_at}.get(kind)
        if kind in (EventType.SUCCEEDED, EventType.FAILED, EventType.PREEMPTED):
            at = cargo.status.finished_at
        ended = kind in (EventType.SUCCEEDED, EventType.FAILED)
        return Event(
            type=kind,
            tenant=cargo.tenant,
            mini_cluster=cargo.spec.mini_cluster,
            cargo=cargo.name,
            gpus=cargo.spec.gpus,
            message=message,
            exit_code=cargo.status.exit_code if ended else None,
            time=at or datetime.now(UTC),
        )


def _phase_event(phase: CargoPhase, cargo: Cargo) -> str:
    """The message of ``cargo``'s API event as it enters ``phase``, in Docker mode's words
    (:func:`crane.lifecycle.cargo_status.phase_event`), from its status: how it was placed from
    its ``Placed`` condition, the replicas that succeeded from ``status.replicas`` (else
    ``spec.replicas``)."""
    placed = find_condition(cargo.status.conditions, "Placed")
    replicas = cargo.status.replicas or cargo.spec.replicas
    return cargo_status.phase_event(
        phase, placed.message if placed is not None else "", replicas, cargo.status.message
    )


LISTED = "LISTED"
"""What :func:`_list_and_watch` yields, with the whole listing, when it lists."""


def _list_and_watch(
    custom: client.CustomObjectsApi, plural: str, limit: float
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(LISTED, listing)``, then ``(ADDED|MODIFIED|DELETED, object)`` for each change after
    the listing's resourceVersion; listed again when the watch answers 410 Gone. Endless. A
    listing that takes longer than ``limit`` seconds, or a watch silent past its own end, raises
    (a stalled API server)."""
    version: str | None = None
    while True:
        if version is None:
            listing = cast(
                dict[str, Any],
                custom.list_cluster_custom_object(GROUP, VERSION, plural, _request_timeout=limit),
            )
            version = listing["metadata"]["resourceVersion"]
            yield LISTED, listing
        stream = watch.Watch().stream(
            custom.list_cluster_custom_object,
            GROUP,
            VERSION,
            plural,
            resource_version=version,
            timeout_seconds=WATCH_SECONDS,
            _request_timeout=(limit, WATCH_SECONDS + limit),
        )
        try:
            for item in stream:
                version = item["object"]["metadata"].get("resourceVersion", version)
                yield item["type"], item["object"]
        except ApiException as err:
            if err.status != 410:
                raise
            version = None


def _mc_conditions(body: Mapping[str, Any]) -> list[Condition]:
    """The conditions of a MiniCluster's wire object; one this version cannot read is left out."""
    out = []
    for raw in (body.get("status") or {}).get("conditions") or []:
        try:
            out.append(Condition.model_validate(raw))
        except ValidationError:
            continue
    return out


def _admitted_key(body: Mapping[str, Any]) -> str | None:
    """``tenant/name`` of a MiniCluster's wire object whose ``Admitted`` condition is True."""
    meta = body.get("metadata") or {}
    cond = find_condition(_mc_conditions(body), "Admitted")
    if cond is None or cond.status.value != "True":
        return None
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _parsed(body: dict[str, Any]) -> Cargo | None:
    """The cargo ``body`` describes, or None for one this version cannot read."""
    try:
        return _cargo(body)
    except (KeyError, ValidationError):
        return None


def _snapshot(cargos: list[Cargo]) -> Snapshot:
    """The placed cargos as usage holdings: Placed or Running ones live, ended ones finished
    (an ended one without ``finishedAt`` holds nothing, so its interval ends now)."""
    holdings = [
        Holding(
            tenant=c.tenant,
            minicluster=c.spec.mini_cluster,
            cargo=c.name,
            gpus=c.spec.gpus,
            placed_at=c.status.placed_at,
            finished_at=c.status.finished_at if c.status.phase in TERMINAL else None,
            state=c.status.phase.value if c.status.phase in TERMINAL else None,
            exit_code=c.status.exit_code if c.status.phase in TERMINAL else None,
        )
        for c in cargos
        if c.status.placed_at is not None
        and (c.status.phase in LIVE or (c.status.phase in TERMINAL and c.status.finished_at))
    ]
    return Snapshot(holdings=holdings, time=datetime.now(UTC))


async def _never() -> AsyncIterator[Event]:
    """No cluster, no events: wait until cancelled."""
    await asyncio.Event().wait()
    return
    yield  # never reached: it makes this an async generator


async def _thread_iter(*makes: Callable[[], Iterator[T]]) -> AsyncIterator[T]:
    """Consume blocking iterators, each in a daemon thread, and yield their items here as they
    come; ends when all of them ended, raises the first error one of them raised."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(1024)
    stop = threading.Event()

    def pump(make: Callable[[], Iterator[T]]) -> None:
        try:
            for value in make():
                if stop.is_set():
                    return
                asyncio.run_coroutine_threadsafe(queue.put(("item", value)), loop).result()
        except BaseException as exc:
            asyncio.run_coroutine_threadsafe(queue.put(("error", exc)), loop)
        else:
            asyncio.run_coroutine_threadsafe(queue.put(("end", None)), loop)

    for make in makes:
        threading.Thread(target=pump, args=(make,), daemon=True, name="crane-kube-stream").start()
    running = len(makes)
    try:
        while running:
            kind, value = await queue.get()
            if kind == "item":
                yield value
            elif kind == "error":
                raise value
            else:
                running -= 1
    finally:
        stop.set()
