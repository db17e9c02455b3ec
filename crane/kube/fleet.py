"""Simulated GPU nodes for kwok, generated from a :class:`~crane.model.fleet.FleetSpec`.

Each node is a Node object that kwok manages (annotation ``kwok.x-k8s.io/node: fake``) with
``nvidia.com/gpu`` capacity and allocatable, GPU Feature Discovery labels, the topology labels
of :func:`crane.model.fleet.expand_group`, the ``crane.io/gpu-islands`` annotation, and Crane's
``crane.io/managed`` label and taint; and the spec's ``workers``: untainted nodes without GPUs
for the pods kube-scheduler places. kwok then marks the nodes Ready and keeps them alive.

The nodes of a group with ``dra: true`` have no ``nvidia.com/gpu`` capacity and no islands
annotation: their GPUs are published in a ResourceSlice per node, shaped like those of NVIDIA's
DRA driver for GPUs (driver ``gpu.nvidia.com``, pool = node name, devices ``gpu-<i>`` with the
attributes ``type``, ``index``, ``minor``, ``uuid``, ``productName``, ``brand``,
``architecture``, ``cudaComputeCapability``, ``driverVersion``, ``cudaDriverVersion``,
``resource.kubernetes.io/pciBusID`` and ``resource.kubernetes.io/pcieRoot`` (one PCIe root per
island of the group's ``islands``) and capacity ``memory``), beside the DeviceClass
``gpu.nvidia.com``.

Command line::

    python -m crane.kube.fleet hack/fleets/small.yaml            # print the Nodes as YAML
    python -m crane.kube.fleet hack/fleets/small.yaml --apply    # create them (KUBECONFIG)
    python -m crane.kube.fleet hack/fleets/small.yaml --delete
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from crane.kube.client import drained
from crane.kube.dra import (
    DEVICE_CLASS,
    DEVICECLASSES,
    RESOURCE_API,
    RESOURCE_GROUP,
    RESOURCE_VERSION,
    RESOURCESLICES,
)
from crane.model.fleet import FleetSpec, NodeGroup, expand_group
from crane.model.gpu import family_of
from crane.model.inventory import GPU_PRODUCT_LABEL, GPU_RESOURCE, MANAGED_LABEL, parse_islands

KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
GPU_MEMORY_LABEL = "nvidia.com/gpu.memory"
PODS_PER_NODE = 110
NOT_READY_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})

Manifest = dict[str, Any]


def load_spec(path: str | Path) -> FleetSpec:
    """Read a fleet spec from YAML. Raises ValueError naming the file and what to fix."""
    try:
        spec = FleetSpec.model_validate(yaml.safe_load(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"fleet spec {path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"fleet spec {path}: {problems}") from None
    names = [g.name for g in spec.groups]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(
            f"fleet spec {path}: group names repeat ({', '.join(dupes)}); node names "
            "derive from them, so name each group once"
        )
    return spec


def node_resources(gpus: int) -> dict[str, str]:
    """Capacity (= allocatable) of a node: 16 CPUs and 256 GiB per GPU, at least 16 and 64 GiB."""
    return {
        "cpu": str(max(16, 16 * gpus)),
        "memory": f"{max(64, 256 * gpus)}Gi",
        "pods": str(PODS_PER_NODE),
        GPU_RESOURCE: str(gpus),
    }


ARCHITECTURES: dict[str, tuple[str, str]] = {
    "V100": ("Volta", "7.0.0"),
    "T4": ("Turing", "7.5.0"),
    "A10": ("Ampere", "8.6.0"),
    "A30": ("Ampere", "8.0.0"),
    "A100": ("Ampere", "8.0.0"),
    "L4": ("Ada Lovelace", "8.9.0"),
    "L40": ("Ada Lovelace", "8.9.0"),
    "L40S": ("Ada Lovelace", "8.9.0"),
    "H100": ("Hopper", "9.0.0"),
    "H200": ("Hopper", "9.0.0"),
    "GH200": ("Hopper", "9.0.0"),
    "B200": ("Blackwell", "10.0.0"),
    "GB200": ("Blackwell", "10.0.0"),
}
"""Model -> (architecture, CUDA compute capability) the simulated DRA devices report; other
models report ``Unknown`` and ``1.0.0``."""
DRIVER_VERSION = "580.95.5"
CUDA_DRIVER_VERSION = "13.0.0"


def _string(value: str) -> dict[str, str]:
    return {"string": value}


def slice_manifest(node: str, product: str, islands: str, gpus: int, memory_mib: int) -> Manifest:
    """The ResourceSlice NVIDIA's DRA driver for GPUs would publish for a node of ``gpus`` GPUs
    of ``product``; each island of ``islands`` (``0-3,4-7``) has its own PCIe root."""
    arch, capability = ARCHITECTURES.get((family_of(product) or "").upper(), ("Unknown", "1.0.0"))
    root_of = {
        gpu: f"pci0000:{0x10 * (i + 1):02x}"
        for i, island in enumerate(parse_islands(islands, gpus))
        for gpu in island
    }
    devices = [
        {
            "name": f"gpu-{i}",
            "attributes": {
                "type": _string("gpu"),
                "index": {"int": i},
                "minor": {"int": i},
                "uuid": _string(f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{node}.gpu-{i}')}"),
                "productName": _string(" ".join(product.split("-"))),
                "brand": _string("Nvidia"),
                "architecture": _string(arch),
                "cudaComputeCapability": {"version": capability},
                "driverVersion": {"version": DRIVER_VERSION},
                "cudaDriverVersion": {"version": CUDA_DRIVER_VERSION},
                "resource.kubernetes.io/pciBusID": _string(f"0000:{0x18 + i:02x}:00.0"),
                "resource.kubernetes.io/pcieRoot": _string(root_of[i]),
            },
            "capacity": {"memory": {"value": f"{memory_mib}Mi"}},
        }
        for i in range(gpus)
    ]
    return {
        "apiVersion": RESOURCE_API,
        "kind": "ResourceSlice",
        "metadata": {"name": f"{node}-{DEVICE_CLASS}"},
        "spec": {
            "driver": DEVICE_CLASS,
            "nodeName": node,
            "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
            "devices": devices,
        },
    }


def device_class_manifest() -> Manifest:
    """The DeviceClass ``gpu.nvidia.com`` (every device of that driver), as the driver's chart
    installs it."""
    return {
        "apiVersion": RESOURCE_API,
        "kind": "DeviceClass",
        "metadata": {"name": DEVICE_CLASS},
        "spec": {"selectors": [{"cel": {"expression": f"device.driver == '{DEVICE_CLASS}'"}}]},
    }


def group_slices(group: NodeGroup) -> list[Manifest]:
    """The ResourceSlices of a DRA group's nodes (none for a device-plugin group)."""
    if not group.dra:
        return []
    return [
        slice_manifest(
            node.name, group.product, group.islands, group.gpus_per_node, group.memory_mib
        )
        for node, _ in expand_group(group)
    ]


