"""Dynamic Resource Allocation (``resource.k8s.io/v1``): GPUs published in ResourceSlices.

Pure dict helpers, no client (the lifecycle reads them):

- :func:`slice_view` and :func:`dra_node` turn the ResourceSlices a GPU DRA driver publishes
  for a node (NVIDIA's ``gpu.nvidia.com`` by default) into what the engine needs: the GPUs in
  id order (by their ``index`` attribute), the product (``productName``, spaces written as
  ``-`` as GPU Feature Discovery does), memory, uuids and the node's islands;
- :func:`claim_view` reduces a ResourceClaim to the devices allocated to it and whose it is;
- :func:`build_claim`, :func:`allocation` and :func:`claim_pod_spec` make the claim of one
  replica for exactly the GPUs Crane chose, its ``status.allocation`` (written as a scheduler
  does) and the pod's reference to it.

Islands (GPUs that share a fast path, filled first by the engine) come from device attributes,
the first that every GPU of the node carries: ``cliqueId`` (an NVLink clique: GPUs of one clique
share NVLink), then ``numaNode``, then ``resource.kubernetes.io/pcieRoot`` (the standard PCIe
root attribute); a node whose GPUs carry none of them is one island.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crane.kube.names import CARGO_LABEL, MINICLUSTER_LABEL, PREFIX, REPLICA_LABEL

RESOURCE_GROUP = "resource.k8s.io"
RESOURCE_VERSION = "v1"
RESOURCE_API = f"{RESOURCE_GROUP}/{RESOURCE_VERSION}"
RESOURCESLICES = "resourceslices"
RESOURCECLAIMS = "resourceclaims"
DEVICECLASSES = "deviceclasses"

GPU_DRIVERS: frozenset[str] = frozenset({"gpu.nvidia.com"})
"""DRA drivers whose devices are GPUs Crane schedules."""
DEVICE_CLASS = "gpu.nvidia.com"
"""The DeviceClass Crane's claims name (NVIDIA's DRA driver installs it)."""
CLAIM_REQUEST = "gpus"
"""The name of the one request in a Crane claim."""
POD_CLAIM = "crane-gpus"
"""The name under which a pod refers to its claim (``spec.resourceClaims[].name``)."""
POD_LABEL = f"{PREFIX}pod"
"""On a Crane claim: the name of the pod it is for."""

INDEX_ATTR = "index"
UUID_ATTR = "uuid"
PRODUCT_ATTR = "productName"
TYPE_ATTR = "type"
MEMORY_CAPACITY = "memory"
ISLAND_ATTRS: tuple[str, ...] = ("cliqueId", "numaNode", "resource.kubernetes.io/pcieRoot")
"""Device attributes that group a node's GPUs into islands, in order of preference."""


@dataclass(frozen=True)
class Device:
    """One GPU as a slice publishes it."""

    name: str
    index: int | None
    product: str
    uuid: str
    memory: str
    island: tuple[str, ...]
    """The value of each of :data:`ISLAND_ATTRS` ("" where absent)."""


@dataclass(frozen=True)
class SliceView:
    """The fields of a ResourceSlice Crane uses; ``devices`` are the GPUs only."""

    name: str
    node: str
    driver: str
    pool: str
    generation: int
    devices: tuple[Device, ...]


@dataclass(frozen=True)
class DraNode:
    """A node's GPUs as its DRA driver publishes them; GPU id ``i`` is ``devices[i]``."""

    driver: str
    pool: str
    devices: tuple[str, ...]
    product: str
    islands: tuple[tuple[int, ...], ...]
    uuids: tuple[str, ...] = ()
    memory: str = ""

    def gpu_id(self, driver: str, pool: str, device: str) -> int | None:
        """The GPU id of a device of this node, None when it is not one of its GPUs."""
        if driver != self.driver or pool != self.pool:
            return None
        try:
            return self.devices.index(device)
        except ValueError:
            return None


@dataclass(frozen=True)
class ClaimView:
    """A ResourceClaim: whose it is and the devices allocated to it."""

    namespace: str
    name: str
    uid: str
    pod: str | None
    """For Crane's claims, the name of the pod it is for (label :data:`POD_LABEL`)."""
    owner_uid: str | None
    devices: tuple[tuple[str, str, str], ...]
    """(driver, pool, device) allocated; empty while not allocated."""
    deleting: bool = False

    @property
    def key(self) -> str:
        """``namespace/name``."""
        return f"{self.namespace}/{self.name}"


