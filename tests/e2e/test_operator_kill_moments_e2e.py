"""The operator SIGKILLed (or paused past its lease) at random moments of one operation at a
time on a real control plane, while a watcher reads every pod continuously: no GPU id of a
node is held by two live pods (terminating ones included: a kubelet honours the grace
period, simulated here by a finalizer of the test's on the pods), no node is asked for more
GPUs than it has, a pod's CRANE_GPU_IDS is its annotation, and once the operator is back the
cargos end where a user expects: each runs or no node has its GPUs free, a MiniCluster's
``inUseGpus`` is what its pods hold, a Running cargo's placement is where its pods are.

Moments: a preemption's grace period (another borrower waiting must not take the preemptor's
GPUs), a gang restart after a replica failed (``OnFailure``), a MiniCluster's deletion and hold
while its pods terminate, ``kubectl scale cg`` up and down, a node lost with its pod still
there (a partitioned kubelet) and back; and two operators paused in turn (SIGSTOP past the
lease, then SIGCONT while the other leads) during churn. ``CRANE_KILL_SEED`` replays a run.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.operator_support import (
    GROUP,
    NOT_READY_ANNOTATION,
    VERSION,
    OperatorProcess,
    apply,
    cargo_yaml,
    crane_pods,
    get,
    mc_yaml,
    poll,
    wait,
    wait_pass,
)
from tests.support import LEASE_NAMESPACE

pytestmark = pytest.mark.e2e

HOLD = "test.crane.io/hold"
"""A finalizer the test puts on pods: a deleted pod stays terminating until the test lets go."""


class Watcher:
    """Reads every pod every few tenths of a second; records each double booking seen."""

    def __init__(self, core: client.CoreV1Api) -> None:
        self.core = core
        self.seen: list[str] = []
        self.pods: set[str] = set()
        """Every Crane pod name seen."""
        self.reads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(ApiException):
                self.check()
            self._stop.wait(0.2)

    def check(self) -> None:
        capacity = {
            n.metadata.name: int((n.status.allocatable or {}).get("nvidia.com/gpu", "0"))
            for n in self.core.list_node().items
        }
        used: dict[str, int] = {}
        holders: dict[tuple[str, int], list[str]] = {}
        for pod in self.core.list_pod_for_all_namespaces().items:
            node = pod.spec.node_name
            if pod.status.phase in ("Succeeded", "Failed") or node not in capacity:
                continue
            gpus = sum(
                int(((c.resources and c.resources.limits) or {}).get("nvidia.com/gpu", "0"))
                for c in pod.spec.containers
            )
            used[node] = used.get(node, 0) + gpus
            self.pods.add(pod.metadata.name)
            ids = (pod.metadata.annotations or {}).get("crane.io/gpu-ids", "")
            env = {e.name: e.value for c in pod.spec.containers for e in (c.env or []) if e.value}
            if env.get("CRANE_GPU_IDS", ids) != ids:
                self.seen.append(f"{pod.metadata.name}: env {env['CRANE_GPU_IDS']} != {ids}")
            for i in ids.split(","):
                if i:
                    holders.setdefault((node, int(i)), []).append(
                        f"{pod.metadata.namespace}/{pod.metadata.name}"
                        + ("(terminating)" if pod.metadata.deletion_timestamp else "")
                    )
        self.reads += 1
        for node, count in used.items():
            if count > capacity[node]:
                self.seen.append(f"node {node}: {count} GPUs asked, capacity {capacity[node]}")
        for (node, gpu), pods in holders.items():
            if len(pods) > 1:
                self.seen.append(f"node {node} GPU {gpu} held by {pods}")


def hold_pods(core: client.CoreV1Api, ns: str) -> None:
    """Put the test's finalizer on every Crane pod of ``ns`` (a slow kubelet)."""
    for pod in crane_pods(core, ns):
        if HOLD not in (pod.metadata.finalizers or []):
            try:
                core.patch_namespaced_pod(
                    pod.metadata.name,
                    ns,
                    {"metadata": {"finalizers": [*(pod.metadata.finalizers or []), HOLD]}},
                )
            except ApiException as err:
                if err.status != 404:
                    raise


