"""Fixtures for end-to-end tests on a real Kubernetes control plane with simulated GPU nodes,
and the databases (SQLite and a throwaway PostgreSQL) every server test runs on.

``kube_cluster`` reuses the cluster KUBECONFIG points at when it answers, else starts one with
``hack/cluster up hack/fleets/small.yaml`` (a cluster of its own, named per session) and deletes
it at the end. Either way the small fleet's nodes are there. With ``CI=true`` a cluster that
cannot be had fails the run; otherwise the e2e tests are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from crane.kube.fleet import apply_nodes, fleet_manifests, load_spec, wait_ready
from tests.postgres import new_database, throwaway_postgres
from tests.support import LEASE_NAMESPACE, apply_leader_fence, unavailable, wait_established

REPO = Path(__file__).resolve().parents[1]
SMALL_FLEET = REPO / "hack" / "fleets" / "small.yaml"


@dataclass(frozen=True)
class KubeCluster:
    """A running test cluster: where its kubeconfig is, and the tools built for it."""

    kubeconfig: Path
    tools_bin: Path
    name: str | None
    """The hack/cluster name when this session started it; None for a reused cluster."""

    @property
    def env(self) -> dict[str, str]:
        """The environment for a subprocess that talks to the cluster (KUBECONFIG, PATH)."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PATH": f"{self.tools_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run the cluster's own kubectl; raises AssertionError with its stderr when it fails."""
        proc = subprocess.run(
            [str(self.tools_bin / "kubectl"), *args],
            input=input,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def _answers(kubeconfig: str, tools_bin: Path) -> bool:
    cmd = [
        str(tools_bin / "kubectl"),
        "--kubeconfig",
        kubeconfig,
        "--request-timeout=5s",
        "get",
        "--raw",
        "/readyz",
    ]
    return _run(cmd, dict(os.environ), 15).returncode == 0


def _api_client(kubeconfig: Path) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        config_file=str(kubeconfig), client_configuration=cfg
    )
    cfg.connection_pool_maxsize = 32
    return client.ApiClient(cfg)


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    """The session's cluster (reused from KUBECONFIG, or started and later deleted)."""
    check = _run([str(REPO / "hack" / "build-tools"), "--check"], dict(os.environ), 30)
    tools_bin = Path(check.stdout.strip())
    if check.returncode != 0:
        unavailable(f"no e2e cluster: tools not built in {tools_bin}: run hack/build-tools")
    reuse = os.environ.get("KUBECONFIG", "")
    name: str | None = None
    if reuse and _answers(reuse, tools_bin):
        kubeconfig = Path(reuse)
    else:
        name = f"crane-test-{os.getpid()}"
        env = {**os.environ, "CRANE_CLUSTER_NAME": name}
        _run([str(REPO / "hack" / "cluster"), "prune"], env, 120)
        up = _run([str(REPO / "hack" / "cluster"), "up"], env, 180)
        if up.returncode != 0:
            _run([str(REPO / "hack" / "cluster"), "down"], env, 120)
            last = up.stderr.strip().splitlines()[-1:]
            unavailable(f"no e2e cluster: hack/cluster up failed: {last}")
        kubeconfig = Path(up.stdout.split("export KUBECONFIG=", 1)[1].split()[0])
    cluster = KubeCluster(kubeconfig=kubeconfig, tools_bin=tools_bin, name=name)
    try:
        api = client.CoreV1Api(_api_client(kubeconfig))
        nodes = fleet_manifests(load_spec(SMALL_FLEET))
        apply_nodes(api, nodes)
        wait_ready(api, [n["metadata"]["name"] for n in nodes], timeout=60)
        yield cluster
    finally:
        if name is not None:
            down = _run(
                [str(REPO / "hack" / "cluster"), "down"],
                {**os.environ, "CRANE_CLUSTER_NAME": name},
                120,
            )
            if down.returncode != 0:
                raise RuntimeError(f"hack/cluster down ({name}) failed: {down.stderr.strip()}")


@pytest.fixture(scope="session")
def kubeconfig(kube_cluster: KubeCluster) -> Path:
    """Path of the session cluster's kubeconfig."""
    return kube_cluster.kubeconfig


@pytest.fixture(scope="session")
def tools_bin(kube_cluster: KubeCluster) -> Path:
    """Directory of kubectl, helm, kwokctl and the control-plane binaries built for the tests."""
    return kube_cluster.tools_bin


@pytest.fixture(scope="session")
def kubectl(kube_cluster: KubeCluster) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``kubectl(*args, input=None, check=True)``: the cluster's own kubectl, text output."""
    return kube_cluster.kubectl


@pytest.fixture(scope="session")
def kube_api(kube_cluster: KubeCluster) -> Iterator[client.ApiClient]:
    """A kubernetes ApiClient for the session cluster."""
    api = _api_client(kube_cluster.kubeconfig)
    yield api
    api.close()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def core_v1(kube_api: client.ApiClient) -> client.CoreV1Api:
    """CoreV1Api on the session cluster."""
    return client.CoreV1Api(kube_api)


@pytest.fixture(scope="session")
def crane_crds(kube_cluster: KubeCluster, core_v1: client.CoreV1Api) -> str:
    """Crane's CRDs applied and Established, the operator's Lease namespace and the chart's
    leader fence for its Lease; yields the namespace's name."""
    crds = str(REPO / "helm" / "crane" / "crds")
    kube_cluster.kubectl("apply", "--server-side", "-f", crds)
    wait_established(
        kube_cluster.kubectl,
        "crd/miniclusters.crane.io",
        "crd/cargos.crane.io",
        "crd/tenantshares.crane.io",
    )
    try:
        core_v1.create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=LEASE_NAMESPACE))
        )
    except ApiException as err:
        if err.status != 409:
            raise
    apply_leader_fence(kube_cluster.kubectl, kube_cluster.tools_bin)
    return LEASE_NAMESPACE


@pytest.fixture
def namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace for one test (ready for pods), deleted afterwards."""
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    core_v1.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"crane.io/e2e": "true"}))
    )
    try:
        _wait_default_service_account(core_v1, name)
        yield name
    finally:
        core_v1.delete_namespace(name, propagation_policy="Background")


def _wait_default_service_account(core_v1: client.CoreV1Api, namespace: str) -> None:
    deadline = time.monotonic() + 120  # generous: a loaded machine makes it slow
    while True:
        accounts = core_v1.list_namespaced_service_account(namespace).items
        if any(sa.metadata and sa.metadata.name == "default" for sa in accounts):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"namespace {namespace}: no default ServiceAccount after 120 s "
                "(is kube-controller-manager running?)"
            )
        time.sleep(0.2)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """A PostgreSQL cluster of our own on a free port; yields a URL without a database name."""
    with throwaway_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'crane.db'}"
    return new_database(request.getfixturevalue("postgres"))