def fleet_slices(spec: FleetSpec) -> list[Manifest]:
    """The ResourceSlices of every DRA node of the fleet."""
    return [m for group in spec.groups for m in group_slices(group)]


def group_manifests(group: NodeGroup) -> list[Manifest]:
    """The Node objects of one group."""
    resources = node_resources(group.gpus_per_node)
    if group.dra:
        del resources[GPU_RESOURCE]
    out: list[Manifest] = []
    for node, extra in expand_group(group):
        if group.dra:
            extra = {}
        labels = {
            **node.labels,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            GPU_PRODUCT_LABEL: group.product,
            GPU_COUNT_LABEL: str(group.gpus_per_node),
            GPU_MEMORY_LABEL: str(group.memory_mib),
            MANAGED_LABEL: "true",
        }
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node.name,
                    "labels": labels,
                    "annotations": {KWOK_NODE_ANNOTATION: "fake", **extra},
                },
                "spec": {
                    "taints": [{"key": MANAGED_LABEL, "value": "true", "effect": "NoSchedule"}]
                },
                "status": {"capacity": dict(resources), "allocatable": dict(resources)},
            }
        )
    return out


def worker_manifest(index: int) -> Manifest:
    """Node ``worker-<index>``: no GPUs, no taint, so kube-scheduler may place pods there."""
    resources = node_resources(0)
    del resources[GPU_RESOURCE]
    name = f"worker-{index}"
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
            "annotations": {KWOK_NODE_ANNOTATION: "fake"},
        },
        "spec": {"taints": []},
        "status": {"capacity": dict(resources), "allocatable": dict(resources)},
    }


