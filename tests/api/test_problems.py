"""Bad input answers application/problem+json that names the field and the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.api.conftest import ADMIN, ROOT, Server

PROBLEM = "application/problem+json"


def test_invalid_minicluster_names_field_and_fix(server: Server) -> None:
    with server.client() as admin:
        r = admin.post(
            "/v1/miniclusters",
            json={"name": "a", "spec": {"gpuType": "H100", "gpus": {"min": 8, "max": 4}}},
        )
    assert r.status_code == 422 and r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["title"] == "Invalid request" and body["status"] == 422
    assert "spec.gpus" in body["detail"] and "raise max or lower min" in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "spec", "gpus"]


def test_unknown_gpu_type_and_bad_name(server: Server) -> None:
    with server.client() as admin:
        r = admin.post(
            "/v1/miniclusters",
            json={"name": "Bad_Name", "spec": {"gpuType": "", "gpus": {"min": 0, "max": 4}}},
        )
    assert r.status_code == 422
    detail = r.json()["detail"]
    # any product a node advertises may be asked for (issue 14); an empty type never
    assert "name:" in detail and "gpuType" in detail


def test_grow_needs_count_or_cargos_not_both(server: Server) -> None:
    with server.client() as admin:
        r = admin.post(
            "/v1/miniclusters/study:grow", json={"count": 1, "cargos": [{"replicas": 1}]}
        )
    assert r.status_code == 422
    assert "either count" in r.json()["detail"]


def test_unknown_route_and_method_are_problems(server: Server) -> None:
    with server.client() as admin:
        missing = admin.get("/v1/nope")
        wrong = admin.put("/v1/miniclusters")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert wrong.status_code == 405 and "PUT" in wrong.json()["detail"]


def test_backend_down_is_503_saying_why(server: Server) -> None:
    with server.client() as admin:
        r = admin.get("/v1/miniclusters")
        ready = admin.get("/readyz")
    assert r.status_code == 503 and "CRANE_KUBECONFIG" in r.json()["detail"]
    assert ready.status_code == 503 and "kubeconfig" in ready.json()["detail"].lower()


def test_hosts_in_kube_mode_say_to_label_nodes(server: Server, tmp_path: Path) -> None:
    with server.client() as admin:
        added = admin.post(
            "/v1/hosts",
            json={"name": "gpu-02", "dockerHost": "tcp://x:2376", "gpus": 8, "gpuType": "H100"},
        )
        listed = admin.get("/v1/hosts")
    for r in (added, listed):
        assert r.status_code == 409 and r.headers["content-type"] == PROBLEM
        assert r.json()["detail"] == (
            "hosts are managed by Kubernetes in kube mode; label nodes instead"
        )
        assert r.json()["type"] == "https://crane.dev/problems/hosts-managed-by-kubernetes"
    cli = subprocess.run(
        [sys.executable, "-m", "crane", "node", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("CRANE_")},
            "PYTHONPATH": str(ROOT),
            "CRANE_CONFIG_DIR": str(tmp_path),
            "CRANE_API_URL": server.url,
            "CRANE_TOKEN": ADMIN,
        },
    )
    assert cli.returncode == 1
    assert cli.stderr == (
        "error: conflict: hosts are managed by Kubernetes in kube mode; label nodes instead\n"
    )
