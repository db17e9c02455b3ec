"""Engine requests for MiniCluster and Cargo records (``metadata`` dicts plus a parsed spec).

The requests themselves are built once, in :mod:`crane.lifecycle.service`; this module only
reads the key and the creation time from a record's metadata. It lives in the lifecycle (not
in ``crane.kube.resources``) so that the Kubernetes record helpers never import the lifecycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crane.kube.names import key_of
from crane.kube.resources import created_at
from crane.lifecycle import service
from crane.lifecycle.cargo_status import timestamp
from crane.model.specs import CargoSpec, CargoStatus, MiniClusterSpec
from crane.placement.types import CargoRequest, MiniClusterRequest


def minicluster_request(
    meta: Mapping[str, Any], spec: MiniClusterSpec, namespace_quota: int | None = None
) -> MiniClusterRequest:
    """The engine's request for a MiniCluster record."""
    return service.minicluster_request(
        key_of(meta["namespace"], meta["name"]), spec, created_at(meta), namespace_quota
    )


def cargo_request(
    meta: Mapping[str, Any], spec: CargoSpec, status: CargoStatus | None = None
) -> CargoRequest:
    """The engine's request for a Cargo record; its ``status`` (when given) says when it was
    placed and started, which its expected end counts from."""
    return service.cargo_request(
        key_of(meta["namespace"], meta["name"]),
        spec,
        created_at(meta),
        timestamp(status.placed_at) if status else None,
        timestamp(status.started_at) if status else None,
    )