def fleet_manifests(spec: FleetSpec) -> list[Manifest]:
    """Every GPU Node of the fleet, in the stable order of :func:`crane.model.fleet.expand`,
    then the workers."""
    gpu_nodes = [m for group in spec.groups for m in group_manifests(group)]
    return gpu_nodes + [worker_manifest(i) for i in range(spec.workers)]


def _create_or_update(api: client.CoreV1Api, node: Manifest) -> bool:
    """Create the node; if it exists, bring its labels, annotations, taints and resources in line.

    Returns True when the node was created.
    """
    try:
        drained(api.create_node(cast(Any, node), _preload_content=False))
        return True
    except ApiException as exc:
        if exc.status != 409:
            raise
    name = node["metadata"]["name"]
    meta = {"metadata": node["metadata"], "spec": node["spec"]}
    drained(api.patch_node(name, meta, _preload_content=False))
    drained(api.patch_node_status(name, {"status": node["status"]}, _preload_content=False))
    return False


def apply_nodes(api: client.CoreV1Api, nodes: Sequence[Manifest], *, workers: int = 32) -> int:
    """Create (or update) the nodes in parallel. Returns how many were created.

    Give ``api`` a pool of ``workers`` connections (``Configuration.connection_pool_maxsize``).
    """
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return sum(pool.map(lambda n: _create_or_update(api, n), nodes))


def delete_nodes(api: client.CoreV1Api, names: Iterable[str], *, workers: int = 32) -> int:
    """Delete the named nodes in parallel. Returns how many existed."""

    def delete(name: str) -> bool:
        try:
            drained(api.delete_node(name, _preload_content=False))
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return sum(pool.map(delete, names))


def apply_slices(custom: client.CustomObjectsApi, slices: Sequence[Manifest]) -> int:
    """Create (or replace) ResourceSlices, and the DeviceClass ``gpu.nvidia.com`` when there
    are any. Returns how many slices were created."""
    if not slices:
        return 0
    try:
        custom.create_cluster_custom_object(
            RESOURCE_GROUP, RESOURCE_VERSION, DEVICECLASSES, device_class_manifest()
        )
    except ApiException as exc:
        if exc.status != 409:
            raise
    created = 0
    for body in slices:
        try:
            custom.create_cluster_custom_object(
                RESOURCE_GROUP, RESOURCE_VERSION, RESOURCESLICES, body
            )
            created += 1
        except ApiException as exc:
            if exc.status != 409:
                raise
            name = body["metadata"]["name"]
            custom.patch_cluster_custom_object(
                RESOURCE_GROUP, RESOURCE_VERSION, RESOURCESLICES, name, {"spec": body["spec"]}
            )
    return created


def delete_slices(custom: client.CustomObjectsApi, names: Iterable[str]) -> int:
    """Delete the named ResourceSlices. Returns how many existed."""
    gone = 0
    for name in names:
        try:
            custom.delete_cluster_custom_object(
                RESOURCE_GROUP, RESOURCE_VERSION, RESOURCESLICES, name
            )
            gone += 1
        except ApiException as exc:
            if exc.status != 404:
                raise
    return gone


