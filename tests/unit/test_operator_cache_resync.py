"""The cache heals what a watch lost: a pod deleted while the API server restarted stays in a
watch-fed cache (kopf emits no DELETED for it), so the cargo's deletion, and its MiniCluster's,
would wait for it forever. A resync from a full listing drops it, and never undoes an event that
arrived while the listing was taken."""

from __future__ import annotations

from typing import Any

from crane.operator.cache import ClusterCache


def _pod(name: str, cargo: str, rv: str = "1") -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "t",
            "name": name,
            "uid": f"uid-{name}",
            "resourceVersion": rv,
            "labels": {"crane.io/cargo": cargo, "crane.io/replica": "0"},
            "annotations": {"crane.io/gpu-ids": "0"},
        },
        "spec": {
            "nodeName": "n1",
            "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
        },
        "status": {"phase": "Running"},
    }


def _cargo(name: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "t", "name": name, "uid": f"uid-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2026-11-30T00:00:00Z"
    return {"metadata": meta, "spec": {"miniCluster": "mc"}, "status": {}}


def test_a_pod_the_watch_never_saw_go_is_dropped_by_the_resync() -> None:
    cache = ClusterCache(())
    cache.apply("pods", "ADDED", _pod("gone-0", "gone"))
    cache.apply("pods", "ADDED", _pod("kept-0", "kept"))
    assert set(cache.pods) == {"t/gone-0", "t/kept-0"}
    since = cache.mark()
    dropped = cache.resync("pods", [_pod("kept-0", "kept")], since)
    assert dropped == 1
    assert set(cache.pods) == {"t/kept-0"}
    assert "t/gone" not in cache.pods_by_cargo()


def test_a_missed_update_is_taken_from_the_listing() -> None:
    cache = ClusterCache(())
    cache.apply("cargos", "ADDED", _cargo("c"))
    since = cache.mark()
    cache.resync("cargos", [_cargo("c", deleting=True)], since)
    assert cache.cargos["t/c"]["metadata"].get("deletionTimestamp")


def test_events_that_arrive_while_listing_win_over_the_listing() -> None:
    cache = ClusterCache(())
    cache.apply("pods", "ADDED", _pod("old-0", "old"))
    since = cache.mark()
    # while the listing is taken, a new pod is added and old-0 is deleted by watch events
    cache.apply("pods", "ADDED", _pod("new-0", "new"))
    cache.apply("pods", "DELETED", _pod("old-0", "old"))
    # the listing predates both events: it still has old-0 and not new-0
    cache.resync("pods", [_pod("old-0", "old")], since)
    assert set(cache.pods) == {"t/new-0"}
