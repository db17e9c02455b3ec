"""End-to-end operator benchmark on a real control plane with kwok nodes (not a test).

Measures, with the operator running as a real process, in one run on one cluster:
  1. the API server's limit: a plain concurrent client creating the same pods with ``nodeName``
     preset (what no scheduler can beat), against Crane placing the same pods as cargos of 2
     (gangs in one rack), in alternating rounds; the median rate of each and Crane's ratio;
  2. per pod and per round: API writes (``apiserver_request_total``, leases excluded; kwok's own
     status writes count for both sides) and CPU ms of kube-apiserver and of the operator
     (from /proc);
  3. the time from ``kubectl apply`` of a 64-replica cargo to all its pods Running;
  4. the writes that failed while a namespace of cargos is deleted (goal 0);
  5. the operator's resident memory.

The clock starts only once the operator is ready: its cache is primed, it holds the Lease and
it has counted every node's GPUs. Usage (a cluster from ``hack/cluster up``, KUBECONFIG and the
tools' kubectl on PATH):

  python benchmarks/operator_e2e.py --nodes 1000 --cargos 500 --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crane.kube.client import load_config
from crane.model.fleet import NodeGroup, expand_group
from crane.model.inventory import GPU_PRODUCT_LABEL, GPU_RESOURCE, MANAGED_LABEL

REPO = Path(__file__).resolve().parents[1]
NS = "crane-bench"
RAW_NS = "crane-bench-raw"
TOLERATION = {"key": MANAGED_LABEL, "operator": "Exists", "effect": "NoSchedule"}
WRITES = ("POST", "PUT", "PATCH", "DELETE", "DELETECOLLECTION")
_SAMPLE = re.compile(r"^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$")


def node_manifests(count: int) -> list[dict[str, Any]]:
    """``count`` H100 nodes of 8 GPUs, 16 per rack, 8 racks per block, as kwok nodes."""
    group = NodeGroup(
        name="bench",
        product="NVIDIA-H100-80GB-HBM3",
        gpus_per_node=8,
        islands="0-3,4-7",
        blocks_per_zone=max(1, -(-count // 128)),
        racks_per_block=min(8, max(1, count // 16)),
        nodes_per_rack=16 if count >= 16 else count,
    )
    out = []
    for inv, node_annotations in expand_group(group)[:count]:
        capacity = {"cpu": "128", "memory": "2Ti", "pods": "110", GPU_RESOURCE: str(inv.gpu_count)}
        out.append(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": inv.name,
                    "labels": {
                        **inv.labels,
                        MANAGED_LABEL: "true",
                        "type": "kwok",
                        GPU_PRODUCT_LABEL: inv.gpu_product,
                    },
                    "annotations": {**node_annotations, "kwok.x-k8s.io/node": "fake"},
                },
                "spec": {
                    "taints": [{"key": MANAGED_LABEL, "value": "true", "effect": "NoSchedule"}]
                },
                "status": {"capacity": capacity, "allocatable": capacity},
            }
        )
    return out


def create_nodes(core: client.CoreV1Api, nodes: list[dict[str, Any]]) -> None:
    def one(body: dict[str, Any]) -> None:
        try:
            core.create_node(body)
        except ApiException as err:
            if err.status != 409:
                raise

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(one, nodes))


def cargo(name: str, mc: str, replicas: int, gpus: int) -> dict[str, Any]:
    return {
        "apiVersion": "crane.io/v1alpha1",
        "kind": "Cargo",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "miniCluster": mc,
            "replicas": replicas,
            "gpusPerReplica": gpus,
            "template": {"spec": {"containers": [{"name": "main", "image": "busybox"}]}},
        },
    }


def raw_pod(name: str, node: str, gpus: int) -> dict[str, Any]:
    """The pod a cargo replica becomes, created directly on ``node`` (no scheduler at all)."""
    limits = {GPU_RESOURCE: str(gpus)}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": RAW_NS, "labels": {"bench": "raw"}},
        "spec": {
            "nodeName": node,
            "tolerations": [TOLERATION],
            "containers": [{"name": "main", "image": "busybox", "resources": {"limits": limits}}],
        },
    }


def running_pods(core: client.CoreV1Api, namespace: str, selector: str) -> int:
    """Running pods, from the API server's watch cache (resourceVersion 0), decoded as plain JSON:
    a lighter load on the control plane the benchmark measures than full listings."""
    resp = core.list_namespaced_pod(
        namespace, label_selector=selector, resource_version="0", _preload_content=False
    )
    pods = json.loads(resp.data)["items"]
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")


def pods_left(core: client.CoreV1Api, namespace: str, selector: str) -> int:
    resp = core.list_namespaced_pod(
        namespace, label_selector=selector, resource_version="0", _preload_content=False
    )
    return len(json.loads(resp.data)["items"])


def wait_for(check: Callable[[], bool], what: str, timeout: float) -> float:
    """Poll ``check`` every 0.2 s; the monotonic time it first held."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{what}: not after {timeout}s")
        time.sleep(0.2)
    return time.monotonic()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def apiserver_pid(api: client.ApiClient) -> int:
    """The kube-apiserver process serving ``api`` (found by its port in the command line)."""
    port = str(urlparse(api.configuration.host).port)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            args
            and args[0].endswith(b"kube-apiserver")
            and any(a.decode(errors="replace").endswith(f"={port}") for a in args)
        ):
            return int(proc.name)
    raise SystemExit(f"no kube-apiserver process listens on port {port} on this machine")


