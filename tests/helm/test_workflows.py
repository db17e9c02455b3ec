"""The GitHub Actions workflow: actionlint, and agreement with the local suite and the chart.
It cannot run here (no GitHub runner, no kind); these checks keep it consistent."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import CHART, REPO
from tests.support import unavailable

CI = REPO / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CI.read_text())
    return loaded


def _script(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_actionlint_is_clean() -> None:
    binary = os.environ.get("CRANE_ACTIONLINT") or shutil.which("actionlint")
    if not binary or not Path(binary).is_file():
        unavailable("actionlint not found (run hack/build-tools, or set CRANE_ACTIONLINT)")
    proc = subprocess.run(
        [binary, "-no-color", str(CI)], capture_output=True, text=True, timeout=120, cwd=REPO
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_jobs(workflow: dict[str, Any]) -> None:
    assert set(workflow["jobs"]) == {"lint", "unit", "e2e"}
    assert workflow["env"]["CI"] == "true", "CI=true: nothing skips silently there either"
    assert workflow["permissions"] == {"contents": "read"}


def test_e2e_runs_the_local_e2e_suite(workflow: dict[str, Any]) -> None:
    script = _script(workflow["jobs"]["e2e"])
    assert re.search(r"^python -m pytest -m e2e$", script, re.M)
    assert "hack/build-tools" in script, "the same tools as local CI"
    assert workflow["jobs"]["e2e"]["env"]["KUBECONFIG"], "the fixture reuses KUBECONFIG's cluster"


def test_unit_job_excludes_every_marked_suite(workflow: dict[str, Any]) -> None:
    import tomllib

    declared = {
        m.split(":")[0]
        for m in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["pytest"][
            "ini_options"
        ]["markers"]
    }
    script = _script(workflow["jobs"]["unit"])
    expr = re.search(r'pytest -m "([^"]+)"', script)
    assert expr, script
    assert {w for w in expr.group(1).split() if w not in ("not", "and", "or")} == declared


def test_gpu_workers_carry_the_chart_keys(workflow: dict[str, Any]) -> None:
    script = _script(workflow["jobs"]["e2e"])
    levels = yaml.safe_load((CHART / "values.yaml").read_text())["topology"]["levels"]
    for alias, key in levels.items():
        if alias != "node":
            assert f"{key}=" in script, f"the kind GPU workers lack the {alias} label {key}"
    for needle in (
        "crane.io/managed=true",
        "nvidia.com/gpu.product=",
        "crane.io/managed=true:NoSchedule",
        "--subresource=status",
        "/status/capacity/nvidia.com~1gpu",
        "crane.io/gpu-islands=",
    ):
        assert needle in script, needle


def test_e2e_installs_the_image_it_loads(workflow: dict[str, Any]) -> None:
    script = _script(workflow["jobs"]["e2e"])
    built = re.search(r"docker build --tag (\S+) \.", script)
    loaded = re.search(r"kind load docker-image (\S+)", script)
    assert built and loaded and built.group(1) == loaded.group(1)
    repo, tag = built.group(1).split(":")
    assert f"image.repository={repo}" in script and f"image.tag={tag}" in script
    assert "image.pullPolicy=Never" in script


def test_kind_node_image_is_pinned_and_matches_the_tested_minor(workflow: dict[str, Any]) -> None:
    from tests.helm.chart import versions

    image = workflow["env"]["KIND_NODE_IMAGE"]
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[a-f0-9]{64}", image), image
    minor = ".".join(versions()["KUBERNETES_VERSION"].split(".")[:2])
    assert image.split(":")[1].startswith(minor + "."), "kubectl and the kind server must match"
