"""Fixtures of the operator e2e tests: one operator per test module, its custom-objects API and
simulated nodes per test; the API-on-Kubernetes stack per test module (helpers in
operator_support.py)."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from crane.kube.fleet import apply_nodes, delete_nodes, fleet_manifests, wait_ready
from crane.model.fleet import FleetSpec, NodeGroup
from tests.e2e.operator_support import (
    ADMIN,
    AM,
    EVENTS,
    FLOW,
    HOLD,
    HPO,
    PRODUCT,
    RACE,
    USAGE,
    OperatorProcess,
    Proc,
    Stack,
    add_nodes,
    crane_env,
    operator_args,
    poll,
    serve_kube_args,
    wait_serving,
)
from tests.support import free_port


@pytest.fixture(scope="module")
def operator(
    kube_cluster: Any, crane_crds: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """``crane operator`` for the test module; its log tail is printed when it stops."""
    proc = OperatorProcess(kube_cluster.env, tmp_path_factory.mktemp("operator") / "operator.log")
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()
        print(f"operator log (tail):\n{proc.tail()}")


@pytest.fixture
def other_namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    """A second fresh namespace for one test (another tenant), deleted afterwards."""
    name = f"e2e-{uuid.uuid4().hex[:10]}"
    core_v1.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"crane.io/e2e": "true"}))
    )
    try:
        poll(
            lambda: any(
                sa.metadata.name == "default"
                for sa in core_v1.list_namespaced_service_account(name).items
            ),
            f"namespace {name}'s default ServiceAccount",
            lambda: "",
            timeout=120,
            interval=0.2,
        )
        yield name
    finally:
        core_v1.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def custom(kube_api: client.ApiClient) -> client.CustomObjectsApi:
    """The custom-objects API of the test cluster."""
    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def nodes(core_v1: client.CoreV1Api) -> Iterator[Callable[..., list[str]]]:
    """Add simulated nodes for one test; they are deleted afterwards."""
    added: list[str] = []

    def add(*args: Any, **kwargs: Any) -> list[str]:
        names = add_nodes(core_v1, *args, **kwargs)
        added.extend(names)
        return names

    yield add
    delete_nodes(core_v1, added)


@pytest.fixture(scope="module")
def stack(kube_cluster: Any, core_v1: client.CoreV1Api, crane_crds: str) -> Iterator[Stack]:
    """``crane serve --backend kube`` and ``crane operator`` for the test module, on simulated
    nodes of each of its GPU families; their log tails are printed when they stop."""
    suffix = uuid.uuid4().hex[:5]
    groups = [
        NodeGroup(name=f"kapi-l40s-{suffix}", product=FLOW, gpus_per_node=8, nodes_per_rack=2),
        NodeGroup(name=f"kapi-h800-{suffix}", product=RACE, gpus_per_node=8, nodes_per_rack=2),
        NodeGroup(name=f"kapi-v100-{suffix}", product=EVENTS, gpus_per_node=8),
        NodeGroup(name=f"kapi-a40-{suffix}", product=HPO, gpus_per_node=4),
        NodeGroup(name=f"kapi-t4-{suffix}", product=USAGE, gpus_per_node=8),
        NodeGroup(name=f"kapi-l4-{suffix}", product=AM, gpus_per_node=4),
        NodeGroup(name=f"kapi-a2-{suffix}", product=HOLD, gpus_per_node=4),
    ]
    manifests = fleet_manifests(FleetSpec(groups=groups))
    apply_nodes(core_v1, manifests)
    added = [m["metadata"]["name"] for m in manifests]
    nodes: dict[str, list[str]] = defaultdict(list)
    for m in manifests:
        nodes[m["metadata"]["labels"][PRODUCT]].append(m["metadata"]["name"])
    tmp = Path(tempfile.mkdtemp(prefix="crane-kapi-"))
    env = crane_env(kube_cluster.env)
    operator = server = None
    tenants: list[str] = []
    try:
        wait_ready(core_v1, added, timeout=60)
        port = free_port()
        serve = serve_kube_args(port, ADMIN, tmp, kube_cluster.kubeconfig)
        server = Proc(serve, env, tmp / "serve.log")
        url = f"http://127.0.0.1:{port}"
        operator = Proc(operator_args(api_url=url, api_token=ADMIN), env, tmp / "operator.log")
        wait_serving(server, url)
        stack = Stack(url, operator, server, dict(nodes), core_v1, tmp, tenants, serve, env)
        yield stack
        server = stack.server  # restarted by a test
    finally:
        for proc in (server, operator):
            if proc is not None:
                proc.stop()
        for tenant in tenants:
            try:
                core_v1.delete_namespace(tenant, propagation_policy="Background")
            except ApiException as err:
                if err.status != 404:
                    raise
        delete_nodes(core_v1, added)
        if operator is not None and server is not None:
            print(f"--- operator log:\n{operator.tail()}\n--- server log:\n{server.tail()}")
        shutil.rmtree(tmp, ignore_errors=True)
