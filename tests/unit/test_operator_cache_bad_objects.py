"""What the operator's cache makes of objects any tenant may write: a pod asking for GPUs in
any quantity notation the API server accepts is read, and an object it cannot read is left
out alone: the watch, the start and the other objects go on."""

from __future__ import annotations

from typing import Any

from crane.api import kube_snapshot
from crane.kube.fleet import fleet_manifests
from crane.model.fleet import FleetSpec, NodeGroup
from tests.unit.test_operator_decide import new_cache


def pod(name: str, limits: Any, node: str = "n0") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "t", "uid": f"u-{name}"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "main", "resources": {"limits": limits}}],
        },
        "status": {"phase": "Running"},
    }


def test_gpus_in_any_quantity_notation_are_counted() -> None:
    cache = new_cache(
        ("pods", pod("thousand", {"nvidia.com/gpu": "1k"})),
        ("pods", pod("two", {"nvidia.com/gpu": "2000m"})),
    )
    assert cache.pods["t/thousand"].gpus == 1000
    assert cache.pods["t/two"].gpus == 2


def test_a_quantity_past_int64_is_read_at_once_as_nothing() -> None:
    """``nvidia.com/gpu: 9e999999`` made the reader build a million-digit integer: the pass
    of every tenant hung on one tenant's pod."""
    cache = new_cache(("pods", pod("huge", {"nvidia.com/gpu": "9e999999"})))
    assert "t/huge" not in cache.pods  # it holds no GPU: not a pod the operator counts


def test_an_unreadable_object_is_left_out_and_the_others_are_kept() -> None:
    broken = pod("broken", {"nvidia.com/gpu": "1"})
    broken["spec"]["containers"] = "not a list"
    cache = new_cache(("pods", pod("fine", {"nvidia.com/gpu": "1"})), ("pods", broken))
    assert set(cache.pods) == {"t/fine"}
    cache.apply("pods", "MODIFIED", pod("later", {"nvidia.com/gpu": "3"}))
    assert cache.pods["t/later"].gpus == 3


def test_the_apis_gpu_map_reads_any_quantity_and_skips_unreadable_gpu_ids() -> None:
    node = fleet_manifests(
        FleetSpec(groups=[NodeGroup(name="q", product="NVIDIA-L4", gpus_per_node=8)])
    )[0]
    name = node["metadata"]["name"]
    thousand = pod("thousand", {"nvidia.com/gpu": "2k"}, node=name)
    odd = pod("odd", {}, node=name)
    odd["metadata"]["labels"] = {"crane.io/cargo": "job"}
    odd["metadata"]["annotations"] = {"crane.io/gpu-ids": "x,1"}
    busy = kube_snapshot.busy_gpus([node], [thousand, odd])
    assert busy == {name: frozenset(range(8))}
