"""Builders of the objects that realise Crane's decisions: pods, services, template cargos."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from crane.kube.dra import claim_pod_spec
from crane.kube.names import (
    API_VERSION,
    CARGO_KIND,
    CARGO_LABEL,
    DEFAULT_MASTER_PORT,
    FINALIZER,
    GPU_IDS_ANNOTATION,
    MASTER_PORT_ANNOTATION,
    MINICLUSTER_KIND,
    MINICLUSTER_LABEL,
    NOTICE_ANNOTATION,
    NOTICE_VOLUME,
    REPLICA_LABEL,
    REPLICAS_ANNOTATION,
    TEMPLATE_INDEX_LABEL,
)
from crane.model.inventory import GPU_RESOURCE, MANAGED_LABEL
from crane.model.podtemplate import (
    DEVICE_ENV,
    NO_DEVICES,
    containers_of,
    is_accelerator_resource,
    template_errors,
)
from crane.model.specs import CargoSpec, CargoTemplate, ReplicaPlacement
from crane.model.world import NOTICE_DIR, NOTICE_FILE, rendezvous_name, replica_env


class InvalidTemplateError(ValueError):
    """A cargo's pod template cannot make a pod; the message says what to fix."""


def owner_reference(kind: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """A controller owner reference to the Crane object of ``kind`` with metadata ``meta``."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_name(cargo: str, replica: int) -> str:
    """The pod name of a cargo's replica, ``<cargo>-<replica>``."""
    return f"{cargo}-{replica}"


def master_port(spec: CargoSpec) -> int:
    """The rendezvous port from the template's master-port annotation, else the default.

    Raises :class:`InvalidTemplateError` when the annotation is not a number."""
    annotations = (spec.template.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(MASTER_PORT_ANNOTATION, DEFAULT_MASTER_PORT))
    except ValueError:
        raise InvalidTemplateError(
            f"annotation {MASTER_PORT_ANNOTATION} must be a port number"
        ) from None


def validate_template(spec: CargoSpec) -> None:
    """Raise :class:`InvalidTemplateError` naming each field when the template cannot make a pod.

    The PodTemplateSpec structure, at least one container with a name and an image, and no
    GPU or accelerator resources of its own (crane/model/podtemplate.py).
    """
    issues = template_errors(spec.template)
    if issues:
        raise InvalidTemplateError("; ".join(f"spec.template.{i}" for i in issues))
    master_port(spec)


def _own_gpus(pspec: dict[str, Any], gpus: int, claim_for: str | None = None) -> None:
    """Crane's GPU resources on every container: the replica's GPUs on the first, none elsewhere.

    Accelerator resources the template names are dropped (validation refuses them already),
    so a pod never asks for GPUs the engine did not count. With ``claim_for`` (the pod's name,
    on a DRA node) the first container gets its GPUs from the pod's ResourceClaim instead of
    ``nvidia.com/gpu`` limits.
    """
    for path, container in containers_of(pspec):
        resources = container.get("resources")
        if isinstance(resources, dict):
            for kind in ("limits", "requests"):
                values = resources.get(kind)
                if isinstance(values, dict):
                    for name in [n for n in values if is_accelerator_resource(str(n))]:
                        del values[name]
            resources.pop("claims", None)
        if path == "spec.containers[0]" and gpus:
            if claim_for is None:
                resources = container.setdefault("resources", {})
                count = str(gpus)
                resources.setdefault("limits", {})[GPU_RESOURCE] = count
                resources.setdefault("requests", {})[GPU_RESOURCE] = count
            continue
        # No GPU for this container: the NVIDIA runtime would otherwise expose every GPU of
        # the node to an image that sets NVIDIA_VISIBLE_DEVICES=all (the CUDA images do).
        env = [e for e in container.get("env") or [] if e.get("name") not in DEVICE_ENV]
        container["env"] = [*env, {"name": "NVIDIA_VISIBLE_DEVICES", "value": NO_DEVICES}]
    pspec.pop("resourceClaims", None)
    if claim_for is not None and gpus:
        claim_pod_spec(pspec, claim_for)


def rendezvous_host(namespace: str, minicluster: str) -> str:
    """The DNS name of a MiniCluster's rendezvous Service."""
    return f"{rendezvous_name(minicluster)}.{namespace}.svc"


def _notice_volume(pspec: dict[str, Any]) -> None:
    """Mount the pod's notice annotation at ``/crane/notice`` in every container (downward API:
    the file is empty until Crane sets the annotation, then the kubelet writes it in)."""
    volumes = [v for v in pspec.get("volumes") or [] if v.get("name") != NOTICE_VOLUME]
    pspec["volumes"] = [
        *volumes,
        {
            "name": NOTICE_VOLUME,
            "downwardAPI": {
                "items": [
                    {
                        "path": NOTICE_FILE.rsplit("/", 1)[1],
                        "fieldRef": {"fieldPath": f"metadata.annotations['{NOTICE_ANNOTATION}']"},
                    }
                ]
            },
        },
    ]
    for _path, container in containers_of(pspec):
        mounts = [m for m in container.get("volumeMounts") or [] if m.get("name") != NOTICE_VOLUME]
        container["volumeMounts"] = [
            *mounts,
            {"name": NOTICE_VOLUME, "mountPath": NOTICE_DIR, "readOnly": True},
        ]


def build_pod(
    cargo_meta: Mapping[str, Any],
    spec: CargoSpec,
    placement: ReplicaPlacement,
    world: Mapping[str, str] | None = None,
    dra: bool = False,
) -> dict[str, Any]:
    """The pod of one replica: on its node, with its GPUs, Crane's env, labels and owner.

    ``world`` is the MiniCluster's rendezvous env (crane/model/world.py), if it has one.
    ``dra``: the node's GPUs are a DRA driver's; the pod refers to its ResourceClaim
    (:func:`crane.kube.dra.build_claim`) instead of asking for ``nvidia.com/gpu``.
    """
    validate_template(spec)
    namespace, cargo = cargo_meta["namespace"], cargo_meta["name"]
    template = copy.deepcopy(spec.template)
    tmeta = template.get("metadata") or {}
    pspec: dict[str, Any] = template.get("spec") or {}
    labels = {
        **(tmeta.get("labels") or {}),
        MINICLUSTER_LABEL: spec.mini_cluster,
        CARGO_LABEL: cargo,
        REPLICA_LABEL: str(placement.replica),
    }
    annotations = {
        **(tmeta.get("annotations") or {}),
        GPU_IDS_ANNOTATION: ",".join(str(i) for i in placement.gpu_ids),
        REPLICAS_ANNOTATION: str(spec.replicas),
    }
    values = replica_env(
        minicluster=spec.mini_cluster,
        cargo=cargo,
        replica=placement.replica,
        replicas=spec.replicas,
        master_addr=f"{pod_name(cargo, 0)}.{spec.mini_cluster}.{namespace}.svc",
        master_port=master_port(spec),
        gpu_ids=placement.gpu_ids,
        world=dict(world or {}),
    )
    env = [{"name": k, "value": v} for k, v in values.items()]
    names = set(values)
    for container in pspec["containers"]:
        container["env"] = env + [
            e for e in container.get("env") or [] if e.get("name") not in names
        ]
    name = pod_name(cargo, placement.replica)
    # The GPUs Crane assigned, never spec.gpusPerReplica: that may have been edited since the
    # placement, and a pod asking the device plugin for more would get GPUs no one assigned.
    _own_gpus(pspec, len(placement.gpu_ids), name if dra else None)
    _notice_volume(pspec)
    pspec["nodeName"] = placement.node
    pspec["restartPolicy"] = "Never"
    pspec["hostname"] = pod_name(cargo, placement.replica)
    pspec["subdomain"] = spec.mini_cluster
    pspec.pop("nodeSelector", None)
    pspec.pop("affinity", None)
    tolerations = [t for t in pspec.get("tolerations") or [] if t.get("key") != MANAGED_LABEL]
    pspec["tolerations"] = [*tolerations, {"key": MANAGED_LABEL, "operator": "Exists"}]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": pod_name(cargo, placement.replica),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
            "ownerReferences": [owner_reference(CARGO_KIND, cargo_meta)],
        },
        "spec": pspec,
    }


