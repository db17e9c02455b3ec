"""What the decision pass reads: a backend-neutral view of the cluster.

Each backend presents its store in this shape: MiniCluster and Cargo records as dicts with
``metadata`` / ``spec`` / ``status`` (the Kubernetes wire form, which is also what Docker mode's
rows hold, since a user's template is a pod template in both modes), replicas (pods or
containers) as :class:`ReplicaView`, and nodes (Nodes or Docker hosts) as ``NodeView``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from crane.kube.dra import ClaimView
from crane.kube.names import key_of
from crane.kube.nodes import NodeView
from crane.model.podsecurity import PodSecurityLevel
from crane.model.shares import ShareTable

TERMINATED = ("Succeeded", "Failed")


DEFAULT_GRACE_SECONDS = 30
"""Kubernetes' default terminationGracePeriodSeconds."""


@dataclass(frozen=True)
class ReplicaView:
    """One replica of a cargo (a pod or a container), or a GPU user that is not Crane's."""

    namespace: str
    name: str
    uid: str
    node: str
    gpus: int
    cargo: str | None
    """The cargo's key (``namespace/name``) for Crane's replicas."""
    replica: int | None
    gpu_ids: str
    owner_uid: str | None
    phase: str
    """Pending, Running, Succeeded or Failed."""
    ready: bool
    deleting: bool
    message: str
    app_manager: str | None = None
    """The MiniCluster's key for its app manager (no GPUs, not a cargo's)."""
    exit_code: int | None = None
    """The non-zero exit code of a container that terminated, if any."""
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    """Between SIGTERM and SIGKILL when it is stopped (the pod's terminationGracePeriodSeconds)."""
    claim: str = ""
    """The ResourceClaim the replica gets its GPUs from, on a DRA node ("" otherwise)."""
    minicluster: str | None = None
    """Its ``crane.io/minicluster`` label (the MiniCluster's Service finds it by it)."""
    relabelled: bool = False
    """A pod its cargo owns (by name and ownerReference) whose ``crane.io/cargo`` or
    ``crane.io/replica`` label says otherwise, or that lacks ``crane.io/minicluster`` (edited by
    hand): ``cargo`` and ``replica`` are
    its owner's and its name's, and the labels are set back."""

    @property
    def key(self) -> str:
        """``namespace/name`` of the replica."""
        return key_of(self.namespace, self.name)

    @property
    def holds_gpus(self) -> bool:
        """Whether the replica may still use its GPUs (not finished)."""
        return self.phase not in TERMINATED


PodView = ReplicaView
"""The Kubernetes name of a replica view."""


class ClusterView(Protocol):
    """The inputs of one decision pass, whatever the backend."""

    nodes: dict[str, NodeView]
    pods: dict[str, ReplicaView]
    claims: dict[str, ClaimView]
    """ResourceClaims (Kubernetes with DRA; empty elsewhere)."""
    miniclusters: dict[str, dict[str, Any]]
    cargos: dict[str, dict[str, Any]]
    services: dict[str, str]
    """The Services Crane made that exist, ``namespace/name`` -> uid (Kubernetes)."""

    def pods_by_cargo(self) -> dict[str, list[ReplicaView]]:
        """Cargo key -> its replicas."""
        ...

    def app_managers(self) -> dict[str, ReplicaView]:
        """MiniCluster key -> its app manager."""
        ...

    def namespace_quota(self, namespace: str) -> int | None:
        """The GPU quota of a namespace (tenant), if any."""
        ...

    def namespace_terminating(self, namespace: str) -> bool:
        """Whether the namespace (tenant) is being deleted: nothing is created in it."""
        ...

    def share_table(self) -> ShareTable:
        """The tenants' shares and which namespaces (key prefixes) each tenant holds."""
        ...

    def namespace_level(self, namespace: str) -> PodSecurityLevel:
        """The Pod Security Standards level of a namespace (tenant); baseline by default."""
        ...
