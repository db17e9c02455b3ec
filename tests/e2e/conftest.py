"""Fixtures of the operator e2e tests: one operator per test module, its custom-objects API and
simulated nodes per test (helpers in operator_support.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from crane.kube.fleet import delete_nodes
from tests.e2e.operator_support import OperatorProcess, add_nodes


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