def _attr(attrs: Mapping[str, Any], name: str) -> Any:
    """An attribute's value, whatever its type (``int``, ``string``, ``version``, ``bool``)."""
    value = attrs.get(name)
    if not isinstance(value, Mapping):
        return None
    for kind in ("int", "string", "version", "bool"):
        if kind in value:
            return value[kind]
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _product(text: str) -> str:
    return "-".join(text.split())


def slice_view(body: Mapping[str, Any], drivers: Iterable[str] = GPU_DRIVERS) -> SliceView | None:
    """The GPUs of a ResourceSlice; None when it is not a GPU driver's or names no node.

    Devices whose ``type`` attribute says something other than ``gpu`` (MIG devices) are left
    out: Crane hands out whole GPUs.
    """
    spec = body.get("spec") or {}
    driver = str(spec.get("driver", ""))
    node = spec.get("nodeName")
    if driver not in set(drivers) or not node:
        return None
    pool = spec.get("pool") or {}
    devices: list[Device] = []
    for dev in spec.get("devices") or []:
        attrs = dev.get("attributes") or {}
        kind = _attr(attrs, TYPE_ATTR)
        if kind not in (None, "gpu"):
            continue
        index = _attr(attrs, INDEX_ATTR)
        memory = ((dev.get("capacity") or {}).get(MEMORY_CAPACITY) or {}).get("value", "")
        devices.append(
            Device(
                name=str(dev.get("name", "")),
                index=index if isinstance(index, int) else None,
                product=_product(str(_attr(attrs, PRODUCT_ATTR) or "")),
                uuid=str(_attr(attrs, UUID_ATTR) or ""),
                memory=str(memory),
                island=tuple(_text(_attr(attrs, a)) for a in ISLAND_ATTRS),
            )
        )
    return SliceView(
        name=str((body.get("metadata") or {}).get("name", "")),
        node=str(node),
        driver=driver,
        pool=str(pool.get("name", "")),
        generation=int(pool.get("generation", 0) or 0),
        devices=tuple(devices),
    )


def _islands(devices: Sequence[Device]) -> tuple[tuple[int, ...], ...]:
    for pos in range(len(ISLAND_ATTRS)):
        values = [d.island[pos] for d in devices]
        if all(values):
            groups: dict[str, list[int]] = {}
            for gpu, value in enumerate(values):
                groups.setdefault(value, []).append(gpu)
            return tuple(tuple(g) for g in sorted(groups.values()))
    return (tuple(range(len(devices))),) if devices else ()


def dra_node(slices: Iterable[SliceView]) -> DraNode | None:
    """A node's GPUs from its slices: the newest generation of the first driver's pool (by
    name) that has GPUs; None when there are none. GPUs are ordered by ``index``, then name."""
    best: dict[tuple[str, str], list[SliceView]] = {}
    for s in slices:
        if s.devices:
            best.setdefault((s.driver, s.pool), []).append(s)
    if not best:
        return None
    driver, pool = min(best)
    newest = max(s.generation for s in best[(driver, pool)])
    seen: dict[str, Device] = {}
    for s in best[(driver, pool)]:
        if s.generation == newest:
            for d in s.devices:
                seen.setdefault(d.name, d)
    devices = sorted(
        seen.values(), key=lambda d: (d.index is None, d.index or 0, len(d.name), d.name)
    )
    products = [d.product for d in devices if d.product]
    return DraNode(
        driver=driver,
        pool=pool,
        devices=tuple(d.name for d in devices),
        product=max(set(products), key=products.count) if products else "",
        islands=_islands(devices),
        uuids=tuple(d.uuid for d in devices),
        memory=devices[0].memory if devices else "",
    )


def claim_view(body: Mapping[str, Any]) -> ClaimView:
    """A ResourceClaim reduced to its owner and its allocated devices."""
    meta = body.get("metadata") or {}
    allocation = (body.get("status") or {}).get("allocation") or {}
    results = (allocation.get("devices") or {}).get("results") or []
    owners = meta.get("ownerReferences") or []
    return ClaimView(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        pod=(meta.get("labels") or {}).get(POD_LABEL),
        owner_uid=owners[0].get("uid") if owners else None,
        devices=tuple(
            (str(r.get("driver", "")), str(r.get("pool", "")), str(r.get("device", "")))
            for r in results
        ),
        deleting=bool(meta.get("deletionTimestamp")),
    )


def claim_name(pod_name: str) -> str:
    """The name of the claim of a replica's pod."""
    return f"{pod_name}-gpus"


