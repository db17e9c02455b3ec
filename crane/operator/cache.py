"""What the operator knows of the cluster, fed by watch events and read by the scheduling loop.

Only the fields the loop needs are kept: Nodes as :class:`NodeView` (with their GPUs from the
ResourceSlices of a GPU DRA driver, where one publishes them), Pods that hold GPUs or belong to
Crane as :class:`PodView`, ResourceClaims as :class:`~crane.kube.dra.ClaimView`, MiniClusters
and Cargos as trimmed bodies, GPU quotas, namespace labels and TenantShares.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from crane.kube import shares as kube_shares
from crane.kube.dra import (
    RESOURCECLAIMS,
    RESOURCESLICES,
    ClaimView,
    SliceView,
    claim_view,
    dra_node,
    pod_claim,
    slice_view,
)
from crane.kube.names import (
    APP_MANAGER_LABEL,
    CARGO_KIND,
    CARGO_LABEL,
    GPU_IDS_ANNOTATION,
    GPU_QUOTA_KEY,
    MINICLUSTER_LABEL,
    REPLICA_LABEL,
    key_of,
)
from crane.kube.nodes import NodeView, node_view, quantity, with_dra
from crane.kube.shares import TENANTSHARES
from crane.lifecycle.view import DEFAULT_GRACE_SECONDS, PodView
from crane.model.inventory import GPU_RESOURCE
from crane.model.podsecurity import DEFAULT_LEVEL, ENFORCE_LABEL, PodSecurityLevel, parse_level
from crane.model.shares import ShareTable

log = logging.getLogger(__name__)


def _gpus(pod_spec: Mapping[str, Any]) -> int:
    total = 0
    for c in pod_spec.get("containers") or []:
        res = c.get("resources") or {}
        value = (res.get("limits") or {}).get(GPU_RESOURCE) or (res.get("requests") or {}).get(
            GPU_RESOURCE
        )
        if value:
            total += quantity(value)
    return total


def pod_view(body: Mapping[str, Any]) -> PodView | None:
    """The pod as the loop sees it; None when neither Crane's nor holding GPUs on a node."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    labels = meta.get("labels") or {}
    cargo = labels.get(CARGO_LABEL)
    gpus = _gpus(spec)
    mc = labels.get(MINICLUSTER_LABEL)
    is_am = mc is not None and labels.get(APP_MANAGER_LABEL) == "true"
    app_manager = key_of(meta["namespace"], mc) if is_am and mc else None
    replica = labels.get(REPLICA_LABEL)
    owners = meta.get("ownerReferences") or []
    relabelled = False
    owner = next((o.get("name", "") for o in owners if o.get("kind") == CARGO_KIND), None)
    index = meta["name"].removeprefix(f"{owner}-") if owner else ""
    if owner and index.isdigit() and ((cargo, replica) != (owner, index) or mc is None):
        relabelled, cargo, replica = True, owner, index  # Crane's pod, relabelled by hand
    if cargo is None and app_manager is None and (gpus == 0 or not spec.get("nodeName")):
        return None
    statuses = status.get("containerStatuses") or []
    message = ""
    exit_code: int | None = None
    for cs in statuses:
        term = (cs.get("state") or {}).get("terminated")
        if term and term.get("exitCode"):
            code, why = term["exitCode"], term.get("reason", "")
            message = f"container {cs.get('name')} exited with code {code} ({why})"
            exit_code = int(code)
    return PodView(
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta.get("uid", ""),
        node=spec.get("nodeName") or "",
        gpus=gpus,
        cargo=key_of(meta["namespace"], cargo) if cargo else None,
        replica=int(replica) if replica is not None and replica.isdigit() else None,
        gpu_ids=(meta.get("annotations") or {}).get(GPU_IDS_ANNOTATION, ""),
        owner_uid=owners[0].get("uid") if owners else None,
        phase=status.get("phase") or "Pending",
        ready=bool(statuses) and all(cs.get("ready") for cs in statuses),
        deleting=bool(meta.get("deletionTimestamp")),
        message=message or status.get("message", ""),
        app_manager=app_manager if cargo is None else None,
        exit_code=exit_code,
        grace_seconds=int(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)),
        claim=pod_claim(spec) if cargo else "",
        minicluster=mc,
        relabelled=relabelled,
    )


_KEPT_META = (
    "name",
    "namespace",
    "uid",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "labels",
    "ownerReferences",
    "resourceVersion",
    "finalizers",
)


def trimmed(body: Mapping[str, Any]) -> dict[str, Any]:
    """A custom resource with only the metadata the loop uses, its spec and its status."""
    meta = body.get("metadata") or {}
    return {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in _KEPT_META if k in meta},
        "spec": body.get("spec") or {},
        "status": body.get("status") or {},
    }


def _key(kind: str, body: Mapping[str, Any]) -> str:
    """The cache key of an object: its name (cluster-scoped kinds) or ``namespace/name``."""
    meta = body.get("metadata") or {}
    if kind in ("nodes", "namespaces", TENANTSHARES, RESOURCESLICES):
        return str(meta.get("name", ""))
    return key_of(meta.get("namespace", ""), meta.get("name", ""))


