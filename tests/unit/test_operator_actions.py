"""The actuator against a recording fake client: a cargo's metadata, then its status, then its
pods; no pods when the status write failed; one status write per object per pass."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from crane.kube.names import CARGOS, MINICLUSTERS
from crane.lifecycle.plan import Applied, Plan, StatusWrite
from crane.operator.actions import Actuator
from crane.operator.metrics import Metrics


class FakeClient:
    def __init__(self, gone: set[str]) -> None:
        self.calls: list[tuple[str, str]] = []
        self.gone = gone
        self.lock = threading.Lock()

    def _record(self, what: str, name: str) -> None:
        with self.lock:
            self.calls.append((what, name))

    def patch_metadata(self, plural: str, ns: str, name: str, meta: Any, *_: Any) -> bool:
        self._record("metadata", name)
        return name not in self.gone

    def replace_status(self, plural: str, ns: str, name: str, status: Any, *_: Any) -> bool:
        self._record("status", name)
        return name not in self.gone

    def create_pod(self, body: dict[str, Any]) -> bool:
        self._record("pod", body["metadata"]["name"])
        return True

    def create_service(self, body: dict[str, Any]) -> None:
        self._record("service", body["metadata"]["name"])

    def patch_pod_annotations(self, ns: str, name: str, annotations: dict[str, str]) -> None:
        self._record("annotate", name)

    def delete_pod(self, ns: str, name: str, grace: int | None = None) -> None:
        self._record("delete", name)

    def post_event(self, involved: Any, *args: Any) -> None:
        self._record("event", involved["metadata"]["name"])


def pod(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "t"}}


def test_metadata_then_status_then_pods_and_none_when_the_status_failed() -> None:
    plan = Plan()
    for cargo in ("a", "b"):
        plan.patch_metadata((CARGOS, "t", cargo), {"finalizers": ["crane.io/finalizer"]})
        plan.status(StatusWrite(CARGOS, "t", cargo, {"phase": "Pending"}, cargo, f"t/{cargo}"))
        plan.status(StatusWrite(CARGOS, "t", cargo, {"phase": "Placed"}, cargo, f"t/{cargo}"))
        plan.pods += [(f"t/{cargo}", pod(f"{cargo}-0")), (f"t/{cargo}", pod(f"{cargo}-1"))]
        plan.services.append((f"t/{cargo}", pod(cargo)))
    plan.status(StatusWrite(MINICLUSTERS, "t", "mc", {"cargos": 2}, "mc"))
    plan.event({"metadata": {"name": "a", "namespace": "t"}}, "Placed", "placed")
    client = FakeClient(gone={"b"})
    actuator = Actuator(client, Metrics())  # type: ignore[arg-type]

    async def run() -> Applied:
        applied = await actuator.apply(plan)
        await asyncio.gather(*actuator._background)
        return applied

    applied = asyncio.run(run())
    actuator.close()
    calls = client.calls
    assert [c for c in calls if c == ("status", "a")] == [("status", "a")], "one write per pass"
    assert (
        calls.index(("metadata", "a")) < calls.index(("status", "a")) < calls.index(("pod", "a-0"))
    )
    assert {("pod", "a-0"), ("pod", "a-1"), ("service", "a"), ("status", "mc")} <= set(calls)
    assert not [c for c in calls if c[0] in ("pod", "service") and c[1].startswith("b")], (
        "no pods for a cargo whose placement was not written"
    )
    assert ("event", "a") in calls
    assert applied.failed_status == {(CARGOS, "t", "b")}
    assert sorted(applied.unsent_pods) == ["t/b-0", "t/b-1"]


def test_a_pod_gets_its_notice_before_it_is_deleted() -> None:
    plan = Plan()
    for i in range(20):
        plan.pod_deletes.append(("t", f"p-{i}", None))
        plan.pod_annotations.append(("t", f"p-{i}", {"crane.io/notice": "{}"}))
    plan.pod_annotations.append(("t", "kept", {"crane.io/replicas": "1"}))
    client = FakeClient(gone=set())
    actuator = Actuator(client, Metrics())  # type: ignore[arg-type]
    asyncio.run(actuator.apply(plan))
    actuator.close()
    calls = client.calls
    for i in range(20):
        assert calls.index(("annotate", f"p-{i}")) < calls.index(("delete", f"p-{i}"))
    assert ("annotate", "kept") in calls and ("delete", "kept") not in calls


class EndingNamespace(FakeClient):
    """An API server that refuses every create in namespace ``t``: it is being deleted."""

    def create_pod(self, body: dict[str, Any]) -> bool:
        from kubernetes.client.exceptions import ApiException

        self._record("pod", body["metadata"]["name"])
        err = ApiException(status=403, reason="Forbidden")
        err.body = (
            '{"message":"pods \\"x\\" is forbidden: unable to create new content in namespace '
            't because it is being terminated"}'
        )
        raise err


def test_the_first_refusal_in_an_ending_namespace_stops_the_other_creates() -> None:
    plan = Plan()
    for i in range(200):
        plan.pods.append((f"t/c{i}", pod(f"c{i}-0")))
    client = EndingNamespace(gone=set())
    actuator = Actuator(client, Metrics(), in_flight=4)  # type: ignore[arg-type]
    applied = asyncio.run(actuator.apply(plan))
    actuator.close()
    sent = [c for c in client.calls if c[0] == "pod"]
    assert 1 <= len(sent) <= 4, f"{len(sent)} creates sent into a namespace being deleted"
    assert applied.terminating == {"t"}


def _release_and_claim(client: FakeClient) -> Applied:
    """A pass that gives back GPUs of cargo ``old`` and places cargo ``new`` (on them)."""
    plan = Plan()
    plan.status(
        StatusWrite(CARGOS, "t", "old", {"phase": "Pending"}, "old", "t/old", releases=True)
    )
    plan.status(StatusWrite(CARGOS, "t", "new", {"phase": "Placed"}, "new", "t/new", claims=True))
    plan.pods.append(("t/new", pod("new-0")))
    plan.status(StatusWrite(MINICLUSTERS, "t", "mc", {"cargos": 2}, "mc"))
    plan.patch_metadata((CARGOS, "t", "adopted"), {"ownerReferences": []})
    actuator = Actuator(client, Metrics())  # type: ignore[arg-type]

    async def run() -> Applied:
        applied = await actuator.apply(plan)
        await asyncio.gather(*actuator._background)
        return applied

    try:
        return asyncio.run(run())
    finally:
        actuator.close()


def test_a_status_that_gives_gpus_back_lands_before_one_that_claims_gpus() -> None:
    client = FakeClient(gone=set())
    applied = _release_and_claim(client)
    calls = client.calls
    assert (
        calls.index(("status", "old"))
        < calls.index(("status", "new"))
        < calls.index(("pod", "new-0"))
    )
    assert not applied.failed_status


def test_no_gpu_is_claimed_in_a_pass_whose_release_failed() -> None:
    """Two stored statuses must never hold one GPU: a killed operator or a refused write between
    the two would leave exactly that."""
    client = FakeClient(gone={"old"})
    applied = _release_and_claim(client)
    assert ("status", "new") not in client.calls and ("pod", "new-0") not in client.calls
    assert {(CARGOS, "t", "old"), (CARGOS, "t", "new")} <= applied.failed_status
    assert applied.unsent_pods == ("t/new-0",)
    assert ("status", "mc") in client.calls, "writes that claim nothing go on"
    assert ("metadata", "adopted") in client.calls
