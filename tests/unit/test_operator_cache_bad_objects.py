"""What the operator's cache makes of objects any tenant may write: a pod asking for GPUs in
any quantity notation the API server accepts is read, and an object it cannot read is left
out alone: the watch, the start and the other objects go on."""

from __future__ import annotations

from typing import Any

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


def test_an_unreadable_object_is_left_out_and_the_others_are_kept() -> None:
    broken = pod("broken", {"nvidia.com/gpu": "1"})
    broken["spec"]["containers"] = "not a list"
    cache = new_cache(("pods", pod("fine", {"nvidia.com/gpu": "1"})), ("pods", broken))
    assert set(cache.pods) == {"t/fine"}
    cache.apply("pods", "MODIFIED", pod("later", {"nvidia.com/gpu": "3"}))
    assert cache.pods["t/later"].gpus == 3
