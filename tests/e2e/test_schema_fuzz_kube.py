"""Schemathesis over every operation of ``crane serve --backend kube`` on the session's real
control plane (CRDs applied, no operator needed: the API reads and writes the CRs): all checks,
zero failures (see tests/fuzz.py for the one check left out where rules are cross-field).

The admin's default tenant is a namespace of this test's own, deleted at the end.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.dockerd import env, wait_healthy
from tests.fuzz import fuzz_every_operation
from tests.support import free_port

pytestmark = pytest.mark.e2e
ADMIN = "crane_fuzzkube_" + "k" * 43


@pytest.fixture(scope="module")
def kube_server(
    kube_cluster: Any, core_v1: client.CoreV1Api, crane_crds: str, tmp_path_factory: Any
) -> Iterator[str]:
    tenant = f"fuzz-{uuid.uuid4().hex[:8]}"
    data: Path = tmp_path_factory.mktemp("fuzz-kube")
    port = free_port()
    log = data / "serve.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crane",
            "serve",
            "--backend",
            "kube",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{data / 'crane.db'}",
            "--bootstrap-token",
            ADMIN,
            "--kubeconfig",
            str(kube_cluster.kubeconfig),
            "--log-level",
            "warning",
        ],
        env=env(CRANE_DEFAULT_TENANT=tenant, KUBECONFIG=str(kube_cluster.kubeconfig)),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        assert httpx.get(f"{url}/readyz", timeout=30).status_code == 200, log.read_text()
        yield url
    finally:
        proc.terminate()
        proc.wait(20)
        try:
            core_v1.delete_namespace(tenant, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise


def test_every_operation_passes_every_check_on_kube(kube_server: str) -> None:
    report = fuzz_every_operation(kube_server, ADMIN)
    assert not report.failures, "\n\n".join(report.failures)
    assert report.operations >= 25
    print(f"schemathesis (kube): {report.operations} operations, {report.examples} examples")