def gpu_quota(body: Mapping[str, Any]) -> int | None:
    """A ResourceQuota's hard ``requests.nvidia.com/gpu``; None when it sets none."""
    hard = (body.get("spec") or {}).get("hard") or {}
    value = hard.get(GPU_QUOTA_KEY)
    return quantity(value) if value is not None else None


class ClusterCache:
    """The loop's inputs. Handlers call ``apply_*``; ``changed`` wakes the loop."""

    def __init__(self, label_keys: Iterable[str]) -> None:
        self.label_keys = tuple(label_keys)
        self.nodes: dict[str, NodeView] = {}
        """Nodes as the engine sees them: with their DRA GPUs where a driver publishes them."""
        self._plain_nodes: dict[str, NodeView] = {}
        """Nodes as their Node objects say (before ResourceSlices are taken in)."""
        self.slices: dict[str, SliceView] = {}
        """ResourceSlice name -> its GPUs (only GPU drivers' slices that name a node)."""
        self._node_slices: dict[str, set[str]] = defaultdict(set)
        self.claims: dict[str, ClaimView] = {}
        """ResourceClaims (every namespace), ``namespace/name`` -> who holds which devices."""
        self.pods: dict[str, PodView] = {}
        self.miniclusters: dict[str, dict[str, Any]] = {}
        self.cargos: dict[str, dict[str, Any]] = {}
        self.quotas: dict[str, int] = {}
        self.pod_security: dict[str, PodSecurityLevel] = {}
        """Namespace -> its ``pod-security.kubernetes.io/enforce`` level (absent: baseline)."""
        self.terminating: set[str] = set()
        """Namespaces being deleted: nothing may be created in them."""
        self.namespace_labels: dict[str, dict[str, str]] = {}
        """Namespace -> its labels (TenantShares select namespaces by label)."""
        self.tenant_shares: dict[str, dict[str, Any]] = {}
        """TenantShare name -> its body (cluster-scoped)."""
        self.services: dict[str, str] = {}
        """Crane's Services (labelled ``crane.io/minicluster``), ``namespace/name`` -> uid: one
        deleted by hand is made again at once, not when its MiniCluster next gets a pod."""
        self.changed = asyncio.Event()
        self._tick = 0
        self._touched: dict[tuple[str, str], int] = {}
        """(kind, key) -> the tick of the last event applied to it (see :meth:`resync`)."""

    def mark(self) -> int:
        """The current tick: take it before listing for :meth:`resync`."""
        return self._tick

    def resync(self, kind: str, items: Iterable[Mapping[str, Any]], since: int) -> int:
        """Heal what a watch may have missed (events lost while the API server restarted): a
        full listing of ``kind``, taken after :meth:`mark` returned ``since``, replaces every
        entry no watch event touched since then, and entries absent from it are dropped.
        Returns how many entries were dropped."""
        listed: set[str] = set()
        for item in items:
            key = _key(kind, item)
            listed.add(key)
            if self._touched.get((kind, key), -1) <= since:
                self.apply(kind, "MODIFIED", item)
        store = self._store(kind)
        ghosts = [
            k for k in list(store) if k not in listed and self._touched.get((kind, k), -1) <= since
        ]
        for key in ghosts:
            namespace, _, name = key.rpartition("/")
            self.apply(kind, "DELETED", {"metadata": {"namespace": namespace, "name": name}})
        return len(ghosts)

    def _store(self, kind: str) -> Mapping[str, Any]:
        stores: dict[str, Mapping[str, Any]] = {
            "nodes": self.nodes,
            "pods": self.pods,
            RESOURCESLICES: self.slices,
            RESOURCECLAIMS: self.claims,
            "namespaces": self.namespace_labels,
            TENANTSHARES: self.tenant_shares,
            "resourcequotas": self.quotas,
            "miniclusters": self.miniclusters,
            "cargos": self.cargos,
            "services": self.services,
        }
        return stores[kind]

    def apply(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Apply one watch event (``ADDED``/``MODIFIED``/``DELETED``/None for a listing).

        An object that cannot be read is logged and left out (as if it were deleted): one bad
        object never stops the watch, the start or the other objects."""
        try:
            self._apply(kind, event_type, body)
        except Exception:
            meta = body.get("metadata") or {}
            log.exception(
                "cannot read %s %s; left out", kind, _key(kind, {"metadata": meta}) or "?"
            )
            if event_type != "DELETED":
                self._apply(kind, "DELETED", {"metadata": meta})

    def _apply(self, kind: str, event_type: str | None, body: Mapping[str, Any]) -> None:
        deleted = event_type == "DELETED"
        meta = body.get("metadata") or {}
        name = meta.get("name", "")
        self._tick += 1
        self._touched[(kind, _key(kind, body))] = self._tick
        if kind == "nodes":
            if deleted:
                self.nodes.pop(name, None)
                self._plain_nodes.pop(name, None)
            else:
                self._plain_nodes[name] = node_view(body, self.label_keys)
                if not self._merge_node(name):
                    return
        elif kind == RESOURCESLICES:
            old = self.slices.pop(name, None)
            new = None if deleted else slice_view(body)
            if old == new:
                if new is not None:
                    self.slices[name] = new
                return
            if old is not None:
                self._node_slices[old.node].discard(name)
            if new is not None:
                self.slices[name] = new
                self._node_slices[new.node].add(name)
            for node in {s.node for s in (old, new) if s is not None}:
                self._merge_node(node)
        elif kind == RESOURCECLAIMS:
            key = key_of(meta.get("namespace", ""), name)
            claim = None if deleted else claim_view(body)
            if self.claims.get(key) == claim:
                return
            if claim is None:
                self.claims.pop(key, None)
            else:
                self.claims[key] = claim
        elif kind == "pods":
            key = key_of(meta.get("namespace", ""), name)
            pod = None if deleted else pod_view(body)
            if pod is None:
                if self.pods.pop(key, None) is None:
                    return
            else:
                if self.pods.get(key) == pod:
                    return
                self.pods[key] = pod
        elif kind == "namespaces":
            labels = {} if deleted else dict(meta.get("labels") or {})
            level = parse_level(labels.get(ENFORCE_LABEL))
            phase = (body.get("status") or {}).get("phase")
            ending = not deleted and (bool(meta.get("deletionTimestamp")) or phase == "Terminating")
            known = self.namespace_labels.get(name)
            if (
                self.pod_security.get(name, DEFAULT_LEVEL) == level
                and known == labels
                and (name in self.terminating) == ending
            ):
                return
            self.pod_security[name] = level
            if ending:
                self.terminating.add(name)
            else:
                self.terminating.discard(name)
            if deleted:
                self.namespace_labels.pop(name, None)
            else:
                self.namespace_labels[name] = labels
        elif kind == TENANTSHARES:
            if deleted:
                self.tenant_shares.pop(name, None)
            else:
                self.tenant_shares[name] = {"metadata": {"name": name}, "spec": body.get("spec")}
        elif kind == "services":
            key = key_of(meta.get("namespace", ""), name)
            uid = None if deleted else str(meta.get("uid", ""))
            if self.services.get(key) == uid:
                return
            if uid is None:
                del self.services[key]
            else:
                self.services[key] = uid
        elif kind == "resourcequotas":
            key = key_of(meta.get("namespace", ""), name)
            quota = None if deleted else gpu_quota(body)
            if quota is None:
                self.quotas.pop(key, None)
            else:
                self.quotas[key] = quota
        else:
            records: dict[str, dict[str, Any]] = (
                self.miniclusters if kind == "miniclusters" else self.cargos
            )
            key = key_of(meta.get("namespace", ""), name)
            if deleted:
                records.pop(key, None)
            else:
                cached = records.get(key)
                version = meta.get("resourceVersion")
                if (
                    cached is not None
                    and version
                    and cached["metadata"].get("resourceVersion") == version
                ):
                    return  # a listing (resync) of what the cache holds: nothing changed
                records[key] = trimmed(body)
        self.changed.set()

    def _merge_node(self, name: str) -> bool:
        """Recompute a node's view from its Node and its GPU slices; True when it changed."""
        plain = self._plain_nodes.get(name)
        if plain is None:
            return False
        names = self._node_slices.get(name) or ()
        dra = dra_node(self.slices[n] for n in names) if names else None
        view = with_dra(plain, dra)
        if self.nodes.get(name) == view:
            return False
        self.nodes[name] = view
        return True

    def load(self, kind: str, items: Iterable[Mapping[str, Any]]) -> None:
        """Take in the items of a listing of ``kind`` (:meth:`apply` with no event type)."""
        for item in items:
            self.apply(kind, None, item)

    def pods_by_cargo(self) -> dict[str, list[PodView]]:
        """Cargo key -> its pods (pods of no cargo left out)."""
        out: dict[str, list[PodView]] = defaultdict(list)
        for pod in self.pods.values():
            if pod.cargo is not None:
                out[pod.cargo].append(pod)
        return out

    def app_managers(self) -> dict[str, PodView]:
        """MiniCluster key -> its app manager pod."""
        return {p.app_manager: p for p in self.pods.values() if p.app_manager is not None}

    def namespace_level(self, namespace: str) -> PodSecurityLevel:
        """The Pod Security level of a namespace's pods (baseline when not labelled)."""
        return self.pod_security.get(namespace, DEFAULT_LEVEL)

    def namespace_terminating(self, namespace: str) -> bool:
        """Whether the namespace is being deleted (the API server refuses creates in it)."""
        return namespace in self.terminating

    def share_table(self) -> ShareTable:
        """The TenantShares and the namespaces each selects, as the engine reads them."""
        if not self.tenant_shares:
            return ShareTable()
        return kube_shares.table(self.tenant_shares.values(), self.namespace_labels)

    def namespace_quota(self, namespace: str) -> int | None:
        """The tightest ``requests.nvidia.com/gpu`` quota of a namespace, if any."""
        values = [v for k, v in self.quotas.items() if k.partition("/")[0] == namespace]
        return min(values) if values else None
