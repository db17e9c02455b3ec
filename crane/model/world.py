"""The env a replica gets, written once for both backends: its gang and its MiniCluster's world.

Two worlds are offered to the program in a replica:

- the cargo's own (gang-local): ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``,
  for a job that lives and dies with one cargo (an AutoML trial);
- the MiniCluster's (elastic), when ``spec.rendezvous.enabled``: ``CRANE_RDZV_ENDPOINT``,
  ``CRANE_RDZV_ID``, ``CRANE_RDZV_BACKEND`` and ``CRANE_NNODES``, the same for every replica of
  every cargo of the MiniCluster (with ``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``, so that a
  node joining a running world is not left waiting), so ``torchrun --nnodes=$CRANE_NNODES
  --rdzv-backend=$CRANE_RDZV_BACKEND --rdzv-endpoint=$CRANE_RDZV_ENDPOINT
  --rdzv-id=$CRANE_RDZV_ID`` forms one world across cargos that grows and shrinks with them.

``CRANE_NOTICE_FILE`` names a file that is empty or absent until the replica's cargo is about
to be removed (shrink, delete, preemption); then it holds one JSON line with the reason, a message
and the deadline (:func:`notice_text`). Only the host names differ between backends: each
backend passes its own for ``MASTER_ADDR`` and the rendezvous endpoint.

Pure: no Kubernetes, Docker or torch imports (docs/elastic-training.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from crane.model.specs import MiniClusterSpec

RDZV_BACKEND = "c10d"
NO_SHARED_STORE = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE"
"""torchrun's opt-out of sharing rank 0's bootstrap store across rounds: with sharing, a node
that joins a running world (a grow) waits forever for the round's ``MASTER_ADDR`` key, which
the nodes already in the world do not write again."""
NOTICE_DIR = "/crane"
"""Where the notice file is (a directory of its own: a Kubernetes volume is mounted there)."""
NOTICE_FILE = f"{NOTICE_DIR}/notice"
RDZV_SUFFIX = "-rdzv"


def rendezvous_name(minicluster: str) -> str:
    """The rendezvous store's name: Deployment and Service (Kubernetes), network alias (Docker)."""
    return f"{minicluster}{RDZV_SUFFIX}"


def reserved_name(minicluster: str) -> str | None:
    """Why no MiniCluster may be named ``minicluster``, or None. A name ending in
    :data:`RDZV_SUFFIX` is another MiniCluster's rendezvous store's (``<mc>-rdzv``): on
    Kubernetes both are Services of one namespace, and the one made second was never made, so
    the rendezvous endpoint or the replicas' DNS names led to the other MiniCluster's pods.
    Refused on both backends (the CRD says the same)."""
    if not minicluster.endswith(RDZV_SUFFIX):
        return None
    owner = minicluster.removesuffix(RDZV_SUFFIX)
    return (
        f"a MiniCluster's name may not end in {RDZV_SUFFIX}: {minicluster} is the name of "
        f"MiniCluster {owner}'s rendezvous store (its Service); pick another name"
    )


def node_bounds(spec: MiniClusterSpec) -> tuple[int, int]:
    """``(min, max)`` torchrun nodes of the MiniCluster's world: a node is a replica.

    The world grows in whole template cargos (``r`` replicas of ``g`` GPUs, ``c = r x g``):
    ``min = r`` (one cargo: whatever a shrink, a deleted cargo or a preemption leaves, the
    cargos left form a world) and ``max = max(r, gpus.max // c x r)``. A template without GPUs
    (``c = 0``) has ``max = max(1, spec.replicas) x r``. Without a template there is no world:
    (0, 0). The min is not the reservation's cargos: a running replica keeps the bounds it
    started with, and torchrun's agents wait, out of training, until ``min`` nodes join, so
    one cargo left of a world whose min was two waited forever after a shrink under
    ``gpus.min`` (lowering ``gpus.min`` first did not help the replicas running).
    """
    t = spec.template
    if t is None:
        return (0, 0)
    if t.gpus == 0:
        return (t.replicas, max(1, spec.replicas or 0) * t.replicas)
    return (t.replicas, max(t.replicas, spec.gpus.max // t.gpus * t.replicas))


def world_env(
    minicluster_uid: str, spec: MiniClusterSpec, host: str, port: int | None = None
) -> dict[str, str]:
    """The MiniCluster-wide rendezvous env (empty when ``spec.rendezvous`` is not enabled).

    ``host`` is where the backend serves the store, on ``port`` (default ``spec.rendezvous.port``;
    Docker hosts with host networking give the store a port of their own); the id is the
    MiniCluster's uid, stable for its life and never reused by a MiniCluster of the same name.
    """
    if spec.rendezvous is None or not spec.rendezvous.enabled or spec.template is None:
        return {}
    low, high = node_bounds(spec)
    return {
        "CRANE_RDZV_ENDPOINT": f"{host}:{port or spec.rendezvous.port}",
        "CRANE_RDZV_ID": minicluster_uid,
        "CRANE_RDZV_BACKEND": RDZV_BACKEND,
        "CRANE_NNODES": f"{low}:{high}",
        NO_SHARED_STORE: "1",
    }


def replica_env(
    *,
    minicluster: str,
    cargo: str,
    replica: int,
    replicas: int,
    master_addr: str,
    master_port: int,
    gpu_ids: Iterable[int],
    world: dict[str, str],
) -> dict[str, str]:
    """Every variable Crane sets in a replica: its gang, its GPUs, its MiniCluster's world."""
    return {
        "CRANE_MINICLUSTER": minicluster,
        "CRANE_CARGO": cargo,
        "CRANE_REPLICA": str(replica),
        "RANK": str(replica),
        "CRANE_REPLICAS": str(replicas),
        "WORLD_SIZE": str(replicas),
        "MASTER_ADDR": master_addr,
        "MASTER_PORT": str(master_port),
        "CRANE_GPU_IDS": ",".join(str(i) for i in gpu_ids),
        "CRANE_NOTICE_FILE": NOTICE_FILE,
        **world,
    }


def notice_text(reason: str, message: str, now: datetime, grace_seconds: int) -> str:
    """The notice file's content: one JSON line with reason, message and deadline (UTC, ISO).

    The deadline is when the replica is killed at the latest: SIGTERM comes with the notice,
    SIGKILL ``grace_seconds`` later.
    """
    deadline = now + timedelta(seconds=grace_seconds)
    body = {"reason": reason, "message": message, "deadline": deadline.isoformat()}
    return json.dumps(body, separators=(",", ":")) + "\n"


STORE_LISTENING = "crane rendezvous store listening on port"
"""What the store prints once it listens (:func:`rendezvous_command`): Docker mode makes a
replica on host networking only after its store has printed it."""


def rendezvous_command(port: int) -> list[str]:
    """The store's command: a torch TCPStore server on ``port`` until SIGTERM (any image with
    torch and ``python3``)."""
    script = (
        "import signal, sys\n"
        "import torch.distributed as dist\n"
        f"store = dist.TCPStore('0.0.0.0', {port}, is_master=True, wait_for_workers=False)\n"
        f"print('{STORE_LISTENING} {port}', flush=True)\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        "while True:\n"
        "    signal.pause()\n"
    )
    return ["python3", "-c", script]
