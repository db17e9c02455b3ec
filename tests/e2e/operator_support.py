"""Helpers of the operator e2e tests: the operator as a subprocess, simulated nodes, object
reads, manifests, waits and the GPU double-booking check; the API-on-Kubernetes stack
(``crane serve --backend kube`` and ``crane operator``) of the API e2e tests. The fixtures are in
conftest.py."""

from __future__ import annotations

import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crane.client import Client
from crane.kube.fleet import apply_nodes, fleet_manifests, wait_ready
from crane.model.fleet import FleetSpec, NodeGroup
from tests.process import ChildProcess
from tests.support import LEASE_NAMESPACE, free_port

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "crane.io", "v1alpha1"
NOT_READY_ANNOTATION = "sim.crane.io/not-ready"
"""The kwok stages of the test cluster turn a node with this annotation NotReady and keep it so."""


class OperatorProcess(ChildProcess):
    """``python -m crane operator`` as a subprocess, logging to a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        """Not started yet: call :meth:`start`."""
        super().__init__(log)
        self.env = {**env, "PYTHONPATH": str(REPO)}
        self.metrics_port, self.health_port = free_port(), free_port()

    def start(self) -> None:
        """Start a new operator process (the previous one must be gone)."""
        args = operator_args(
            self.metrics_port,
            node_grace=5,
            liveness=f"http://127.0.0.1:{self.health_port}/healthz",
        )
        self.spawn([sys.executable, "-m", "crane", *args], self.env, REPO)

    def healthz(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=5) as r:
            return int(r.status)

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as r:
            return str(r.read().decode())


def poll(
    check: Callable[[], Any],
    what: str,
    logs: Callable[[], str],
    timeout: float = 60,
    interval: float = 0.5,
) -> Any:
    """Call ``check`` every ``interval`` seconds until it returns something true, and return
    that; after ``timeout`` seconds fail naming ``what``, the last value and ``logs()``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last: {last!r})\n{logs()}"
    )


def wait(check: Callable[[], Any], what: str, proc: OperatorProcess, timeout: float = 60) -> Any:
    """:func:`poll` that prints the operator's log on a timeout."""
    return poll(check, what, lambda: f"operator log:\n{proc.tail()}", timeout)


def add_nodes(
    core: client.CoreV1Api, group: str, product: str, racks: int, per_rack: int, gpus: int = 8
) -> list[str]:
    spec = FleetSpec(
        groups=[
            NodeGroup(
                name=group,
                product=product,
                gpus_per_node=gpus,
                racks_per_block=racks,
                nodes_per_rack=per_rack,
            )
        ]
    )
    nodes = fleet_manifests(spec)
    apply_nodes(core, nodes)
    names = [n["metadata"]["name"] for n in nodes]
    wait_ready(core, names, timeout=60)
    return names


