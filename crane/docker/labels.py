"""Labels and names Crane puts on the Docker objects it owns."""

from __future__ import annotations

PREFIX = "crane.io/"
MANAGED = "crane.io/managed"
TENANT = "crane.io/tenant"
MINICLUSTER = "crane.io/minicluster"
MINICLUSTER_UID = "crane.io/minicluster-uid"
CARGO = "crane.io/cargo"
CARGO_UID = "crane.io/cargo-uid"
REPLICA = "crane.io/replica"
GPU_IDS = "crane.io/gpu-ids"
RESTART_POLICY = "crane.io/restart-policy"
ATTEMPT = "crane.io/attempt"
RENDEZVOUS = "crane.io/rendezvous"
"""On a MiniCluster's rendezvous store container: the MiniCluster's uid."""
PORT = "crane.io/port"
"""With host networking: the port Crane gave the container on its host (a cargo's
``MASTER_PORT``, a store's port); no two containers of one host share one."""

MASTER_PORT = 29500
PORT_LIMIT = 65535


def network_name(tenant: str, minicluster: str) -> str:
    """The MiniCluster's network on each host it uses."""
    return f"crane.{tenant}.{minicluster}"


def replica_alias(cargo: str, replica: int) -> str:
    """The replica's name on its MiniCluster's network (``MASTER_ADDR`` for replica 0)."""
    return f"{cargo}-{replica}"


def container_name(tenant: str, cargo: str, replica: int) -> str:
    """Unique per Docker host: the tenant is part of it because cargo names are per tenant."""
    return f"crane.{tenant}.{replica_alias(cargo, replica)}"


def volume_name(tenant: str, claim: str) -> str:
    """The tenant's named Docker volume for a persistentVolumeClaim ``claim``. A tenant name
    has no dot, so no claim of one tenant names another tenant's volume."""
    return f"crane.{tenant}.{claim}"


def rendezvous_container_name(tenant: str, minicluster: str) -> str:
    """The rendezvous store's container (its alias on the network is ``<mc>-rdzv``)."""
    return f"crane.{tenant}.{minicluster}-rdzv"