def write_counts(api: client.ApiClient) -> tuple[float, float, Counter[str]]:
    """(writes, failed writes, writes by ``VERB resource[/subresource]``) the API server has
    answered so far, leases excluded."""
    method, url, headers, body, post = api.param_serialize(
        "GET", "/metrics", auth_settings=["BearerToken"]
    )
    text = api.call_api(method, url, headers, body, post).read().decode()
    writes = failed = 0.0
    by: Counter[str] = Counter()
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if labels.get("verb") not in WRITES or labels.get("resource") == "leases":
            continue
        value = float(match.group(2))
        writes += value
        sub = labels.get("subresource")
        by[f"{labels['verb']} {labels.get('resource')}{'/' + sub if sub else ''}"] += value
        if labels.get("code", "").startswith(("4", "5")):
            failed += value
    return writes, failed, by


class Probe:
    """Writes and CPU of kube-apiserver and the operator over one stretch of the run."""

    def __init__(
        self, api: client.ApiClient, apiserver: int, operator: int, metrics_port: int
    ) -> None:
        self.api, self.pids = api, {"kube-apiserver": apiserver, "operator": operator}
        self.metrics_port = metrics_port

    def start(self) -> None:
        self.writes, self.failed, self.by = write_counts(self.api)
        self.cpu = {k: cpu_seconds(p) for k, p in self.pids.items()}
        self.refused = operator_metric(self.metrics_port, "crane_api_errors_total{")
        self.passes = operator_metric(self.metrics_port, "crane_decision_seconds_count ")
        self.deciding = operator_metric(self.metrics_port, "crane_decision_seconds_sum ")

    def stop(self, pods: int) -> dict[str, float]:
        """Per pod: writes, and CPU ms of each process; plus the failed writes in all (every
        client's, from the API server) and the operator's own (from its metrics), and the
        operator's passes and the wall time it spent deciding (per pod)."""
        writes, failed, by = write_counts(self.api)
        out = {"writes_per_pod": round((writes - self.writes) / pods, 2)}
        by.subtract(self.by)
        for what, count in by.most_common(6):
            if count >= pods / 20:
                out[f"  {what}"] = round(count / pods, 2)
        for name, pid in self.pids.items():
            out[f"{name}_cpu_ms_per_pod"] = round(
                1000 * (cpu_seconds(pid) - self.cpu[name]) / pods, 2
            )
        out["failed_writes_all_clients"] = failed - self.failed
        refused = operator_metric(self.metrics_port, "crane_api_errors_total{")
        out["failed_writes_operator"] = refused - self.refused
        passes = operator_metric(self.metrics_port, "crane_decision_seconds_count ") - self.passes
        deciding = operator_metric(self.metrics_port, "crane_decision_seconds_sum ")
        out["operator_passes"] = passes
        out["operator_deciding_ms_per_pod"] = round(1000 * (deciding - self.deciding) / pods, 2)
        return out


def kubectl_apply(objects: list[dict[str, Any]]) -> None:
    text = "\n".join(json.dumps(o) for o in objects)
    subprocess.run(
        ["kubectl", "apply", "-f", "-"], input=text, text=True, check=True, capture_output=True
    )


