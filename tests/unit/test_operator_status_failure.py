"""Restart safety when a status write fails: decider, actuator and a fake API server together.

A cargo's pods are created only after its placement is in status. A failed status write (409
conflict, 500) leaves the placement unsaved: the next pass writes it again, and no pod is
created for that cargo until a write succeeds.
"""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from crane.kube.names import CARGOS
from crane.lifecycle import cargo_lifecycle
from crane.lifecycle.decide import Decider
from crane.operator.actions import Actuator
from crane.operator.cache import ClusterCache
from crane.operator.loop import SchedulingLoop
from crane.operator.metrics import Metrics
from crane.placement import Engine
from tests.unit.test_operator_decide import cargo, minicluster, new_cache, node


class FlakyApiServer:
    """Accepts every write except cargo status writes while ``failing`` holds an HTTP status;
    accepted status writes reach the cache, as the watch would report them."""

    def __init__(self, cache: ClusterCache) -> None:
        self.cache = cache
        self.failing: int | None = None
        self.calls: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def _record(self, what: str, name: str) -> None:
        with self.lock:
            self.calls.append((what, name))

    def patch_metadata(self, plural: str, ns: str, name: str, meta: Any, *_: Any) -> bool:
        self._record("metadata", name)
        return True

    def replace_status(self, plural: str, ns: str, name: str, status: Any, *_: Any) -> bool:
        if plural == CARGOS and self.failing is not None:
            self._record("status-failed", name)
            raise ApiException(status=self.failing, reason="injected")
        self._record("status", name)
        store = self.cache.cargos if plural == CARGOS else self.cache.miniclusters
        store[f"{ns}/{name}"]["status"] = status
        return True

    def create_pod(self, body: dict[str, Any]) -> bool:
        self._record("pod", body["metadata"]["name"])
        return True

    def create_service(self, body: dict[str, Any]) -> None:
        self._record("service", body["metadata"]["name"])

    def post_event(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("http_status", [409, 500])
def test_failed_placement_write_creates_no_pods_until_a_write_succeeds(
    http_status: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(cargo_lifecycle, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 8, 8)),
        ("cargos", cargo("job", "mc", 2, 4)),
    )
    server = FlakyApiServer(cache)
    decider = Decider(Engine())
    actuator = Actuator(server, Metrics())  # type: ignore[arg-type]
    loop = SchedulingLoop(cache, lambda: decider, actuator, None, Metrics())  # type: ignore[arg-type]

    async def passes(n: int) -> None:
        for _ in range(n):
            await loop.one_pass(decider)
            await loop.flush()
            clock[0] += 60  # past any retry delay for pod creation

    server.failing = http_status
    asyncio.run(passes(4))
    assert ("status-failed", "job") in server.calls
    assert not [c for c in server.calls if c[0] in ("pod", "service")], (
        f"pods created although the placement never reached status: {server.calls}"
    )
    assert not (cache.cargos["t/job"].get("status") or {}).get("placement")

    server.failing = None
    server.calls.clear()
    asyncio.run(passes(1))
    actuator.close()
    placement = cache.cargos["t/job"]["status"]["placement"]
    assert len(placement) == 2
    assert server.calls.index(("status", "job")) < server.calls.index(("pod", "job-0"))
    assert {("pod", "job-0"), ("pod", "job-1")} <= set(server.calls)
