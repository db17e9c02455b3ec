"""The chart's leader fence on a real API server: a pod an operator sends after another has taken
its lease over is refused, even when the pause fell after the operator's own check of its lease.

An operator checks its lease just before each request goes out; a process stopped (SIGSTOP, a
stalled host) right after that check sends the request when it resumes, perhaps long after the
next leader gave the same GPUs to another cargo. Only the API server can refuse such a pod: the
operator stamps each pod with its term, and the chart's ValidatingAdmissionPolicy admits it only
while the Lease still names that holder and term.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from crane.kube.client import KubeClient
from crane.kube.names import LEADER_TERM_ANNOTATION
from crane.lifecycle.plan import Applied, Plan
from crane.model.refusal import FENCE_REFUSAL
from crane.operator.actions import Actuator
from crane.operator.leader import LeaseElector
from crane.operator.metrics import Metrics
from tests.support import LEASE_NAMESPACE

pytestmark = pytest.mark.e2e

LEASE = "crane-operator"
"""The Lease the fence of the e2e tests guards (tests/support.py ``apply_leader_fence``)."""


@pytest.fixture
def writer(kube_cluster: Any) -> Iterator[KubeClient]:
    """A KubeClient of its own (it fences its connections' writes), as the operator has."""
    api = config.new_client_from_config(config_file=str(kube_cluster.kubeconfig))
    yield KubeClient(api)
    api.close()  # type: ignore[no-untyped-call]


def _pod(namespace: str, name: str, stamp: str | None = None) -> dict[str, Any]:
    annotations = {LEADER_TERM_ANNOTATION: stamp} if stamp else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"containers": [{"name": "main", "image": "crane-test"}]},
    }


def _take(elector: LeaseElector, timeout: float = 60) -> None:
    """Wait until ``elector`` holds the lease (the previous holder's lapses first)."""
    deadline = time.monotonic() + timeout
    while not elector.try_acquire():
        assert time.monotonic() < deadline, f"{elector.identity} never took the lease"
        time.sleep(0.2)


def _fence_enforced(core: client.CoreV1Api, namespace: str, timeout: float = 60) -> None:
    """Wait until the API server enforces the fence on the Lease (a policy just applied, or
    a Lease just created, takes the API server a moment to see)."""
    stale = _pod(namespace, "probe", f"{LEASE_NAMESPACE}/{LEASE}/nobody/-1")
    deadline = time.monotonic() + timeout
    while True:
        try:
            core.create_namespaced_pod(namespace, stale, dry_run="All")
        except ApiException as err:
            if err.status == 403 and FENCE_REFUSAL in (err.body or ""):
                return
        assert time.monotonic() < deadline, "the leader fence is not enforced"
        time.sleep(0.2)


def _apply(actuator: Actuator, plan: Plan) -> Applied:
    async def run() -> Applied:
        return await actuator.apply(plan)

    return asyncio.run(run())


def test_a_pod_sent_after_the_lease_changed_hands_is_refused(
    crane_crds: str,
    kube_api: client.ApiClient,
    core_v1: client.CoreV1Api,
    namespace: str,
    writer: KubeClient,
) -> None:
    """Operator A leads and prepares a pod; B takes the lapsed lease over; A's pod then goes
    out (its own check said yes: the pause fell right after it) and must not land. B's pod,
    made the same way, lands stamped with B's term."""
    leases = client.CoordinationV1Api(kube_api)
    suffix = uuid.uuid4().hex[:6]
    a = LeaseElector(leases, LEASE_NAMESPACE, LEASE, f"a-{suffix}", 1.0)
    b = LeaseElector(leases, LEASE_NAMESPACE, LEASE, f"b-{suffix}", 1.0)
    _take(a)
    _fence_enforced(core_v1, namespace)
    stale = Actuator(writer, Metrics(), fence=lambda: True, stamp=a.stamp)
    fresh = Actuator(writer, Metrics(), fence=lambda: True, stamp=b.stamp)
    try:
        _take(b)
        plan = Plan()
        plan.pods.append((f"{namespace}/late", _pod(namespace, "late-0")))
        applied = _apply(stale, plan)
        with pytest.raises(ApiException) as gone:
            core_v1.read_namespaced_pod("late-0", namespace)
        assert gone.value.status == 404, "a pod of a term that is over landed"
        assert not applied.refused, "a fenced pod must not fail its cargo"
        assert stale.metrics.api_errors.labels("fenced")._value.get() == 1

        plan = Plan()
        plan.pods.append((f"{namespace}/now", _pod(namespace, "now-0")))
        _apply(fresh, plan)
        made = core_v1.read_namespaced_pod("now-0", namespace)
        assert made.metadata.annotations[LEADER_TERM_ANNOTATION] == b.stamp()
        assert b.stamp() != a.stamp()
    finally:
        stale.close()
        fresh.close()
        b.release()


def test_a_pod_without_a_stamp_or_of_another_lease_passes(
    crane_crds: str, kube_api: client.ApiClient, core_v1: client.CoreV1Api, namespace: str
) -> None:
    """The fence touches only pods stamped for its own Lease: anyone else's pods (no stamp, or
    another release's Lease) are created as before."""
    leases = client.CoordinationV1Api(kube_api)
    holder = LeaseElector(leases, LEASE_NAMESPACE, LEASE, f"h-{uuid.uuid4().hex[:6]}", 1.0)
    _take(holder)
    try:
        _fence_enforced(core_v1, namespace)
        core_v1.create_namespaced_pod(namespace, _pod(namespace, "plain"))
        core_v1.create_namespaced_pod(
            namespace, _pod(namespace, "other", "elsewhere/crane-operator/someone/3")
        )
    finally:
        holder.release()
    names = {p.metadata.name for p in core_v1.list_namespaced_pod(namespace).items}
    assert {"plain", "other"} <= names
