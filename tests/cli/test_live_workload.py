"""MiniClusters, cargos and the GPU map via the CLI, on a server whose backend does real work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import Crane

pytestmark = pytest.mark.usefixtures("backend_ready")

MANIFEST = """
apiVersion: crane.io/v1alpha1
kind: MiniCluster
metadata: {name: cli-live}
spec:
  gpuType: H100
  gpus: {min: 0, max: 4}
  template:
    replicas: 1
    gpusPerReplica: 1
    template: {spec: {containers: [{name: main, image: busybox, command: [sleep, "300"]}]}}
"""


def test_nodes_map_and_json(logged_in: Crane) -> None:
    as_json = logged_in("nodes", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    nodes = json.loads(as_json.stdout)
    assert nodes, "the test backend should have GPU nodes"
    drawn = logged_in("nodes")
    assert drawn.returncode == 0
    lines = drawn.stdout.splitlines()
    assert lines[0].split() == ["NODE", "GPU", "GPUS", "FREE", "STATE"]
    for node in nodes:
        row = next(line for line in lines if line.startswith(node["name"] + " "))
        assert sum(row.count(sym) for sym in "■□▲✕·") == node["gpuCount"]
    assert "■ in-use" in drawn.stdout


def test_minicluster_lifecycle(logged_in: Crane, tmp_path: Path) -> None:
    path = tmp_path / "mc.yaml"
    path.write_text(MANIFEST)
    created = logged_in("mc", "create", "-f", str(path))
    assert created.returncode == 0, created.stderr
    assert "minicluster/cli-live created" in created.stderr
    try:
        listed = json.loads(logged_in("mc", "list", "-o", "json").stdout)
        assert listed["count"] == len(listed["items"])
        assert "cli-live" in [m["metadata"]["name"] for m in listed["items"]]
        assert logged_in("mc", "list", "-o", "name").stdout.split() == ["minicluster/cli-live"]
        grown = logged_in("mc", "grow", "cli-live", "2", "--wait", "--timeout", "120")
        assert grown.returncode == 0, grown.stderr
        assert "granted" in grown.stderr
        cargos = json.loads(logged_in("cargo", "list", "--mc", "cli-live", "-o", "json").stdout)[
            "items"
        ]
        assert len(cargos) == 2
        assert {c["status"]["phase"] for c in cargos} <= {"Running", "Placed"}
        assert logged_in("nodes").stdout.count("cli-live") == 1
        refused = logged_in("mc", "shrink", "cli-live", "1")
        assert refused.returncode == 2 and "--yes" in refused.stderr
        shrunk = logged_in("mc", "shrink", "cli-live", "1", "--yes")
        assert shrunk.returncode == 0, shrunk.stderr
        assert len(shrunk.stdout.split()) == 1
        explained = logged_in("mc", "explain", "cli-live")
        assert explained.returncode == 0 and explained.stdout.startswith("cli-live:")
    finally:
        deleted = logged_in("mc", "delete", "cli-live", "--yes")
        assert deleted.returncode == 0, deleted.stderr
    missing = logged_in("mc", "get", "cli-live")
    assert missing.returncode == 1 and missing.stderr.startswith("error: not found")