def get(custom: client.CustomObjectsApi, plural: str, ns: str, name: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
        return obj
    except ApiException as err:
        if err.status == 404:
            return None
        raise


def cond(obj: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return dict(c)
    return {}


def crane_pods(
    core: client.CoreV1Api, ns: str, selector: str = "crane.io/cargo"
) -> list[client.V1Pod]:
    return list(core.list_namespaced_pod(ns, label_selector=selector).items)


def running(pods: list[client.V1Pod], count: int) -> bool:
    return len(pods) == count and all(p.status.phase == "Running" for p in pods)


def apply(kube_cluster: Any, ns: str, text: str) -> None:
    kube_cluster.kubectl("apply", "-n", ns, "-f", "-", input=text)


def mc_yaml(name: str, gpu: str, lo: int, hi: int, priority: int = 0, extra: str = "") -> str:
    return (
        f"apiVersion: crane.io/v1alpha1\nkind: MiniCluster\nmetadata: {{name: {name}}}\n"
        f"spec: {{gpuType: {gpu}, gpus: {{min: {lo}, max: {hi}}}, priority: {priority}{extra}}}\n"
    )


def cargo_yaml(
    name: str,
    mc: str,
    replicas: int,
    gpus: int,
    policy: str = "Never",
    grace: int = 1,
    annotations: str = "{}",
) -> str:
    return (
        f"apiVersion: crane.io/v1alpha1\nkind: Cargo\nmetadata: {{name: {name}}}\n"
        f"spec:\n  miniCluster: {mc}\n  replicas: {replicas}\n  gpusPerReplica: {gpus}\n"
        f"  restartPolicy: {policy}\n  template:\n    metadata: {{annotations: {annotations}}}\n"
        f"    spec:\n      terminationGracePeriodSeconds: {grace}\n"
        f"      containers: [{{name: main, image: busybox}}]\n"
    )


def assert_no_gpu_double_booked(core: client.CoreV1Api) -> None:
    """Per node: GPU requests of live pods <= capacity, and no GPU id given to two Crane pods.

    Pods left on nodes that no longer exist (another test's, until pod GC removes them) hold no
    GPU and are not counted.
    """
    capacity = {
        n.metadata.name: int((n.status.allocatable or {}).get("nvidia.com/gpu", "0"))
        for n in core.list_node().items
    }
    used: dict[str, int] = {}
    ids: dict[str, list[int]] = {}
    for pod in core.list_pod_for_all_namespaces().items:
        if pod.status.phase in ("Succeeded", "Failed") or pod.spec.node_name not in capacity:
            continue
        gpus = sum(
            int(((c.resources and c.resources.limits) or {}).get("nvidia.com/gpu", "0"))
            for c in pod.spec.containers
        )
        used[pod.spec.node_name] = used.get(pod.spec.node_name, 0) + gpus
        gpu_ids = (pod.metadata.annotations or {}).get("crane.io/gpu-ids", "")
        ids.setdefault(pod.spec.node_name, []).extend(int(i) for i in gpu_ids.split(",") if i)
    for node, count in used.items():
        if node not in capacity:
            continue  # a node another test deleted: its pods hold nothing any more
        assert count <= capacity[node], (
            f"node {node}: {count} GPUs requested, capacity {capacity.get(node)}"
        )
    for node, given in ids.items():
        assert len(given) == len(set(given)), f"node {node}: GPU ids given twice: {sorted(given)}"


def forged_pod(
    name: str,
    node: str,
    cargo: str,
    gpu_ids: str,
    replica: int = 0,
    claim: str = "",
    owner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A pod a tenant writes by hand with Crane's cargo and replica labels and GPU ids
    annotation, bound to ``node`` (``spec.nodeName``, past the scheduler and Crane's taint), that
    asks for no GPU of its own; with ``claim``, it refers to a ResourceClaim of that name as
    Crane's replicas on DRA nodes do; with ``owner``, it names that object as its owner."""
    meta: dict[str, Any] = {
        "name": name,
        "labels": {"crane.io/cargo": cargo, "crane.io/replica": str(replica)},
        "annotations": {"crane.io/gpu-ids": gpu_ids},
    }
    if owner is not None:
        meta["ownerReferences"] = [owner]
    spec: dict[str, Any] = {
        "nodeName": node,
        "terminationGracePeriodSeconds": 1,
        "tolerations": [{"operator": "Exists"}],
        "containers": [{"name": "main", "image": "busybox"}],
    }
    if claim:
        spec["resourceClaims"] = [{"name": "crane-gpus", "resourceClaimName": claim}]
        spec["containers"][0]["resources"] = {"claims": [{"name": "crane-gpus"}]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def wait_pass(
    kube_cluster: Any, custom: client.CustomObjectsApi, ns: str, proc: OperatorProcess
) -> None:
    """Wait until the operator has made a pass that started after this call: a probe cargo (of
    a MiniCluster that does not exist) gets its Pending status, then is deleted."""
    name = f"probe-{uuid.uuid4().hex[:6]}"
    apply(kube_cluster, ns, cargo_yaml(name, f"{name}-none", 1, 1))
    wait(
        lambda: ((get(custom, "cargos", ns, name) or {}).get("status") or {}).get("phase"),
        f"the operator's pass over cargo {name}",
        proc,
        90,
    )
    custom.delete_namespaced_custom_object(GROUP, VERSION, ns, "cargos", name)


def delete_all(
    custom: client.CustomObjectsApi, core: client.CoreV1Api, ns: str, proc: OperatorProcess
) -> None:
    for mc in custom.list_namespaced_custom_object(GROUP, VERSION, ns, "miniclusters")["items"]:
        custom.delete_namespaced_custom_object(
            GROUP, VERSION, ns, "miniclusters", mc["metadata"]["name"]
        )
    wait(lambda: not crane_pods(core, ns), "the test's pods to go", proc, timeout=90)


def node_labels(core: client.CoreV1Api, name: str) -> dict[str, str]:
    return dict(core.read_node(name).metadata.labels or {})


class Proc(ChildProcess):
    """A ``python -m crane ...`` subprocess logging to a file, started at once."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        """Start ``python -m crane <args>``."""
        super().__init__(log)
        self.spawn([sys.executable, "-m", "crane", *args], env, REPO)


def crane_env(kube_env: dict[str, str]) -> dict[str, str]:
    """The environment of a crane subprocess: the cluster's, no CRANE_* of the caller."""
    env = {k: v for k, v in kube_env.items() if not k.startswith("CRANE_")}
    return {**env, "PYTHONPATH": str(REPO)}


def wait_serving(server: Proc, url: str) -> None:
    """Wait until ``crane serve`` at ``url`` answers ``/readyz`` (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        assert server.proc is not None and server.proc.poll() is None, (
            f"crane serve exited:\n{server.tail()}"
        )
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"crane serve not ready in 60 s:\n{server.tail()}"
        time.sleep(0.2)


def serve_kube_args(port: int, token: str, data: Path, kubeconfig: Path) -> list[str]:
    """``crane serve --backend kube`` arguments: ``port``, bootstrap ``token``, an SQLite
    database under ``data``, the test cluster's ``kubeconfig``."""
    return [
        "serve",
        "--backend",
        "kube",
        "--port",
        str(port),
        "--bootstrap-token",
        token,
        "--database-url",
        f"sqlite:///{data / 'crane.db'}",
        "--kubeconfig",
        str(kubeconfig),
        "--log-level",
        "warning",
    ]


def operator_args(
    metrics_port: int | None = None,
    *,
    lease_seconds: float = 3,
    node_grace: float | None = None,
    liveness: str | None = None,
    api_url: str | None = None,
    api_token: str | None = None,
) -> list[str]:
    """``crane operator`` arguments: the tests' lease namespace, a ``lease_seconds`` lease,
    metrics on ``metrics_port`` (a free port when None); ``--node-grace``, ``--liveness``,
    ``--api-url`` and ``--api-token`` only when given."""
    args = ["operator", "--lease-namespace", LEASE_NAMESPACE, "--lease-seconds", str(lease_seconds)]
    if node_grace is not None:
        args += ["--node-grace", str(node_grace)]
    args += ["--metrics-port", str(free_port() if metrics_port is None else metrics_port)]
    if liveness is not None:
        args += ["--liveness", liveness]
    if api_url is not None:
        args += ["--api-url", api_url]
    if api_token is not None:
        args += ["--api-token", api_token]
    return args


ADMIN = "crane_kapiadmin_" + "k" * 43
"""The bootstrap token of the API stack (fixture ``stack``)."""
PRODUCT = "nvidia.com/gpu.product"
# The GPU families of the API stack's simulated nodes: one per test, none used by the other
# e2e modules, so each test's free capacity is its own.
FLOW, RACE, EVENTS, HPO = "NVIDIA-L40S", "NVIDIA-H800", "NVIDIA-V100", "NVIDIA-A40"
USAGE = "NVIDIA-T4"
AM = "NVIDIA-L4"
HOLD = "NVIDIA-A2"


@dataclass
class Stack:
    """``crane serve --backend kube`` and ``crane operator`` on the session cluster, with
    simulated nodes of the GPU families above (fixture ``stack`` in conftest.py)."""

    url: str
    operator: Proc
    server: Proc
    nodes: dict[str, list[str]]
    """GPU product -> names of the simulated nodes added for it."""
    core: client.CoreV1Api
    tmp: Path
    tenants: list[str]
    serve: list[str]
    env: dict[str, str]

    def admin(self, tenant: str | None = None) -> Client:
        return Client(self.url, ADMIN, tenant=tenant, timeout=120)

    def tenant(self) -> tuple[str, str]:
        """A new tenant (a namespace in kube mode) and a tenant-scoped token for it."""
        name = f"kapi-{uuid.uuid4().hex[:8]}"
        with self.admin() as api:
            api.create_tenant(name)
            token = api.create_token({"scope": "tenant", "tenant": name}).token
        self.tenants.append(name)
        return name, token

    def restart_server(self, down_for: Callable[[], None]) -> None:
        """Stop ``crane serve``, run ``down_for`` meanwhile, start it again on the same database."""
        self.server.stop()
        down_for()
        self.server = Proc(self.serve, self.env, self.tmp / "serve.log")
        wait_serving(self.server, self.url)

    def logs(self) -> str:
        return f"--- operator log:\n{self.operator.tail()}\n--- server log:\n{self.server.tail()}"