def release_pods(core: client.CoreV1Api, ns: str) -> None:
    """Take the test's finalizer off every pod of ``ns``."""
    for pod in core.list_namespaced_pod(ns).items:
        fins = pod.metadata.finalizers or []
        if HOLD in fins:
            try:
                core.patch_namespaced_pod(
                    pod.metadata.name,
                    ns,
                    {"metadata": {"finalizers": [f for f in fins if f != HOLD] or None}},
                )
            except ApiException as err:
                if err.status != 404:
                    raise


@pytest.fixture(autouse=True)
def let_go(core_v1: client.CoreV1Api, namespace: str) -> Iterator[None]:
    """The test's finalizer comes off every pod at the end, whatever happened: the namespace
    could not be deleted otherwise."""
    try:
        yield
    finally:
        release_pods(core_v1, namespace)


def restart(operator: OperatorProcess, delay: float) -> None:
    """SIGKILL the operator after ``delay`` seconds and start it again."""
    time.sleep(delay)
    operator.kill()
    operator.start()


def live(core: client.CoreV1Api, ns: str, cargo: str | None = None) -> list[client.V1Pod]:
    sel = f"crane.io/cargo={cargo}" if cargo else "crane.io/cargo"
    return [
        p
        for p in crane_pods(core, ns, sel)
        if not p.metadata.deletion_timestamp and p.status.phase == "Running"
    ]


def phase(custom: client.CustomObjectsApi, ns: str, name: str) -> str:
    return str(((get(custom, "cargos", ns, name) or {}).get("status") or {}).get("phase"))


def cleanup(custom: client.CustomObjectsApi, core: client.CoreV1Api, ns: str, op: Any) -> None:
    release_pods(core, ns)
    for mc in custom.list_namespaced_custom_object(GROUP, VERSION, ns, "miniclusters")["items"]:
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, ns, "miniclusters", mc["metadata"]["name"]
        )

    def gone() -> bool:
        release_pods(core, ns)
        return not crane_pods(core, ns)

    wait(gone, "the test's pods to go", op, timeout=120)


def state(custom: client.CustomObjectsApi, core: client.CoreV1Api, ns: str) -> str:
    """The namespace's cargos (spec replicas, status) and pods, for a failure's message."""
    lines = []
    for cg in custom.list_namespaced_custom_object(GROUP, VERSION, ns, "cargos")["items"]:
        lines.append(
            f"cargo {cg['metadata']['name']} replicas {cg['spec'].get('replicas')}"
            f" annotations {cg['metadata'].get('annotations')} status {cg.get('status')}"
        )
    for mc in custom.list_namespaced_custom_object(GROUP, VERSION, ns, "miniclusters")["items"]:
        lines.append(f"minicluster {mc['metadata']['name']} status {mc.get('status')}")
    for p in core.list_namespaced_pod(ns).items:
        lines.append(
            f"pod {p.metadata.name} {p.status.phase} node {p.spec.node_name}"
            f" deleting {bool(p.metadata.deletion_timestamp)}"
            f" ids {(p.metadata.annotations or {}).get('crane.io/gpu-ids')}"
        )
    for e in sorted(core.list_namespaced_event(ns).items, key=lambda e: str(e.last_timestamp)):
        lines.append(f"event {e.last_timestamp} {e.involved_object.name} {e.reason}: {e.message}")
    return "\n".join(lines)


