"""Time from ``:grow`` to Running in Kubernetes mode: ``crane operator`` and ``crane serve
--backend kube`` as subprocesses against the cluster ``$KUBECONFIG`` points at (a disposable
test cluster: ``hack/cluster up``), on simulated nodes this script adds and removes.

Two figures, each over ``--grows`` grows of one template cargo (shrunk again after each):

* ``sdk``: ``Client.grow(..., wait=True)``, request to answer (the server waits for Running);
* ``cli``: ``crane mc grow NAME 1 --wait`` as a user types it, process start to exit.

Not a test: prints a table.

    PYTHONPATH=. python benchmarks/api_kube_bench.py --grows 20
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from crane.client import Client, GrowOutcome
from crane.kube.fleet import apply_nodes, delete_nodes, fleet_manifests, wait_ready
from crane.model.fleet import FleetSpec, NodeGroup
from tests.e2e.operator_support import serve_kube_args

REPO = Path(__file__).resolve().parents[1]
ADMIN = "crane_benchadmin_" + "b" * 43


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "crane", *args],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _row(name: str, samples: list[float]) -> str:
    p50 = statistics.median(samples)
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return f"{name:<34} {len(samples):>5} {p50:>8.2f} {p99:>8.2f} {max(samples):>8.2f}"


def _drain(api: Client, core: client.CoreV1Api, tenant: str, mc: str) -> None:
    api.shrink(mc, cargos=[c.name for c in api.list_cargos(mc)], grace_period_seconds=0)
    deadline = time.monotonic() + 60
    while (
        api.list_cargos(mc)
        or core.list_namespaced_pod(tenant, label_selector=f"crane.io/minicluster={mc}").items
    ):
        if time.monotonic() > deadline:
            raise TimeoutError("cargos not gone after a shrink in 60 s")
        time.sleep(0.2)


def main(args: argparse.Namespace) -> None:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        raise SystemExit("set KUBECONFIG to a disposable test cluster (hack/cluster up)")
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    core = client.CoreV1Api(client.ApiClient(cfg))
    subprocess.run(
        ["kubectl", "apply", "--server-side", "-f", str(REPO / "helm/crane/crds")],
        check=True,
        capture_output=True,
    )
    with contextlib.suppress(ApiException):
        core.create_namespace({"metadata": {"name": "crane-system"}})
    group = NodeGroup(name=f"bench-{uuid.uuid4().hex[:5]}", product="NVIDIA-GH200", gpus_per_node=8)
    nodes = fleet_manifests(FleetSpec(groups=[group]))
    apply_nodes(core, nodes)
    names = [n["metadata"]["name"] for n in nodes]
    tmp = Path(tempfile.mkdtemp(prefix="crane-kbench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRANE_")}
    env["PYTHONPATH"] = str(REPO)
    port = _port()
    operator = _start(
        ["operator", "--lease-namespace", "crane-system", "--metrics-port", str(_port())],
        env,
        tmp / "operator.log",
    )
    server = _start(
        serve_kube_args(port, ADMIN, tmp, Path(kubeconfig)),
        env,
        tmp / "serve.log",
    )
    url = f"http://127.0.0.1:{port}"
    tenant = f"bench-{uuid.uuid4().hex[:6]}"
    try:
        wait_ready(core, names, timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"crane serve not ready:\n{(tmp / 'serve.log').read_text()}")
            time.sleep(0.2)
        with Client(url, ADMIN) as admin:
            admin.create_tenant(tenant)
            token = admin.create_token({"scope": "tenant", "tenant": tenant}).token
        spec = {
            "gpuType": "GH200",
            "gpus": {"min": 0, "max": 8},
            "template": {
                "replicas": args.replicas,
                "gpusPerReplica": 1,
                "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}},
            },
        }
        sdk: list[float] = []
        cli: list[float] = []
        with Client(url, token, timeout=120) as api:
            api.create_minicluster("bench", spec)
            for _ in range(args.grows):
                began = time.perf_counter()
                got = api.grow("bench", 1, wait=True, timeout=60)
                sdk.append(time.perf_counter() - began)
                assert got.result is GrowOutcome.GRANTED and not got.timed_out, got
                _drain(api, core, tenant, "bench")
            cli_env = {**env, "CRANE_API_URL": url, "CRANE_TOKEN": token}
            for _ in range(args.grows):
                began = time.perf_counter()
                done = subprocess.run(
                    [sys.executable, "-m", "crane", "mc", "grow", "bench", "1", "--wait"],
                    env=cli_env,
                    capture_output=True,
                    text=True,
                )
                cli.append(time.perf_counter() - began)
                assert done.returncode == 0 and "Running" in done.stdout, done.stderr
                _drain(api, core, tenant, "bench")
            api.delete_minicluster("bench")
        began = time.perf_counter()
        subprocess.run([sys.executable, "-m", "crane", "--help"], env=env, capture_output=True)
        startup = time.perf_counter() - began
        print(f"{'grow -> Running (s)':<34} {'n':>5} {'p50':>8} {'p99':>8} {'max':>8}")
        print(_row(f"sdk grow(wait=True), {args.replicas} pod(s)", sdk))
        print(_row(f"cli crane mc grow --wait, {args.replicas} pod(s)", cli))
        print(f"(the CLI's own start, crane --help: {startup:.2f} s)")
    finally:
        _stop(server)
        _stop(operator)
        delete_nodes(core, names)
        with contextlib.suppress(ApiException):
            core.delete_namespace(tenant)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grows", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=2, help="pods per cargo")
    main(parser.parse_args())
