"""API coordinates, label, annotation and finalizer names Crane uses on Kubernetes."""

from __future__ import annotations

GROUP = "crane.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MINICLUSTERS = "miniclusters"
CARGOS = "cargos"
MINICLUSTER_KIND = "MiniCluster"
CARGO_KIND = "Cargo"

PREFIX = "crane.io/"
FINALIZER = "crane.io/finalizer"
"""Crane's own finalizer, added and removed by the scheduling loop (crane/lifecycle)."""
KOPF_FINALIZER = "crane.io/kopf"
"""kopf's finalizer setting: kopf adds it only for handlers that need one (Crane has none) and
removes it from any object that carries it, so it must differ from :data:`FINALIZER`."""
MINICLUSTER_LABEL = "crane.io/minicluster"
CARGO_LABEL = "crane.io/cargo"
APP_MANAGER_LABEL = "crane.io/app-manager"
REPLICA_LABEL = "crane.io/replica"
TEMPLATE_INDEX_LABEL = "crane.io/template-index"
GPU_IDS_ANNOTATION = "crane.io/gpu-ids"
REPLICAS_ANNOTATION = "crane.io/replicas"
MASTER_PORT_ANNOTATION = "crane.io/master-port"
DEFAULT_MASTER_PORT = 29500
NOTICE_ANNOTATION = "crane.io/notice"
"""Set on a replica's pod when its cargo is about to be removed; the pod's downward-API volume
shows it as ``/crane/notice`` (crane/model/world.py)."""
LEADER_TERM_ANNOTATION = "crane.io/leader-term"
"""On each pod the operator creates: ``<lease namespace>/<lease name>/<holder>/<transitions>``
of the term it was written in. The chart's leader fence (a ValidatingAdmissionPolicy) refuses
one whose term is not the Lease's current one: an operator paused past its lease cannot land a
pod on GPUs the next leader gave away."""
NOTICE_VOLUME = "crane-notice"
RENDEZVOUS_LABEL = "crane.io/rendezvous"
"""On a MiniCluster's rendezvous Deployment, its pods and its Service."""
GPU_QUOTA_KEY = "requests.nvidia.com/gpu"


def key_of(namespace: str, name: str) -> str:
    """The engine key of a namespaced object: ``namespace/name``."""
    return f"{namespace}/{name}"


def split_key(key: str) -> tuple[str, str]:
    """The namespace and name of an engine key ``namespace/name``."""
    namespace, _, name = key.partition("/")
    return namespace, name
