"""Fixtures of the chart tests.

``kube_cluster`` is the session cluster shared by every suite (tests/conftest.py).
"""

from __future__ import annotations

import pytest

from tests.helm.chart import Helm, find_tool, versions
from tests.support import unavailable


@pytest.fixture(scope="session")
def helm() -> Helm:
    binary = find_tool("helm")
    if binary is None:
        unavailable("helm not found: run hack/build-tools, or set CRANE_TOOLS_BIN")
    return Helm(binary=binary, kube_version=versions()["KUBERNETES_VERSION"])
