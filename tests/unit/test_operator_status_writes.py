"""Status writes replace what Crane owns, and a stale writer cannot overwrite a newer state.

A fake API server with resourceVersions and a lagging watch: the operator's own writes chain
on each other (no spurious conflict while the watch catches up); a change by anyone else in
between makes the write fail with 409, which the decider learns and writes again next pass.
"""

from __future__ import annotations

import asyncio
import copy
import json
from types import SimpleNamespace
from typing import Any

from kubernetes.client.exceptions import ApiException

from crane.kube.client import KubeClient
from crane.kube.names import CARGOS, MINICLUSTERS
from crane.lifecycle.decide import Decider
from crane.operator.actions import Actuator, Versions
from crane.operator.loop import SchedulingLoop
from crane.operator.metrics import Metrics
from crane.placement import Engine
from tests.unit.test_operator_decide import cargo, minicluster, new_cache, node


class VersionedServer:
    """Objects with resourceVersions; status replaced whole, only at the expected version."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 10
        self.conflicts: list[str] = []
        self.interfere: tuple[str, str] | None = None
        self.pods: dict[str, dict[str, Any] | None] = {}
        """Pods created (None: deleted since the watch last delivered them)."""
        self.gone: dict[str, dict[str, Any]] = {}
        for plural, store in ((CARGOS, cache.cargos), (MINICLUSTERS, cache.miniclusters)):
            for key, body in store.items():
                body["metadata"]["resourceVersion"] = self._bump()
                self.objects[(plural, key)] = copy.deepcopy(body)

    def _bump(self) -> str:
        self.version += 1
        return str(self.version)

    def replace_status(
        self, plural: str, ns: str, name: str, status: Any, version: str | None = None
    ) -> str | None:
        obj = self.objects[(plural, f"{ns}/{name}")]
        if self.interfere == (plural, f"{ns}/{name}"):
            self.interfere = None
            self.someone_else_writes(plural, f"{ns}/{name}")
        if version and version != obj["metadata"]["resourceVersion"]:
            self.conflicts.append(name)
            return None
        obj["status"] = copy.deepcopy(status)
        obj["metadata"]["resourceVersion"] = self._bump()
        return str(obj["metadata"]["resourceVersion"])

    def patch_metadata(
        self, plural: str, ns: str, name: str, meta: Any, version: str | None = None
    ) -> str | None:
        obj = self.objects[(plural, f"{ns}/{name}")]
        if version and version != obj["metadata"]["resourceVersion"]:
            self.conflicts.append(name)
            return None
        obj["metadata"].update(copy.deepcopy(meta))
        obj["metadata"]["resourceVersion"] = self._bump()
        return str(obj["metadata"]["resourceVersion"])

    def someone_else_writes(self, plural: str, key: str) -> None:
        self.objects[(plural, key)]["metadata"]["resourceVersion"] = self._bump()

    def deliver_watch(self) -> None:
        for (plural, key), obj in self.objects.items():
            store = self.cache.cargos if plural == CARGOS else self.cache.miniclusters
            store[key] = copy.deepcopy(obj)
        for key, pod in self.pods.items():
            self.cache.apply("pods", "DELETED" if pod is None else None, pod or self.gone[key])
        self.pods = {k: p for k, p in self.pods.items() if p is not None}

    def create_pod(self, body: Any) -> bool:
        meta = {**body["metadata"], "uid": f"p-{body['metadata']['name']}"}
        pod = {**body, "metadata": meta, "status": {"phase": "Pending"}}
        self.pods[f"{meta['namespace']}/{meta['name']}"] = pod
        return True

    def delete_pod(self, namespace: str, name: str, grace_seconds: int | None = None) -> None:
        key = f"{namespace}/{name}"
        if self.pods.get(key) is not None:
            self.gone[key], self.pods[key] = self.pods[key], None

    def patch_pod_annotations(self, *args: Any) -> None:
        pass

    def patch_pod_labels(self, *args: Any) -> None:
        pass

    def create_service(self, body: Any) -> None:
        pass

    def post_event(self, *args: Any) -> None:
        pass


def test_own_writes_chain_while_the_watch_lags_and_a_foreign_change_is_a_learned_conflict() -> None:
    cache = new_cache(
        ("nodes", node("n0")),
        ("miniclusters", minicluster("mc", 8, 8)),
        ("cargos", cargo("job", "mc", 2, 4)),
    )
    server = VersionedServer(cache)
    decider = Decider(Engine())
    actuator = Actuator(server, Metrics())  # type: ignore[arg-type]
    loop = SchedulingLoop(cache, lambda: decider, actuator, None, Metrics())  # type: ignore[arg-type]

    async def passes(n: int, watch: bool) -> None:
        for _ in range(n):
            await loop.one_pass(decider)
            await loop.flush()
            if watch:
                server.deliver_watch()

    asyncio.run(passes(3, watch=False))  # the watch shows nothing of Crane's writes yet
    assert server.conflicts == [], "Crane's own writes never conflict with each other"
    assert server.objects[(CARGOS, "t/job")]["status"]["placement"]
    # The user scales the cargo to 1 (the watch shows it), and just before Crane's write about
    # it goes out someone else writes the cargo: the write fails (409), is learned, and goes
    # through on a later pass. (The shrink writes once the extra replica's pod is gone.)
    server.deliver_watch()
    server.objects[(CARGOS, "t/job")]["spec"]["replicas"] = 1
    server.someone_else_writes(CARGOS, "t/job")
    server.deliver_watch()
    server.interfere = (CARGOS, "t/job")
    for _ in range(5):
        asyncio.run(passes(1, watch=False))
        if server.conflicts:
            break
        server.deliver_watch()
    assert "job" in server.conflicts
    assert decider.state.unsaved, "the failed write is learned"
    asyncio.run(passes(3, watch=True))
    actuator.close()
    assert not decider.state.unsaved
    assert server.objects[(CARGOS, "t/job")]["status"]["replicas"] == 1


def test_versions_chain_only_on_crane_s_own_writes() -> None:
    v = Versions()
    assert v.current("u", "5") == "5"
    assert v.wrote("u", "5", "6") == "6"
    assert v.current("u", "5") == "6", "the cache has not seen Crane's write yet"
    assert v.wrote("u", "6", "7") == "7"
    assert v.current("u", "5") == "7" and v.current("u", "6") == "7"
    assert v.current("u", "9") == "9", "a version Crane did not produce is written against as is"
    assert v.wrote("u", "9", None) is None
    assert v.current("u", "5") == "5", "after a conflict nothing is chained"


class _Sender:
    """Stands for ``KubeClient._send``: records each request, answers or fails."""

    def __init__(self, fail: int | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, str, Any]] = []

    def __call__(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self.calls.append((method, path, body))
        if self.fail:
            raise ApiException(status=self.fail)
        return SimpleNamespace(data=json.dumps({"metadata": {"resourceVersion": "8"}}))


def test_client_replaces_the_whole_status_at_a_version() -> None:
    client = KubeClient.__new__(KubeClient)
    send = _Sender()
    client._send = send  # type: ignore[method-assign]
    status = {"reservation": {}, "reservedGpus": 0}
    assert client.replace_status(MINICLUSTERS, "t", "r1", status, "7") == "8"
    method, path, body = send.calls[0]
    assert (method, path) == ("PUT", "/apis/crane.io/v1alpha1/namespaces/t/miniclusters/r1/status")
    assert body["status"] == status, "the whole status: a node gone from the map disappears"
    assert body["metadata"]["resourceVersion"] == "7" and body["kind"] == "MiniCluster"
    client._send = _Sender(fail=409)  # type: ignore[method-assign]
    assert client.replace_status(MINICLUSTERS, "t", "r1", status, "7") is None
