"""The operator's decision pass on a quiet cluster, with and without its memos, in one run.

    python benchmarks/pass_bench.py [--nodes 1000] [--cargos 500] [--passes 30]

Builds the cache the operator's watches would fill (``--nodes`` nodes of 8 GPUs in racks of
16, one MiniCluster, ``--cargos`` cargos of 2 replicas x 4 GPUs), runs passes until every
cargo is Running with its pods, then times ``--passes`` passes over the unchanged cluster:
once as the operator runs them (a settled cargo whose inputs did not change is skipped, a node
whose inputs did not change is not remade) and once with those memos emptied before each pass
(every cargo and node worked through again, as before they existed). Prints the median CPU ms
of a pass for each and their ratio. No API server: the pass alone.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crane.lifecycle.decide import Decider
from crane.lifecycle.plan import Plan
from crane.operator.cache import ClusterCache
from crane.placement import Engine

LEVELS = ("crane.io/rack", "kubernetes.io/hostname")
NS = "bench"


def node(i: int) -> dict[str, Any]:
    """A Ready node of 8 H100s in rack ``i // 16``."""
    labels = {
        "crane.io/managed": "true",
        "crane.io/rack": f"r{i // 16}",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    }
    ready = {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
    return {
        "metadata": {"name": f"n{i}", "labels": labels},
        "status": {"allocatable": {"nvidia.com/gpu": "8"}, "conditions": [ready]},
    }


def body(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A MiniCluster or Cargo as the watch delivers it."""
    meta = {
        "name": name,
        "namespace": NS,
        "uid": f"uid-{name}",
        "generation": 1,
        "creationTimestamp": "2026-01-01T00:00:00Z",
    }
    return {"apiVersion": "crane.io/v1alpha1", "kind": kind, "metadata": meta, "spec": spec}


def apply(cache: ClusterCache, plan: Plan) -> None:
    """What the API server and kwok make of a plan: statuses stored, pods Running and ready."""
    for w in plan.statuses:
        store = cache.cargos if w.plural == "cargos" else cache.miniclusters
        store[f"{w.namespace}/{w.name}"] = {**store[f"{w.namespace}/{w.name}"], "status": w.status}
    for _, pod in plan.pods:
        meta = {**pod["metadata"], "uid": f"pod-{pod['metadata']['name']}"}
        ready = {"phase": "Running", "containerStatuses": [{"name": "main", "ready": True}]}
        cache.apply("pods", None, {**pod, "metadata": meta, "status": ready})


def build(nodes: int, cargos: int) -> tuple[ClusterCache, Decider]:
    """A cluster whose cargos all run, and the decider that placed them."""

    async def make() -> ClusterCache:
        return ClusterCache(LEVELS)

    cache = asyncio.run(make())
    for i in range(nodes):
        cache.apply("nodes", None, node(i))
    gpus = {"min": 0, "max": nodes * 8}
    cache.apply("miniclusters", None, body("MiniCluster", "mc", {"gpuType": "H100", "gpus": gpus}))
    template = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}
    for i in range(cargos):
        spec = {"miniCluster": "mc", "replicas": 2, "gpusPerReplica": 4, "template": template}
        cache.apply("cargos", None, body("Cargo", f"c{i}", spec))
    decider = Decider(Engine())
    for _ in range(6):
        apply(cache, decider.decide(cache))
    running = sum((c.get("status") or {}).get("phase") == "Running" for c in cache.cargos.values())
    if running != cargos:
        sys.exit(f"only {running} of {cargos} cargos Running after settling")
    return cache, decider


def timed(cache: ClusterCache, decider: Decider, passes: int, forget: bool) -> float:
    """Median CPU ms of a pass; ``forget`` empties the memos before each."""
    times = []
    for _ in range(passes):
        if forget:
            decider.state.steady.clear()
            decider.state.node_inputs.clear()
        start = time.process_time()
        plan = decider.decide(cache)
        times.append(time.process_time() - start)
        if not plan.empty():
            sys.exit(f"a pass over the unchanged cluster wrote {plan}")
    return 1000 * statistics.median(times)


def main() -> None:
    """Print the two medians and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--cargos", type=int, default=500)
    parser.add_argument("--passes", type=int, default=30)
    args = parser.parse_args()
    cache, decider = build(args.nodes, args.cargos)
    memo = timed(cache, decider, args.passes, forget=False)
    full = timed(cache, decider, args.passes, forget=True)
    print(f"{args.nodes} nodes, {args.cargos} Running cargos of 2 pods, one pass:")
    print(f"  as the operator runs it: {memo:.1f} ms CPU")
    print(f"  every cargo and node worked through: {full:.1f} ms CPU")
    print(f"  ratio: {memo / full:.2f}x")


if __name__ == "__main__":
    main()