def status_truthful(custom: client.CustomObjectsApi, core: client.CoreV1Api, ns: str) -> bool:
    """Each MiniCluster's inUseGpus is what its running pods hold, and each cargo that
    says Running has its pods running on its placement."""
    pods = live(core, ns)
    ok = True
    for mc in custom.list_namespaced_custom_object(GROUP, VERSION, ns, "miniclusters")["items"]:
        name = mc["metadata"]["name"]
        held = sum(
            len((p.metadata.annotations or {}).get("crane.io/gpu-ids", "").split(","))
            for p in pods
            if (p.metadata.labels or {}).get("crane.io/minicluster") == name
        )
        got = (mc.get("status") or {}).get("inUseGpus", 0)
        if got != held:
            print(f"mc {name}: inUseGpus {got}, pods hold {held}")
            ok = False
    for cg in custom.list_namespaced_custom_object(GROUP, VERSION, ns, "cargos")["items"]:
        st = cg.get("status") or {}
        name = cg["metadata"]["name"]
        mine = sorted(
            (p.spec.node_name, (p.metadata.annotations or {}).get("crane.io/gpu-ids", ""))
            for p in pods
            if (p.metadata.labels or {}).get("crane.io/cargo") == name
        )
        placed = sorted(
            (r["node"], ",".join(map(str, r["gpuIds"]))) for r in st.get("placement") or []
        )
        if st.get("phase") == "Running" and mine != placed:
            print(f"cargo {name}: Running, placement {placed}, pods {mine}")
            ok = False
    return ok


def assert_status_truthful(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, ns: str
) -> None:
    assert poll(lambda: status_truthful(custom, core, ns), "status truthful", lambda: "", 30)


SEED = int(os.environ.get("CRANE_KILL_SEED", str(random.randrange(1 << 30))))


def rng(name: str) -> random.Random:
    print(f"seed {SEED} ({name})")
    return random.Random(f"{SEED}-{name}")