def build_claim(
    namespace: str, pod_name: str, labels: Mapping[str, str], count: int
) -> dict[str, Any]:
    """The ResourceClaim of a replica's pod: ``count`` GPUs of :data:`DEVICE_CLASS`, with the
    pod's MiniCluster, cargo and replica labels (of ``labels``) and :data:`POD_LABEL`. Its owner
    (the pod) is set when the pod's uid is known."""
    keep = {k: labels[k] for k in (MINICLUSTER_LABEL, CARGO_LABEL, REPLICA_LABEL) if k in labels}
    return {
        "apiVersion": RESOURCE_API,
        "kind": "ResourceClaim",
        "metadata": {
            "name": claim_name(pod_name),
            "namespace": namespace,
            "labels": {**keep, POD_LABEL: pod_name},
        },
        "spec": {
            "devices": {
                "requests": [
                    {
                        "name": CLAIM_REQUEST,
                        "exactly": {
                            "deviceClassName": DEVICE_CLASS,
                            "allocationMode": "ExactCount",
                            "count": count,
                        },
                    }
                ]
            }
        },
    }


def pod_owner(name: str, uid: str) -> dict[str, Any]:
    """An ownerReference to a pod (the claim goes with it). Without ``blockOwnerDeletion``:
    setting it would need ``pods/finalizers`` rights where OwnerReferencesPermissionEnforcement
    is on, and a pod's deletion need not wait for its claim."""
    return {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid, "controller": True}


def allocation(node_name: str, node: DraNode, gpu_ids: Iterable[int]) -> dict[str, Any]:
    """A claim's ``status.allocation``: the GPUs ``gpu_ids`` of the node (what kube-scheduler
    writes when it allocates a claim)."""
    return {
        "devices": {
            "results": [
                {
                    "request": CLAIM_REQUEST,
                    "driver": node.driver,
                    "pool": node.pool,
                    "device": node.devices[g],
                }
                for g in gpu_ids
            ]
        },
        "nodeSelector": {
            "nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}
            ]
        },
    }


def claim_status(alloc: Mapping[str, Any], pod_name: str, pod_uid: str) -> dict[str, Any]:
    """A claim's ``status``: ``alloc`` (:func:`allocation`), reserved for the pod, as
    kube-scheduler leaves it (the kubelet prepares devices only for pods the claim names)."""
    return {
        "allocation": dict(alloc),
        "reservedFor": [{"resource": "pods", "name": pod_name, "uid": pod_uid}],
    }


def claim_pod_spec(pspec: dict[str, Any], pod_name: str) -> None:
    """Make a pod spec get its GPUs from its claim: ``spec.resourceClaims`` names it and the
    first container uses it; no ``nvidia.com/gpu`` resources then (the caller removed them)."""
    pspec["resourceClaims"] = [{"name": POD_CLAIM, "resourceClaimName": claim_name(pod_name)}]
    first = pspec["containers"][0]
    first.setdefault("resources", {})["claims"] = [{"name": POD_CLAIM}]


def pod_claim(pod_spec: Mapping[str, Any]) -> str:
    """The name of the claim a pod gets its GPUs from ("" without one)."""
    for ref in pod_spec.get("resourceClaims") or []:
        if ref.get("name") == POD_CLAIM:
            return str(ref.get("resourceClaimName") or "")
    return ""


def nodes_of(slices: Iterable[SliceView]) -> dict[str, DraNode]:
    """node name -> its GPUs (:func:`dra_node`), for the nodes some GPU driver's slice names."""
    by_node: dict[str, list[SliceView]] = {}
    for s in slices:
        by_node.setdefault(s.node, []).append(s)
    out: dict[str, DraNode] = {}
    for node, views in by_node.items():
        found = dra_node(views)
        if found is not None:
            out[node] = found
    return out


def held_devices(
    nodes: Mapping[str, DraNode],
    claims: Iterable[ClaimView],
    own: Callable[[ClaimView], tuple[str, frozenset[int]] | None],
) -> dict[str, set[int]]:
    """node -> GPU ids that allocated claims hold, except those a live Crane pod holds through
    its own claim: ``own(claim)`` says (node, GPU ids) of that pod, or None when the claim is
    not a live Crane pod's (another's claim, or one whose pod is gone, done or replaced)."""
    pools = {(d.driver, d.pool): (name, d) for name, d in nodes.items()}
    out: dict[str, set[int]] = {}
    for claim in claims:
        if not claim.devices:
            continue
        mine = own(claim)
        for driver, pool, device in claim.devices:
            found = pools.get((driver, pool))
            gpu = found[1].gpu_id(driver, pool, device) if found else None
            if found is None or gpu is None:
                continue
            if mine is not None and mine[0] == found[0] and gpu in mine[1]:
                continue
            out.setdefault(found[0], set()).add(gpu)
    return out