def _schedulable(node: Manifest) -> bool:
    ready = any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in node.get("status", {}).get("conditions") or []
    )
    tainted = any(t["key"] in NOT_READY_TAINTS for t in node["spec"].get("taints") or [])
    return ready and not tainted


def ready_nodes(api: client.CoreV1Api) -> set[str]:
    """Names of the nodes that are Ready and no longer tainted not-ready.

    kube-controller-manager taints a new node ``node.kubernetes.io/not-ready`` until it has seen
    the node Ready; kube-scheduler places nothing there before.
    """
    # With _preload_content=False the client returns the raw HTTP response, not its type hint.
    resp: Any = api.list_node(_preload_content=False)
    return {
        item["metadata"]["name"] for item in json.loads(resp.data)["items"] if _schedulable(item)
    }


def wait_ready(api: client.CoreV1Api, names: Iterable[str], *, timeout: float = 120.0) -> None:
    """Wait until every named node is Ready. Raises TimeoutError naming how many are not."""
    wanted = set(names)
    deadline = time.monotonic() + timeout
    while True:
        missing = wanted - ready_nodes(api)
        if not missing:
            return
        if time.monotonic() > deadline:
            sample = ", ".join(sorted(missing)[:5])
            raise TimeoutError(
                f"{len(missing)} of {len(wanted)} nodes not Ready after "
                f"{timeout:.0f}s (e.g. {sample}): is the kwok controller running?"
            )
        time.sleep(0.25)


def main(argv: Sequence[str] | None = None) -> int:
    """Print a fleet spec's nodes (and ResourceSlices) as YAML, or create or delete them.

    Returns the exit status: 0 on success, 1 on an API error or timeout, 2 on a bad spec."""
    parser = argparse.ArgumentParser(
        prog="python -m crane.kube.fleet",
        description="Simulated GPU nodes for kwok from a fleet spec.",
    )
    parser.add_argument("spec", help="fleet spec YAML (see hack/fleets/)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--apply", action="store_true", help="create or update the nodes (KUBECONFIG)"
    )
    action.add_argument("--delete", action="store_true", help="delete the nodes of the spec")
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --apply: wait this long for every node to be Ready",
    )
    parser.add_argument("--workers", type=int, default=32, help="parallel API requests")
    parser.add_argument("--kubeconfig", help="default: $KUBECONFIG, then ~/.kube/config")
    args = parser.parse_args(argv)
    try:
        spec = load_spec(args.spec)
    except ValueError as exc:
        print(f"crane.kube.fleet: {exc}", file=sys.stderr)
        return 2
    nodes = fleet_manifests(spec)
    slices = fleet_slices(spec)
    if not (args.apply or args.delete):
        extra = [device_class_manifest(), *slices] if slices else []
        yaml.safe_dump_all([*nodes, *extra], sys.stdout, sort_keys=False)
        return 0
    cfg = client.Configuration()
    config.load_kube_config(config_file=args.kubeconfig, client_configuration=cfg)
    cfg.connection_pool_maxsize = max(1, args.workers)
    api_client = client.ApiClient(cfg)
    api = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    names = [n["metadata"]["name"] for n in nodes]
    start = time.monotonic()
    try:
        if args.delete:
            gone = delete_nodes(api, names, workers=args.workers)
            delete_slices(custom, [s["metadata"]["name"] for s in slices])
            print(f"deleted {gone} of {len(names)} nodes", file=sys.stderr)
            return 0
        created = apply_nodes(api, nodes, workers=args.workers)
        apply_slices(custom, slices)
        took = time.monotonic() - start
        print(
            f"{created} nodes created, {len(nodes) - created} updated in {took:.1f}s",
            file=sys.stderr,
        )
        if args.wait:
            wait_ready(api, names, timeout=args.wait)
            took = time.monotonic() - start
            print(f"{len(nodes)} nodes Ready after {took:.1f}s", file=sys.stderr)
    except (ApiException, TimeoutError) as exc:
        reason = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else str(exc)
        print(f"crane.kube.fleet: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