def test_kill_during_preemption_grace(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    r = rng("preempt")
    nodes("kmpre", "NVIDIA-P4", racks=1, per_rack=1)
    with Watcher(core_v1) as w:
        apply(kube_cluster, namespace, mc_yaml("low", "P4", 0, 8, priority=0))
        apply(kube_cluster, namespace, cargo_yaml("v", "low", 2, 4, grace=30))
        wait(lambda: len(live(core_v1, namespace, "v")) == 2, "v Running", operator)
        hold_pods(core_v1, namespace)
        apply(kube_cluster, namespace, mc_yaml("high", "P4", 8, 8, priority=100))
        apply(kube_cluster, namespace, cargo_yaml("p", "high", 2, 4))
        apply(kube_cluster, namespace, cargo_yaml("x", "low", 1, 4))
        for _ in range(3):
            restart(operator, r.uniform(0.0, 2.5))
        wait(
            lambda: phase(custom, namespace, "v") in ("Preempted", "Pending"),
            "v preempted",
            operator,
            90,
        )
        for _ in range(2):
            restart(operator, r.uniform(0.0, 2.0))
        wait_pass(kube_cluster, custom, namespace, operator)
        assert not live(core_v1, namespace, "p"), "p runs while v's pods terminate"
        release_pods(core_v1, namespace)
        wait(lambda: len(live(core_v1, namespace, "p")) == 2, "p Running", operator, 90)
        assert phase(custom, namespace, "v") == "Pending"
        wait_pass(kube_cluster, custom, namespace, operator)
        assert phase(custom, namespace, "x") == "Pending"
        assert_status_truthful(custom, core_v1, namespace)
    assert not {n for n in w.pods if n.startswith("x-")}, "x placed on the preemptor's GPUs"
    assert w.reads > 10 and not w.seen, w.seen
    cleanup(custom, core_v1, namespace, operator)


def test_kill_during_gang_restart_on_failure(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    r = rng("gang")
    nodes("kmgang", "NVIDIA-P40", racks=1, per_rack=2)
    with Watcher(core_v1) as w:
        apply(kube_cluster, namespace, mc_yaml("mc", "P40", 0, 16))
        sim = '{"sim.crane.io/exit-code": "1", "sim.crane.io/run-for": "4s"}'
        apply(
            kube_cluster,
            namespace,
            cargo_yaml("g", "mc", 2, 4, policy="OnFailure", annotations=sim).replace(
                "  restartPolicy: OnFailure\n", "  restartPolicy: OnFailure\n  backoffLimit: 50\n"
            ),
        )
        apply(kube_cluster, namespace, cargo_yaml("w", "mc", 2, 4))
        for _ in range(6):
            hold_pods(core_v1, namespace)
            restart(operator, r.uniform(0.5, 5.0))
            time.sleep(r.uniform(0, 2))
            release_pods(core_v1, namespace)
        release_pods(core_v1, namespace)
        wait(lambda: len(live(core_v1, namespace, "w")) == 2, "w Running", operator, 90)

        def restarts() -> int:
            return int(((get(custom, "cargos", namespace, "g") or {})["status"]).get("restarts", 0))

        before = restarts()
        wait(lambda: restarts() > before, "g restarting again", operator, 90)
    assert w.reads > 10 and not w.seen, w.seen
    cleanup(custom, core_v1, namespace, operator)


def test_kill_during_minicluster_deletion(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    r = rng("mcdel")
    nodes("kmdel", "NVIDIA-K80", racks=1, per_rack=1)
    with Watcher(core_v1) as w:
        apply(kube_cluster, namespace, mc_yaml("a", "K80", 8, 8))
        apply(kube_cluster, namespace, cargo_yaml("a1", "a", 2, 4, grace=30))
        wait(lambda: len(live(core_v1, namespace, "a1")) == 2, "a1 Running", operator)
        apply(kube_cluster, namespace, mc_yaml("b", "K80", 0, 8))
        apply(kube_cluster, namespace, cargo_yaml("b1", "b", 2, 4))
        wait(lambda: phase(custom, namespace, "b1") == "Pending", "b1 Pending", operator)
        hold_pods(core_v1, namespace)
        custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "miniclusters", "a")
        for _ in range(3):
            restart(operator, r.uniform(0.0, 2.5))
        wait_pass(kube_cluster, custom, namespace, operator)
        assert not live(core_v1, namespace, "b1"), "b1 runs while a1's pods terminate"
        release_pods(core_v1, namespace)
        wait(lambda: len(live(core_v1, namespace, "b1")) == 2, "b1 Running", operator, 90)
        wait(lambda: get(custom, "miniclusters", namespace, "a") is None, "a gone", operator)
    assert w.reads > 10 and not w.seen, w.seen
    cleanup(custom, core_v1, namespace, operator)


def test_kill_during_grow_and_shrink(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    r = rng("grow")
    nodes("kmgrow", "NVIDIA-M6", racks=1, per_rack=2)
    with Watcher(core_v1) as w:
        apply(kube_cluster, namespace, mc_yaml("mc", "M6", 0, 16))
        apply(kube_cluster, namespace, cargo_yaml("a", "mc", 1, 4, grace=30))
        apply(kube_cluster, namespace, cargo_yaml("b", "mc", 1, 4, grace=30))
        wait(lambda: len(live(core_v1, namespace)) == 2, "a, b Running", operator)
        for size in (3, 1, 3, 2):
            hold_pods(core_v1, namespace)
            kube_cluster.kubectl("scale", "-n", namespace, "cg/a", f"--replicas={size}")
            restart(operator, r.uniform(0.0, 2.0))
            time.sleep(r.uniform(0, 2))
            release_pods(core_v1, namespace)
            poll(
                lambda s=size: (
                    len(live(core_v1, namespace, "a")) == s
                    and len(crane_pods(core_v1, namespace, "crane.io/cargo=a")) == s
                ),
                f"a at {size}",
                lambda: f"{state(custom, core_v1, namespace)}\noperator log:\n{operator.tail()}",
                90,
            )
        apply(kube_cluster, namespace, cargo_yaml("c", "mc", 1, 4))
        wait(lambda: len(live(core_v1, namespace, "c")) == 1, "c Running", operator, 90)
        wait(
            lambda: status_truthful(custom, core_v1, namespace),
            "status truthful",
            operator,
            30,
        )
    assert w.reads > 10 and not w.seen, w.seen
    cleanup(custom, core_v1, namespace, operator)


def test_a_shrink_taken_back_across_a_restart_keeps_the_gang(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    """``kubectl scale cg/a --replicas=1`` of a running gang of 3; the operator is killed while
    the two leaving pods terminate; they go; ``--replicas=3`` again; the operator comes back.
    The pods Crane deleted for the shrink are not replicas deleted by hand: the gang runs at 3
    again (it failed, "replica 1 failed: its pod was deleted", with restartPolicy Never)."""
    nodes("kmback", "NVIDIA-TAKEBACK", racks=1, per_rack=2)
    with Watcher(core_v1) as w:
        apply(kube_cluster, namespace, mc_yaml("mc", "TAKEBACK", 0, 16))
        apply(kube_cluster, namespace, cargo_yaml("a", "mc", 3, 4, grace=30))
        wait(lambda: len(live(core_v1, namespace, "a")) == 3, "a Running at 3", operator)
        hold_pods(core_v1, namespace)
        kube_cluster.kubectl("scale", "-n", namespace, "cg/a", "--replicas=1")
        wait(
            lambda: (
                len(crane_pods(core_v1, namespace, "crane.io/cargo=a")) == 3
                and len(live(core_v1, namespace, "a")) == 1
            ),
            "a-1 and a-2 terminating",
            operator,
        )
        operator.kill()
        release_pods(core_v1, namespace)
        wait(
            lambda: len(crane_pods(core_v1, namespace, "crane.io/cargo=a")) == 1,
            "a-1 and a-2 gone",
            operator,
        )
        kube_cluster.kubectl("scale", "-n", namespace, "cg/a", "--replicas=3")
        operator.start()
        poll(
            lambda: len(live(core_v1, namespace, "a")) == 3 and phase(custom, namespace, "a"),
            "a at 3 again",
            lambda: f"{state(custom, core_v1, namespace)}\noperator log:\n{operator.tail()}",
            90,
        )
        assert phase(custom, namespace, "a") in ("Placed", "Running")
        wait(lambda: phase(custom, namespace, "a") == "Running", "a Running", operator)
        assert_status_truthful(custom, core_v1, namespace)
    assert w.reads > 10 and not w.seen, w.seen
    cleanup(custom, core_v1, namespace, operator)


def test_kill_during_node_loss(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    r = rng("node")
    names = nodes("kmnode", "NVIDIA-M40", racks=1, per_rack=2)
    with Watcher(core_v1) as w:
        apply(kube_cluster, namespace, mc_yaml("mc", "M40", 0, 16))
        apply(kube_cluster, namespace, cargo_yaml("a", "mc", 1, 8, policy="OnFailure"))
        wait(lambda: len(live(core_v1, namespace, "a")) == 1, "a Running", operator)
        node = live(core_v1, namespace, "a")[0].spec.node_name
        apply(kube_cluster, namespace, cargo_yaml("b", "mc", 1, 8))
        wait(lambda: len(live(core_v1, namespace, "b")) == 1, "b Running", operator)
        hold_pods(core_v1, namespace)  # a partitioned kubelet: a's pod goes on there
        core_v1.patch_node(node, {"metadata": {"annotations": {NOT_READY_ANNOTATION: "true"}}})
        try:
            for _ in range(4):
                restart(operator, r.uniform(1.0, 4.0))
            wait(lambda: phase(custom, namespace, "a") == "Pending", "a Pending", operator, 90)
        finally:
            core_v1.patch_node(node, {"metadata": {"annotations": {NOT_READY_ANNOTATION: None}}})
        wait(
            lambda: any(
                c.type == "Ready" and c.status == "True"
                for c in core_v1.read_node(node).status.conditions
            ),
            f"{node} Ready again",
            operator,
        )
        restart(operator, r.uniform(0.0, 2.0))
        wait_pass(kube_cluster, custom, namespace, operator)
        assert len(crane_pods(core_v1, namespace, "crane.io/cargo=a")) == 1, (
            "a placed again beside its old pod"
        )
        release_pods(core_v1, namespace)
        wait(lambda: len(live(core_v1, namespace)) == 2, "a, b Running", operator, 120)
        assert {p.spec.node_name for p in live(core_v1, namespace)} == set(names)
    assert w.reads > 10 and not w.seen, w.seen
    cleanup(custom, core_v1, namespace, operator)


def test_leaders_paused_in_turn_during_churn(
    operator: OperatorProcess,
    kube_cluster: Any,
    kube_api: client.ApiClient,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    r = rng("turns")
    names = nodes("kmturn", "NVIDIA-P2", racks=1, per_rack=2)
    assert operator.proc is not None
    other = OperatorProcess(kube_cluster.env, tmp_path / "other.log")
    other.start()
    leases = client.CoordinationV1Api(kube_api)

    def holder() -> OperatorProcess | None:
        try:
            spec = leases.read_namespaced_lease("crane-operator", LEASE_NAMESPACE).spec
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        for op in (operator, other):
            assert op.proc is not None
            if spec.holder_identity and spec.holder_identity.endswith(f"-{op.proc.pid}"):
                return op
        return None

    made: list[str] = []
    try:
        with Watcher(core_v1) as w:
            apply(kube_cluster, namespace, mc_yaml("mc", "P2", 0, 16))
            for turn in range(6):
                lead = wait(holder, "a leader", operator, 60)
                assert lead.proc is not None
                for i in range(3):
                    name = f"t{turn}-{i}"
                    apply(kube_cluster, namespace, cargo_yaml(name, "mc", 1, r.choice([2, 4])))
                    made.append(name)
                drop = r.sample(made, k=min(len(made), 2))
                time.sleep(r.uniform(0, 1.5))
                os.kill(lead.proc.pid, signal.SIGSTOP)
                try:
                    for name in drop:
                        made.remove(name)
                        custom.delete_namespaced_custom_object(
                            GROUP, VERSION, namespace, "cargos", name
                        )
                    time.sleep(r.uniform(3.5, 7))
                finally:
                    os.kill(lead.proc.pid, signal.SIGCONT)
                time.sleep(r.uniform(0, 2))

            def settled() -> bool:
                """Every cargo runs, or no node has the GPUs it waits for free."""
                pods = live(core_v1, namespace)
                running = {(p.metadata.labels or {}).get("crane.io/cargo") for p in pods}
                free = dict.fromkeys(names, 8)
                for p in crane_pods(core_v1, namespace):
                    held = (p.metadata.annotations or {}).get("crane.io/gpu-ids", "")
                    free[p.spec.node_name] -= len(held.split(","))
                for n in made:
                    body = get(custom, "cargos", namespace, n) or {}
                    if n not in running and body["spec"]["gpusPerReplica"] <= max(free.values()):
                        return False
                return True

            wait(settled, "every cargo Running or no room for it", operator, 120)
            assert_status_truthful(custom, core_v1, namespace)
    finally:
        other.kill()
        print(f"other log:\n{other.tail(60)}")
    assert w.reads > 10 and not w.seen, w.seen
    cleanup(custom, core_v1, namespace, operator)


def test_kill_during_hold(
    operator: OperatorProcess,
    kube_cluster: Any,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
) -> None:
    r = rng("hold")
    nodes("kmhold", "NVIDIA-K40", racks=1, per_rack=1)
    with Watcher(core_v1) as w:
        apply(kube_cluster, namespace, mc_yaml("a", "K40", 8, 8, extra=", replicas: 0"))
        apply(kube_cluster, namespace, cargo_yaml("a1", "a", 2, 4, grace=30))
        wait(lambda: len(live(core_v1, namespace, "a1")) == 2, "a1 Running", operator)
        apply(kube_cluster, namespace, mc_yaml("b", "K40", 8, 8))
        apply(kube_cluster, namespace, cargo_yaml("b1", "b", 2, 4))
        wait(lambda: phase(custom, namespace, "b1") == "Pending", "b1 Pending", operator)
        hold_pods(core_v1, namespace)
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "miniclusters", "a", {"spec": {"suspend": True}}
        )
        for _ in range(3):
            restart(operator, r.uniform(0.0, 2.5))
        wait_pass(kube_cluster, custom, namespace, operator)
        assert not live(core_v1, namespace, "b1"), "b1 runs while a1's pods terminate"
        release_pods(core_v1, namespace)
        wait(lambda: len(live(core_v1, namespace, "b1")) == 2, "b1 Running", operator, 90)
        assert_status_truthful(custom, core_v1, namespace)
    assert w.reads > 10 and not w.seen, w.seen
    cleanup(custom, core_v1, namespace, operator)


def test_a_leader_paused_amid_its_pod_creates_sends_none_after_losing_the_lease(
    operator: OperatorProcess,
    kube_cluster: Any,
    kube_api: client.ApiClient,
    core_v1: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    namespace: str,
    nodes: Callable[..., list[str]],
    tmp_path: Path,
) -> None:
    """SIGSTOP right after a 16-pod cargo's placement is written, while its creates go out;
    the cargo is deleted and another takes its GPUs under the other leader; SIGCONT. The
    creates the paused leader had prepared must not land on the other cargo's GPUs."""
    nodes("kmburst", "NVIDIA-P3", racks=1, per_rack=2)
    assert operator.proc is not None
    other = OperatorProcess(kube_cluster.env, tmp_path / "other.log")
    other.start()
    leases = client.CoordinationV1Api(kube_api)
    try:
        with Watcher(core_v1) as w:
            apply(kube_cluster, namespace, mc_yaml("mc", "P3", 0, 16))
            wait_pass(kube_cluster, custom, namespace, operator)  # someone leads
            for turn in range(4):
                big, then = f"big{turn}", f"then{turn}"
                holder = leases.read_namespaced_lease("crane-operator", LEASE_NAMESPACE).spec
                lead = next(
                    op
                    for op in (operator, other)
                    if op.proc is not None
                    and str(holder.holder_identity).endswith(f"-{op.proc.pid}")
                )
                assert lead.proc is not None
                apply(kube_cluster, namespace, cargo_yaml(big, "mc", 16, 1))
                poll(
                    lambda b=big: (
                        (get(custom, "cargos", namespace, b) or {}).get("status") or {}
                    ).get("placement"),
                    f"{big}'s placement written",
                    lambda: "",
                    60,
                    0.01,
                )
                os.kill(lead.proc.pid, signal.SIGSTOP)
                try:
                    custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "cargos", big)
                    apply(kube_cluster, namespace, cargo_yaml(then, "mc", 16, 1))
                    wait(
                        lambda t=then: len(live(core_v1, namespace, t)) == 16,
                        f"{then} Running under the other leader",
                        operator,
                        90,
                    )
                finally:
                    os.kill(lead.proc.pid, signal.SIGCONT)
                wait_pass(kube_cluster, custom, namespace, lead)
                w.check()
                custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "cargos", then)
                wait(lambda: not crane_pods(core_v1, namespace), "the pods gone", operator, 90)
    finally:
        other.kill()
    assert w.reads > 10 and not w.seen, w.seen
    cleanup(custom, core_v1, namespace, operator)