def build_service(minicluster_meta: Mapping[str, Any]) -> dict[str, Any]:
    """The MiniCluster's headless Service: every replica of every cargo of the MiniCluster has a
    DNS name under it (``<cargo>-<i>.<minicluster>.<namespace>.svc``). One per MiniCluster, not
    one per cargo: a cargo costs no Service write, nor the Endpoints and EndpointSlice writes
    the control plane makes for each Service."""
    name = minicluster_meta["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": minicluster_meta["namespace"],
            "labels": {MINICLUSTER_LABEL: name},
            "ownerReferences": [owner_reference(MINICLUSTER_KIND, minicluster_meta)],
        },
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {MINICLUSTER_LABEL: name},
            "ports": [{"name": "rendezvous", "port": DEFAULT_MASTER_PORT, "protocol": "TCP"}],
        },
    }


def template_cargo_name(minicluster: str, index: int) -> str:
    """The name of a MiniCluster's template cargo, ``<minicluster>-<index>``."""
    return f"{minicluster}-{index}"


def build_template_cargo(
    mc_meta: Mapping[str, Any], template: CargoTemplate, index: int
) -> dict[str, Any]:
    """Template cargo ``<mc>-<index>`` of a MiniCluster with ``spec.template``."""
    name = mc_meta["name"]
    spec = template.model_dump(by_alias=True, mode="json")
    spec["miniCluster"] = name
    return {
        "apiVersion": API_VERSION,
        "kind": CARGO_KIND,
        "metadata": {
            "name": template_cargo_name(name, index),
            "namespace": mc_meta["namespace"],
            "labels": {MINICLUSTER_LABEL: name, TEMPLATE_INDEX_LABEL: str(index)},
            "ownerReferences": [owner_reference(MINICLUSTER_KIND, mc_meta)],
            "finalizers": [FINALIZER],
        },
        "spec": spec,
    }
