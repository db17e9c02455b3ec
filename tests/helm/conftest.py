"""Fixtures of the chart tests. ``kube_cluster`` is the e2e suite's session cluster."""

from __future__ import annotations

import pytest

from tests.helm.chart import Helm, find_tool, unavailable, versions

try:
    from tests.e2e.conftest import kube_cluster  # the shared session cluster
except ImportError:  # the e2e suite's conftest is missing: the e2e chart tests cannot run
    @pytest.fixture(scope="session")
    def kube_cluster() -> None:
        unavailable("tests/e2e/conftest.py (the kube_cluster fixture) is missing")


@pytest.fixture(scope="session")
def helm() -> Helm:
    binary = find_tool("helm")
    if binary is None:
        unavailable("helm not found: run hack/build-tools, or set CRANE_TOOLS_BIN")
    return Helm(binary=binary, kube_version=versions()["KUBERNETES_VERSION"])