def ensure_namespace(core: client.CoreV1Api, name: str) -> None:
    wait_for(lambda: _create_namespace(core, name), f"namespace {name} (re)created", 300)


def _create_namespace(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as err:
        if err.status != 409:
            raise
        ns = core.read_namespace(name)
        return ns.status.phase == "Active"
    return True


def operator_metric(metrics_port: int, prefix: str) -> float:
    """The sum of the operator's samples starting with ``prefix`` (-1: no answer)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1.0
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix)
    )


def operator_ready(metrics_port: int, gpus: int) -> bool:
    """Whether the operator's passes run as leader: it has counted every node's GPUs."""
    return operator_metric(metrics_port, "crane_gpus_total{") >= gpus


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deleting(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Ask for a collection's deletion; a 504 (the API server's 60 s limit, thousands of
    objects at 10,000 nodes) means the deletion goes on in the server: the caller waits for
    the objects to be gone."""
    try:
        call(*args, **kwargs)
    except ApiException as err:
        if err.status != 504:
            raise


def raw_round(
    core: client.CoreV1Api, probe: Probe, nodes: list[str], count: int, gpus: int, rnd: int
) -> dict[str, float]:
    """``count`` pods with ``nodeName`` preset, two per node like the cargos' replicas."""
    per_node = 8 // gpus
    bodies = [raw_pod(f"r{rnd}-{i}", nodes[i // per_node], gpus) for i in range(count)]
    probe.start()
    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda b: core.create_namespaced_pod(RAW_NS, b), bodies))
    t1 = wait_for(lambda: running_pods(core, RAW_NS, "bench=raw") >= count, "raw pods Running", 900)
    out = {"pods_per_s": round(count / (t1 - t0), 1)} | probe.stop(count)
    deleting(
        core.delete_collection_namespaced_pod,
        RAW_NS,
        label_selector="bench=raw",
        grace_period_seconds=0,
    )
    wait_for(lambda: pods_left(core, RAW_NS, "bench=raw") == 0, "raw pods gone", 900)
    return out


def create_cargos(custom: client.CustomObjectsApi, bodies: list[dict[str, Any]]) -> None:
    """Create the cargos from 16 threads, as many users at once would."""
    with ThreadPoolExecutor(16) as pool:
        list(
            pool.map(
                lambda b: custom.create_namespaced_custom_object(
                    "crane.io", "v1alpha1", NS, "cargos", b
                ),
                bodies,
            )
        )


def crane_round(
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
    probe: Probe,
    cargos: int,
    replicas: int,
    gpus: int,
    rnd: int,
) -> dict[str, float]:
    """``cargos`` cargos of ``replicas`` x ``gpus`` GPUs through the operator."""
    bulk = [cargo(f"c{rnd}-{i}", "bench", replicas, gpus) for i in range(cargos)]
    pods = cargos * replicas
    probe.start()
    t0 = time.monotonic()
    create_cargos(custom, bulk)
    t1 = wait_for(
        lambda: running_pods(core, NS, "crane.io/cargo") >= pods, "cargo pods Running", 900
    )
    out = {"pods_per_s": round(pods / (t1 - t0), 1)} | probe.stop(pods)
    deleting(
        custom.delete_collection_namespaced_custom_object, "crane.io", "v1alpha1", NS, "cargos"
    )
    wait_for(lambda: pods_left(core, NS, "crane.io/cargo") == 0, "cargo pods gone", 900)
    wait_for(
        lambda: (
            not custom.list_namespaced_custom_object("crane.io", "v1alpha1", NS, "cargos")["items"]
        ),
        "cargos gone",
        600,
    )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000, help="kwok nodes to add")
    parser.add_argument("--cargos", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5, help="alternating raw/Crane rounds")
    parser.add_argument(
        "--replicas", type=int, default=2, help="replicas per cargo of the bulk run"
    )
    parser.add_argument("--gpus", type=int, default=4, help="GPUs per replica of the bulk run")
    args = parser.parse_args()

    api = load_config(os.environ.get("KUBECONFIG"))
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    subprocess.run(
        ["kubectl", "apply", "--server-side", "-f", str(REPO / "helm/crane/crds")],
        check=True,
        capture_output=True,
    )
    for ns in (NS, RAW_NS, "crane-system"):
        ensure_namespace(core, ns)
    started = time.monotonic()
    create_nodes(core, node_manifests(args.nodes))
    managed = core.list_node(label_selector=f"{MANAGED_LABEL}=true").items
    gpu_nodes = [n.metadata.name for n in managed]
    total_gpus = sum(int((n.status.allocatable or {}).get(GPU_RESOURCE, 0)) for n in managed)
    print(
        f"{args.nodes} nodes added in {time.monotonic() - started:.1f}s; the cluster has "
        f"{len(managed)} GPU nodes, {total_gpus} GPUs",
        file=sys.stderr,
    )

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    metrics_port = free_port()
    log = open("/tmp/crane-bench-operator.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "crane", "operator", "--lease-namespace", "crane-system",
            "--lease-name", "crane-bench", "--metrics-port", str(metrics_port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        ready_at = wait_for(
            lambda: operator_ready(metrics_port, total_gpus), "operator ready (leader)", 300
        )
        print(f"operator ready after {ready_at - started:.1f}s", file=sys.stderr)
        probe = Probe(api, apiserver_pid(api), proc.pid, metrics_port)
        kubectl_apply(
            [
                {
                    "apiVersion": "crane.io/v1alpha1",
                    "kind": "MiniCluster",
                    "metadata": {"name": "bench", "namespace": NS},
                    "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": total_gpus}},
                }
            ]
        )
        t0 = time.monotonic()
        kubectl_apply([cargo("gang64", "bench", 64, 8)])
        t1 = wait_for(
            lambda: running_pods(core, NS, "crane.io/cargo=gang64") >= 64, "gang64 Running", 300
        )
        gang_seconds = t1 - t0
        custom.delete_namespaced_custom_object("crane.io", "v1alpha1", NS, "cargos", "gang64")
        wait_for(lambda: pods_left(core, NS, "crane.io/cargo=gang64") == 0, "gang64 gone", 300)

        pods = args.cargos * args.replicas
        rounds: dict[str, list[dict[str, float]]] = {"raw": [], "crane": []}
        for rnd in range(args.rounds):
            rounds["raw"].append(raw_round(core, probe, gpu_nodes, pods, args.gpus, rnd))
            rounds["crane"].append(
                crane_round(core, custom, probe, args.cargos, args.replicas, args.gpus, rnd)
            )
            print(
                f"round {rnd + 1}: raw {rounds['raw'][-1]}, crane {rounds['crane'][-1]}",
                file=sys.stderr,
            )
        memory = rss_mib(proc.pid)

        # teardown: the namespace of 500 running cargos goes; count the writes that fail
        create_cargos(
            custom, [cargo(f"t-{i}", "bench", args.replicas, args.gpus) for i in range(args.cargos)]
        )
        wait_for(lambda: running_pods(core, NS, "crane.io/cargo") >= pods, "teardown set", 900)
        probe.start()
        core.delete_namespace(NS)
        wait_for(lambda: not _exists(core, NS), f"namespace {NS} gone", 900)
        teardown = probe.stop(pods)

        def median(side: str, key: str) -> float:
            return round(statistics.median(r.get(key, 0.0) for r in rounds[side]), 2)

        def sides(side: str) -> dict[str, float]:
            keys = dict.fromkeys(k for r in rounds[side] for k in r)
            return {k: median(side, k) for k in keys}

        print(
            json.dumps(
                {
                    "gpu_nodes": len(managed),
                    "rounds": args.rounds,
                    "pods_per_round": pods,
                    "raw": sides("raw"),
                    "crane": sides("crane"),
                    "crane_to_raw_ratio": round(
                        median("crane", "pods_per_s") / median("raw", "pods_per_s"), 2
                    ),
                    "gang64_apply_to_running_s": round(gang_seconds, 2),
                    "teardown_failed_writes_operator": teardown["failed_writes_operator"],
                    "teardown_failed_writes_all_clients": teardown["failed_writes_all_clients"],
                    "operator_rss_mib": round(memory, 1),
                },
                indent=1,
            )
        )
    finally:
        # The operator removes its finalizers from the deleted cargos: delete before stopping it.
        for ns in (NS, RAW_NS):
            subprocess.run(
                ["kubectl", "delete", "namespace", ns, "--timeout=300s"], capture_output=True
            )
        proc.terminate()
        proc.wait(timeout=30)
    return 0


def _exists(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except ApiException as err:
        if err.status == 404:
            return False
        raise
    return True


if __name__ == "__main__":
    sys.exit(main())
