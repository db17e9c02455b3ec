"""Fixtures of the chart tests.

``kube_cluster`` is the e2e suite's session cluster (tests/e2e/conftest.py). It is re-exported
here because this directory is not under tests/e2e; if the fixture moves to tests/conftest.py,
the import below finds nothing and the shared one is used as it is.
"""

from __future__ import annotations

import contextlib

import pytest

from tests.helm.chart import Helm, find_tool, unavailable, versions

with contextlib.suppress(ImportError):
    from tests.e2e.conftest import kube_cluster  # noqa: F401  (the shared session cluster)


@pytest.fixture(scope="session")
def helm() -> Helm:
    binary = find_tool("helm")
    if binary is None:
        unavailable("helm not found: run hack/build-tools, or set CRANE_TOOLS_BIN")
    return Helm(binary=binary, kube_version=versions()["KUBERNETES_VERSION"])
