"""End-to-end operator benchmark on a real control plane with kwok nodes (not a test).

Measures, with the operator running as a real process:
  1. time from `kubectl apply` of a 64-replica cargo to all its pods Running;
  2. pods created and Running per second for N cargos on the simulated fleet;
  3. the operator's resident memory at that size.

Usage (a cluster from `hack/cluster up`, KUBECONFIG and our kubectl on PATH):
  python benchmarks/operator_e2e.py --nodes 1000 --cargos 500
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crane.kube.client import load_config
from crane.model.fleet import NodeGroup, expand_group
from crane.model.inventory import GPU_PRODUCT_LABEL, GPU_RESOURCE, MANAGED_LABEL

REPO = Path(__file__).resolve().parents[1]
NS = "crane-bench"


def node_manifests(count: int) -> list[dict[str, Any]]:
    """``count`` H100 nodes of 8 GPUs, 16 per rack, 8 racks per block, as kwok nodes."""
    group = NodeGroup(
        name="bench",
        product="NVIDIA-H100-80GB-HBM3",
        gpus_per_node=8,
        islands="0-3,4-7",
        blocks_per_zone=max(1, count // 128),
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


def running_pods(core: client.CoreV1Api, selector: str) -> int:
    """Running pods, from the API server's watch cache (resourceVersion 0), decoded as plain JSON:
    a lighter load on the control plane the benchmark measures than full listings."""
    resp = core.list_namespaced_pod(
        NS, label_selector=selector, resource_version="0", _preload_content=False
    )
    pods = json.loads(resp.data)["items"]
    return sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")


def wait_running(core: client.CoreV1Api, selector: str, count: int, timeout: float) -> float:
    start = time.monotonic()
    while running_pods(core, selector) < count:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{selector}: fewer than {count} pods Running after {timeout}s")
        time.sleep(0.5)
    return time.monotonic()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def kubectl_apply(objects: list[dict[str, Any]]) -> None:
    text = "\n".join(json.dumps(o) for o in objects)
    subprocess.run(
        ["kubectl", "apply", "-f", "-"], input=text, text=True, check=True, capture_output=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--cargos", type=int, default=500)
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
    for ns in (NS, "crane-system"):
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
        except ApiException as err:
            if err.status != 409:
                raise
    started = time.monotonic()
    create_nodes(core, node_manifests(args.nodes))
    print(f"{args.nodes} nodes created in {time.monotonic() - started:.1f}s", file=sys.stderr)

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = open("/tmp/crane-bench-operator.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crane",
            "operator",
            "--lease-namespace",
            "crane-system",
            "--lease-name",
            "crane-bench",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(5)
        total_gpus = args.nodes * 8
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
        time.sleep(2)
        t0 = time.monotonic()
        kubectl_apply([cargo("gang64", "bench", 64, 8)])
        t1 = wait_running(core, "crane.io/cargo=gang64", 64, 300)
        gang_seconds = t1 - t0
        custom.delete_namespaced_custom_object("crane.io", "v1alpha1", NS, "cargos", "gang64")
        while core.list_namespaced_pod(NS, label_selector="crane.io/cargo=gang64").items:
            time.sleep(0.5)

        bulk = [cargo(f"c{i}", "bench", args.replicas, args.gpus) for i in range(args.cargos)]
        pods = args.cargos * args.replicas
        t0 = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda b: custom.create_namespaced_custom_object(
                        "crane.io", "v1alpha1", NS, "cargos", b
                    ),
                    bulk,
                )
            )
        t1 = wait_running(core, "crane.io/cargo", pods, 900)
        rate = pods / (t1 - t0)
        memory = rss_mib(proc.pid)
        print(
            json.dumps(
                {
                    "nodes": args.nodes,
                    "gang64_apply_to_running_s": round(gang_seconds, 2),
                    "bulk_cargos": args.cargos,
                    "bulk_pods": pods,
                    "bulk_seconds": round(t1 - t0, 1),
                    "pods_running_per_s": round(rate, 1),
                    "operator_rss_mib": round(memory, 1),
                }
            )
        )
    finally:
        # The operator removes its finalizers from the deleted cargos: delete before stopping it.
        subprocess.run(
            ["kubectl", "delete", "namespace", NS, "--timeout=300s"], capture_output=True
        )
        proc.terminate()
        proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
