"""A held MiniCluster (``spec.suspend``) is no demand in Kubernetes mode's what-if snapshot, as
it is none in Docker mode's (the reconciler's engine, which it has left): a dry-run or an
explanation never counts it as waiting. The snapshot queued it, so a dry-run on an idle cluster
said a MiniCluster would not fit because a held one, first in the queue, took the GPUs."""

from __future__ import annotations

from typing import Any

from crane.api import kube_snapshot
from crane.kube.fleet import fleet_manifests
from crane.model import MiniClusterSpec
from crane.model.fleet import FleetSpec, NodeGroup

NODES = fleet_manifests(
    FleetSpec(groups=[NodeGroup(name="w", product="NVIDIA-L20", gpus_per_node=8)])
)


def _mc(name: str, gpus: int, suspend: bool, **status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "t",
            "uid": f"u-{name}",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "gpuType": "L20",
            "gpus": {"min": gpus, "max": gpus},
            "priority": 100,
            "suspend": suspend,
        },
        "status": status,
    }


def _dry_run(*mcs: dict[str, Any], cargos: tuple[dict[str, Any], ...] = ()) -> bool:
    engine = kube_snapshot.build(NODES, mcs, cargos)
    ask = MiniClusterSpec.model_validate({"gpuType": "L20", "gpus": {"min": 4, "max": 4}})
    return kube_snapshot.dry_run_minicluster(engine, "t", ask).fits


def test_a_held_minicluster_takes_no_gpu_in_a_dry_run() -> None:
    assert _dry_run(_mc("nap", 8, suspend=True))
    # the same MiniCluster released is demand ahead of the dry-run (higher priority)
    assert not _dry_run(_mc("nap", 8, suspend=False))


def test_a_held_minicluster_still_stopping_holds_only_what_it_holds() -> None:
    """Its cargo still runs on 2 GPUs of its 8-GPU reservation, which the status records (the
    operator writes what its engine holds until the cargos are gone): the snapshot keeps that
    reservation, as Docker mode's engine does, and never queues it for more."""
    node = NODES[0]["metadata"]["name"]
    held = _mc(
        "nap",
        8,
        suspend=True,
        reservation={node: list(range(8))},
        conditions=[{"type": "Admitted", "status": "False", "reason": "Held"}],
    )
    cargo = {
        "metadata": {"name": "nap-0", "namespace": "t", "uid": "u-c"},
        "spec": {"miniCluster": "nap", "replicas": 1, "gpusPerReplica": 2, "template": {}},
        "status": {
            "phase": "Running",
            "placement": [{"replica": 0, "node": node, "gpuIds": [0, 1]}],
        },
    }
    engine = kube_snapshot.build(NODES, [held], [cargo])
    usage = engine.usage("t/nap")
    assert (usage.reserved_gpus, usage.in_use_gpus) == (8, 2)
    assert engine.is_admitted("t/nap")
    assert not _dry_run(held, cargos=(cargo,))  # its GPUs are not free yet
    gone = {**cargo, "status": {"phase": "Succeeded"}}
    assert _dry_run({**held, "status": {}}, cargos=(gone,))
