"""The long chaos run (not a test): `crane operator` SIGKILLed 100+ times over 20+ minutes.

Starts a cluster of its own (``hack/cluster up FLEET`` under ``CRANE_CLUSTER_NAME=chaos-bench``;
the run restarts its kube-apiserver, so it never reuses yours), runs the same harness as
``tests/chaos`` (churn with preemption, lowered min/max, ``kubectl scale``, deletes, one node
NotReady, one kube-apiserver restart; invariants from the API server alone after every kill and
at the end), prints every figure and exits 1 on any violation. ``--docker-kills N`` also runs
the Docker-mode chaos (``crane serve --backend docker`` on hack/dockerd 0..2; run it under
``flock /tmp/crane-docker.lock`` on a shared machine).

Usage (tools built by hack/build-tools):
  python benchmarks/chaos.py                                # 100 kills, >= 20 minutes, medium fleet
  python benchmarks/chaos.py --kills 30 --minutes 0 --fleet hack/fleets/small.yaml --seed 7
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script: `tests` is importable from the repository root
    sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from tests.chaos.kube_harness import (  # noqa: E402
    ChaosConfig,
    ChaosResult,
    KubeChaos,
    dedicated_cluster,
    prepare,
)


def gpu_types(fleet: Path) -> list[tuple[str, int]]:
    """(family, GPUs per node) of each node group of a fleet spec, e.g. ("H100", 8)."""
    spec = yaml.safe_load(fleet.read_text())
    out = []
    for group in spec["groups"]:
        product = str(group["product"]).removeprefix("NVIDIA-").removeprefix("Tesla-")
        out.append((product.split("-")[0], int(group["gpusPerNode"])))
    return out


def kube_run(args: argparse.Namespace, work: Path) -> ChaosResult:
    """The Kubernetes chaos run on a dedicated cluster."""
    from kubernetes import client

    types = gpu_types(args.fleet)
    with dedicated_cluster(args.cluster_name, args.fleet) as cluster:
        api = cluster.api_client()
        try:
            prepare(cluster, client.CoreV1Api(api))
        finally:
            api.close()  # type: ignore[no-untyped-call]
        cfg = ChaosConfig(
            kills=args.kills,
            minutes=args.minutes,
            seed=args.seed,
            lease_seconds=args.lease_seconds,
            gpu_types=types,
            max_miniclusters=args.max_miniclusters,
            work_dir=work,
        )
        return KubeChaos(cluster, cfg).run()


def docker_run(args: argparse.Namespace, work: Path) -> ChaosResult:
    """The Docker-mode chaos run on hack/dockerd 0..2."""
    from tests.chaos.docker_harness import DockerChaos, DockerChaosConfig
    from tests.dockerd import clean, daemons

    urls = daemons(range(3))
    clean(urls)
    run = DockerChaos(
        urls, work / "docker", DockerChaosConfig(kills=args.docker_kills, seed=args.seed)
    )
    try:
        return run.run()
    finally:
        run.close()


def main() -> int:
    """Parse the flags, run, print every figure; 1 on any violation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="operator SIGKILLs (at least)")
    parser.add_argument(
        "--minutes",
        type=float,
        default=20,
        help="keep killing until this many minutes have passed too",
    )
    parser.add_argument("--seed", type=int, default=None, help="replay a run (printed)")
    parser.add_argument("--fleet", type=Path, default=REPO / "hack" / "fleets" / "medium.yaml")
    parser.add_argument("--lease-seconds", type=float, default=5.0)
    parser.add_argument(
        "--max-miniclusters",
        type=int,
        default=24,
        help="MiniClusters the churn keeps alive at most",
    )
    parser.add_argument("--cluster-name", default="chaos-bench")
    parser.add_argument(
        "--docker-kills",
        type=int,
        default=0,
        help="also SIGKILL crane serve (Docker mode) this many times",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=None,
        help="where logs go (default: a fresh temporary directory)",
    )
    args = parser.parse_args()
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="crane-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    ok = True
    if args.kills > 0:
        result = kube_run(args, work)
        print("== Kubernetes mode: crane operator SIGKILLed during churn")
        print(result.report())
        ok = ok and result.ok
    if args.docker_kills > 0:
        result = docker_run(args, work)
        print("== Docker mode: crane serve SIGKILLed during churn")
        print(result.report())
        ok = ok and result.ok
    print(
        f"== total {time.monotonic() - started:.0f} s; logs in {work}; "
        f"{'no violation' if ok else 'VIOLATIONS FOUND'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
