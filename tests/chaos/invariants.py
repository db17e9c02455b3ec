"""Crane's safety and consistency invariants, checked from the outside only.

Kubernetes mode reads the kube-apiserver alone (Nodes, Pods, MiniClusters, Cargos,
ResourceClaims), never the
operator's memory; Docker mode reads the SQL database and the Docker engines alone. Both the
chaos tests (``tests/chaos``) and the long chaos benchmark (``benchmarks/chaos.py``) use them.

Each check returns a :class:`Violations`: invariant name -> human-readable findings. The
*safety* invariants (a GPU held twice, a node over-committed) must hold at every instant; the
*consistency* ones (orphans, partial gangs, placements, lost objects, finalizers) may be
transiently false while Crane works (a pod whose Cargo was just deleted is removed by the garbage
collector a moment later), so :func:`settle` polls until they hold or a deadline passes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

GROUP, VERSION = "crane.io", "v1alpha1"
CARGO_LABEL = "crane.io/cargo"
REPLICA_LABEL = "crane.io/replica"
GPU_IDS_ANNOTATION = "crane.io/gpu-ids"
GPU_RESOURCE = "nvidia.com/gpu"
TERMINAL_POD_PHASES = frozenset({"Succeeded", "Failed"})
TERMINAL_CARGO_PHASES = frozenset({"Succeeded", "Failed"})

SAFETY = ("double_booked_gpus", "overcommitted_nodes", "status_conflicts")
"""Invariants that must hold at every instant: any observation is a violation."""
CONSISTENCY = (
    "orphan_pods",
    "partial_gangs",
    "placement_mismatch",
    "lost_objects",
    "finalizers_left",
)
"""Invariants that must hold once Crane has caught up (checked with :func:`settle`)."""
KUBE_INVARIANTS = (*SAFETY, *CONSISTENCY, "scheduling_stalled")
"""Every invariant the Kubernetes chaos run reports, in print order."""
DOCKER_INVARIANTS = (
    "double_booked_gpus",
    "orphan_containers",
    "partial_gangs",
    "lost_objects",
    "finalizers_left",
    "scheduling_stalled",
)
"""Every invariant the Docker chaos run reports, in print order."""

Violations = dict[str, list[str]]


def empty(names: Iterable[str] = KUBE_INVARIANTS) -> Violations:
    """A violation map with every invariant present and nothing found."""
    return {name: [] for name in names}


@dataclass
class Ledger:
    """What the churn did, so "nothing lost" and "no finalizer left" can be checked.

    Keys are ``(plural, namespace, name)``; values the object's uid.
    """

    live: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """Created by the churn and not deleted: must still exist."""
    deleted: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """Deleted by the churn: must be gone (no finalizer left behind)."""

    notes: dict[tuple[str, str, str], str] = field(default_factory=dict)
    """Anything worth quoting with a finding about the object (e.g. how its delete answered)."""

    def created(self, plural: str, namespace: str, name: str, uid: str) -> None:
        """Record an object the churn created."""
        self.live[(plural, namespace, name)] = uid

    def removed(self, plural: str, namespace: str, name: str) -> None:
        """Record an object the churn deleted (its uid moves from ``live`` to ``deleted``)."""
        key = (plural, namespace, name)
        uid = self.live.pop(key, "")
        self.deleted[key] = uid

    def copy(self) -> Ledger:
        """A snapshot of the ledger (the churn thread keeps writing to the original)."""
        return Ledger(dict(self.live), dict(self.deleted), dict(self.notes))


# --- Kubernetes ---------------------------------------------------------------------------------


@dataclass
class KubeSnapshot:
    """What the kube-apiserver says, read in one go."""

    allocatable: dict[str, int]
    pods: list[dict[str, Any]]
    cargos: list[dict[str, Any]]
    miniclusters: list[dict[str, Any]]
    not_ready: set[str] = field(default_factory=set)
    """Nodes whose Ready condition is not True: their pods cannot be confirmed gone."""
    claims: list[dict[str, Any]] = field(default_factory=list)
    """ResourceClaims (every namespace; none where ``resource.k8s.io/v1`` is not served)."""


def read_claims(custom: Any) -> list[dict[str, Any]]:
    """Every ResourceClaim (``resource.k8s.io/v1``); none when the API server lacks DRA."""
    try:
        items = custom.list_cluster_custom_object("resource.k8s.io", "v1", "resourceclaims")
    except Exception as err:
        if getattr(err, "status", None) == 404:
            return []
        raise
    return list(items["items"])


def read_kube(core: Any, custom: Any) -> KubeSnapshot:
    """Read Nodes, Pods (every namespace), Cargos, MiniClusters and ResourceClaims from the API
    server.

    ``core`` is a ``CoreV1Api``, ``custom`` a ``CustomObjectsApi``; pods come back as plain dicts
    (the API's JSON) so the checks do not depend on the client's model classes.
    """
    allocatable: dict[str, int] = {}
    not_ready: set[str] = set()
    for node in core.list_node().items:
        raw = (node.status.allocatable or {}).get(GPU_RESOURCE, "0")
        allocatable[node.metadata.name] = int(raw)
        ready = [c for c in node.status.conditions or [] if c.type == "Ready"]
        if not ready or ready[0].status != "True":
            not_ready.add(node.metadata.name)
    pods = core.api_client.sanitize_for_serialization(core.list_pod_for_all_namespaces().items)
    cargos = custom.list_cluster_custom_object(GROUP, VERSION, "cargos")["items"]
    mcs = custom.list_cluster_custom_object(GROUP, VERSION, "miniclusters")["items"]
    return KubeSnapshot(
        allocatable, list(pods), list(cargos), list(mcs), not_ready, read_claims(custom)
    )


def _live(pod: Mapping[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") not in TERMINAL_POD_PHASES


def _deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def pod_gpu_ids(pod: Mapping[str, Any]) -> list[int]:
    """The GPU ids Crane gave a pod: its ``crane.io/gpu-ids`` annotation, else CRANE_GPU_IDS."""
    raw = ((pod.get("metadata") or {}).get("annotations") or {}).get(GPU_IDS_ANNOTATION)
    if raw is None:
        for container in (pod.get("spec") or {}).get("containers") or []:
            for env in container.get("env") or []:
                if env.get("name") == "CRANE_GPU_IDS":
                    raw = env.get("value") or ""
    return [int(i) for i in (raw or "").split(",") if i.strip()]


def pod_gpu_request(pod: Mapping[str, Any]) -> int:
    """``nvidia.com/gpu`` requested by a pod's containers (requests, else limits)."""
    total = 0
    for container in (pod.get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        value = (resources.get("requests") or {}).get(GPU_RESOURCE)
        if value is None:
            value = (resources.get("limits") or {}).get(GPU_RESOURCE, 0)
        total += int(value)
    return total


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def double_allocated_devices(claims: Iterable[Mapping[str, Any]]) -> list[str]:
    """Each DRA device (driver/pool/device) in the ``status.allocation`` of two claims."""
    holders: dict[str, list[str]] = defaultdict(list)
    for claim in claims:
        allocation = (claim.get("status") or {}).get("allocation") or {}
        for result in (allocation.get("devices") or {}).get("results") or []:
            device = f"{result.get('driver')}/{result.get('pool')}/{result.get('device')}"
            holders[device].append(_name(claim))
    return [
        f"device {device} allocated to claims {sorted(names)}"
        for device, names in sorted(holders.items())
        if len(names) > 1
    ]


def kube_safety(snap: KubeSnapshot) -> Violations:
    """No GPU id of a node held by two live pods and no DRA device in two allocated claims; per
    node, GPU requests <= allocatable; no (node, GPU) claimed by two Cargos'
    ``status.placement``."""
    out = empty(SAFETY)
    out["double_booked_gpus"].extend(double_allocated_devices(snap.claims))
    holders: dict[tuple[str, int], list[str]] = defaultdict(list)
    requested: dict[str, int] = defaultdict(int)
    for pod in snap.pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if not node or node not in snap.allocatable or not _live(pod):
            continue
        requested[node] += pod_gpu_request(pod)
        for gpu in pod_gpu_ids(pod):
            holders[(node, gpu)].append(_name(pod) + (" (terminating)" if _deleting(pod) else ""))
    for (node, gpu), pods in sorted(holders.items()):
        if len(pods) > 1:
            out["double_booked_gpus"].append(f"{node} GPU {gpu} held by live pods {sorted(pods)}")
    for node, count in sorted(requested.items()):
        if count > snap.allocatable[node]:
            out["overcommitted_nodes"].append(
                f"{node}: live pods request {count} {GPU_RESOURCE}, "
                f"allocatable {snap.allocatable[node]}"
            )
    claims: dict[tuple[str, int], list[str]] = defaultdict(list)
    for cargo in snap.cargos:
        status = cargo.get("status") or {}
        if _deleting(cargo) or status.get("phase") in TERMINAL_CARGO_PHASES:
            continue
        for place in status.get("placement") or []:
            for gpu in place.get("gpuIds") or []:
                claims[(place.get("node"), int(gpu))].append(_name(cargo))
    for (node, gpu), cargos in sorted(claims.items()):
        if len(set(cargos)) > 1:
            out["status_conflicts"].append(
                f"{node} GPU {gpu} in status.placement of {sorted(set(cargos))}"
            )
    return out


def kube_consistency(
    snap: KubeSnapshot, ledger: Ledger | None = None, namespaces: Iterable[str] | None = None
) -> Violations:
    """Orphans, partial gangs, placements that disagree with pods, lost objects, finalizers.

    ``namespaces`` limits the Cargo checks to the chaos run's own namespaces (None: all).
    """
    out = empty(CONSISTENCY)
    scope = set(namespaces) if namespaces is not None else None
    cargo_uids = {c["metadata"]["uid"] for c in snap.cargos}
    live_pods: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for pod in snap.pods:
        meta = pod.get("metadata") or {}
        if CARGO_LABEL not in (meta.get("labels") or {}):
            continue
        if scope is not None and meta.get("namespace") not in scope:
            continue
        if not _live(pod) or _deleting(pod):
            continue
        owners = [o for o in meta.get("ownerReferences") or [] if o.get("kind") == "Cargo"]
        if not owners or not any(o.get("uid") in cargo_uids for o in owners):
            out["orphan_pods"].append(
                f"pod {_name(pod)} has no live Cargo (owners {[o.get('name') for o in owners]})"
            )
            continue
        live_pods[owners[0]["uid"]].append(pod)
    for cargo in snap.cargos:
        meta = cargo["metadata"]
        if scope is not None and meta.get("namespace") not in scope:
            continue
        status = cargo.get("status") or {}
        if _deleting(cargo) or status.get("phase") in TERMINAL_CARGO_PHASES:
            continue
        replicas = int((cargo.get("spec") or {}).get("replicas", 1))
        pods = live_pods.get(meta["uid"], [])
        if 0 < len(pods) < replicas or len(pods) > replicas:
            out["partial_gangs"].append(
                f"cargo {_name(cargo)}: {len(pods)} live pods of {replicas} replicas "
                f"(phase {status.get('phase')})"
            )
        placed = {
            (int(p.get("replica", 0)), p.get("node"), tuple(sorted(p.get("gpuIds") or [])))
            for p in status.get("placement") or []
        }
        running = {
            (
                int((p["metadata"].get("labels") or {}).get(REPLICA_LABEL, "0")),
                p["spec"].get("nodeName"),
                tuple(sorted(pod_gpu_ids(p))),
            )
            for p in pods
        }
        if placed != running:
            out["placement_mismatch"].append(
                f"cargo {_name(cargo)} (phase {status.get('phase')}): status.placement "
                f"{sorted(placed)} but live pods {sorted(running)}"
            )
    if ledger is not None:
        present = {
            (plural, o["metadata"]["namespace"], o["metadata"]["name"]): o
            for plural, items in (("cargos", snap.cargos), ("miniclusters", snap.miniclusters))
            for o in items
        }
        for key, uid in sorted(ledger.live.items()):
            obj = present.get(key)
            if obj is None or (uid and obj["metadata"]["uid"] != uid):
                out["lost_objects"].append(
                    f"{key[0]} {key[1]}/{key[2]} was created and never deleted, but is gone"
                )
        # A deleted Cargo whose pods sit on a NotReady node waits, rightly, until they are
        # confirmed gone (as kubelet-less pods stay Terminating): not a finalizer left behind
        # while the node is down (the final check, after the node is back, still counts it).
        unreachable = {
            o.get("uid")
            for pod in snap.pods
            if (pod.get("spec") or {}).get("nodeName") in snap.not_ready
            for o in (pod.get("metadata") or {}).get("ownerReferences") or []
        }
        waiting_mcs = {
            (c["metadata"]["namespace"], (c.get("spec") or {}).get("miniCluster"))
            for c in snap.cargos
            if c["metadata"]["uid"] in unreachable
        }
        for key, uid in sorted(ledger.deleted.items()):
            obj = present.get(key)
            excused = obj is not None and (
                obj["metadata"]["uid"] in unreachable
                or (key[0] == "miniclusters" and (key[1], key[2]) in waiting_mcs)
            )
            if excused:
                continue
            if obj is not None and (not uid or obj["metadata"]["uid"] == uid):
                meta = obj["metadata"]
                out["finalizers_left"].append(
                    f"{key[0]} {key[1]}/{key[2]} deleted but still there (deletionTimestamp "
                    f"{meta.get('deletionTimestamp')}, finalizers {meta.get('finalizers')}, "
                    f"phase {(obj.get('status') or {}).get('phase')})"
                )
    return out


def settle(
    read: Callable[[], Any],
    safety: Callable[[Any], Violations],
    consistency: Callable[[Any], Violations],
    timeout: float,
    interval: float = 1.0,
) -> Violations:
    """Poll until the consistency invariants hold (or ``timeout`` passes).

    Safety findings of every poll are kept (a GPU held twice for one instant is a violation);
    consistency findings are those of the last poll. Reading errors (an API server restarting)
    are retried until the deadline.
    """
    deadline = time.monotonic() + timeout
    seen: Violations = {}
    last: Violations = {}
    error: Exception | None = None
    while True:
        try:
            snap = read()
        except Exception as err:  # API server or engine briefly away: try again
            error = err
        else:
            error = None
            for name, found in safety(snap).items():
                bucket = seen.setdefault(name, [])
                bucket.extend(f for f in found if f not in bucket)
            last = consistency(snap)
            if not any(last.values()):
                break
        if time.monotonic() > deadline:
            break
        time.sleep(interval)
    if error is not None and not last:
        raise RuntimeError(f"could not read the state to check invariants: {error}") from error
    return {**seen, **last}


def check_kube(
    core: Any,
    custom: Any,
    ledger: Ledger | None = None,
    namespaces: Iterable[str] | None = None,
    timeout: float = 30,
) -> Violations:
    """Every Kubernetes invariant, from the API server alone, allowing ``timeout`` to settle."""
    scope = list(namespaces) if namespaces is not None else None
    return settle(
        lambda: read_kube(core, custom),
        kube_safety,
        lambda s: kube_consistency(s, ledger, scope),
        timeout,
    )


# --- Docker mode ----------------------------------------------------------------------------------

DOCKER_CARGO_UID = "crane.io/cargo-uid"
DOCKER_CARGO = "crane.io/cargo"
DOCKER_TENANT = "crane.io/tenant"
DOCKER_REPLICA = "crane.io/replica"
DOCKER_GPU_IDS = "crane.io/gpu-ids"
DOCKER_MANAGED = "crane.io/managed"


@dataclass
class DockerSnapshot:
    """The SQL rows and the running Crane containers of every host."""

    cargos: list[dict[str, Any]]
    miniclusters: list[dict[str, Any]]
    containers: dict[str, list[dict[str, Any]]]
    """host name -> [{name, labels, status}]"""


def read_docker(database: str, engines: Mapping[str, Any]) -> DockerSnapshot:
    """Read ``docker_cargos`` / ``docker_miniclusters`` (SQLite, read-only) and the Crane
    containers (label ``crane.io/managed``) of each engine (``host name -> DockerClient``)."""
    conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    conn.row_factory = sqlite3.Row
    try:
        cargos = [dict(r) for r in conn.execute("SELECT * FROM docker_cargos")]
        mcs = [dict(r) for r in conn.execute("SELECT * FROM docker_miniclusters")]
    finally:
        conn.close()
    containers: dict[str, list[dict[str, Any]]] = {}
    for host, engine in engines.items():
        found = engine.containers.list(all=True, filters={"label": DOCKER_MANAGED})
        containers[host] = [
            {"name": c.name, "labels": dict(c.labels), "status": c.status} for c in found
        ]
    return DockerSnapshot(cargos, mcs, containers)


def _docker_gpu_ids(labels: Mapping[str, str]) -> list[int]:
    return [int(i) for i in (labels.get(DOCKER_GPU_IDS) or "").split(",") if i.strip()]


def docker_safety(snap: DockerSnapshot) -> Violations:
    """No GPU id of a host in two running containers."""
    out: Violations = {"double_booked_gpus": []}
    for host, containers in sorted(snap.containers.items()):
        holders: dict[int, list[str]] = defaultdict(list)
        for c in containers:
            if c["status"] in ("running", "restarting", "created", "paused"):
                for gpu in _docker_gpu_ids(c["labels"]):
                    holders[gpu].append(c["name"])
        for gpu, names in sorted(holders.items()):
            if len(names) > 1:
                out["double_booked_gpus"].append(f"{host} GPU {gpu} in containers {sorted(names)}")
    return out


def docker_consistency(snap: DockerSnapshot, ledger: Ledger | None = None) -> Violations:
    """No running container without a cargo row; every cargo all-or-nothing; nothing lost."""
    out: Violations = {
        "orphan_containers": [],
        "partial_gangs": [],
        "lost_objects": [],
        "finalizers_left": [],
    }
    rows = {c["uid"]: c for c in snap.cargos}
    running: dict[str, int] = defaultdict(int)
    for host, containers in sorted(snap.containers.items()):
        for c in containers:
            if c["status"] != "running":
                continue
            uid = c["labels"].get(DOCKER_CARGO_UID, "")
            row = rows.get(uid)
            if row is None:
                out["orphan_containers"].append(
                    f"{host}: container {c['name']} runs for cargo "
                    f"{c['labels'].get(DOCKER_CARGO)} (uid {uid}) that has no row"
                )
                continue
            running[uid] += 1
    for uid, row in rows.items():
        if row.get("deleting") or row.get("phase") in TERMINAL_CARGO_PHASES:
            continue
        replicas = int(json.loads(row["spec"]).get("replicas", 1))
        count = running.get(uid, 0)
        if 0 < count < replicas or count > replicas:
            out["partial_gangs"].append(
                f"cargo {row['tenant']}/{row['name']}: {count} running "
                f"containers of {replicas} replicas ({row['phase']})"
            )
    if ledger is not None:
        present = {("cargos", r["tenant"], r["name"]): r for r in snap.cargos}
        present.update({("miniclusters", r["tenant"], r["name"]): r for r in snap.miniclusters})
        for key in sorted(ledger.live):
            if key not in present:
                out["lost_objects"].append(
                    f"{key[0]} {key[1]}/{key[2]} was created and never deleted, but is gone"
                )
        for key in sorted(ledger.deleted):
            if key in present:
                row = present[key]
                out["finalizers_left"].append(
                    f"{key[0]} {key[1]}/{key[2]} deleted but its row is still "
                    f"there (deleting={row.get('deleting')}, phase {row.get('phase')}) "
                    f"{ledger.notes.get(key, '')}"
                )
    return out


def check_docker(
    database: str, engines: Mapping[str, Any], ledger: Ledger | None = None, timeout: float = 30
) -> Violations:
    """Every Docker-mode invariant, from SQL and the engines alone, allowing ``timeout``."""
    return settle(
        lambda: read_docker(database, engines),
        docker_safety,
        lambda s: docker_consistency(s, ledger),
        timeout,
    )


def summary(found: Mapping[str, list[str]], limit: int = 5) -> str:
    """A few lines per violated invariant, for a failure message or a log."""
    lines = []
    for name, items in found.items():
        if items:
            lines.append(f"{name}: {len(items)}")
            lines.extend(f"  - {item}" for item in items[:limit])
            if len(items) > limit:
                lines.append(f"  ... and {len(items) - limit} more")
    return "\n".join(lines) or "no violation"
