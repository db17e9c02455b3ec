"""Helpers of the chart tests: find the tools, run helm, read the rendered objects."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "crane"
CRDS = CHART / "crds"


def versions() -> dict[str, str]:
    """hack/versions.env as a dict."""
    out: dict[str, str] = {}
    for line in (REPO / "hack" / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def tools_bin() -> Path | None:
    """The directory hack/build-tools built the tools into, if it has them; else None."""
    env_bin = os.environ.get("CRANE_TOOLS_BIN")
    if env_bin:
        return Path(env_bin)
    proc = subprocess.run(
        [str(REPO / "hack" / "build-tools"), "--check"], capture_output=True, text=True, timeout=60
    )
    path = Path(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
    return path if path is not None and path.is_dir() else None


def find_tool(name: str) -> Path | None:
    """A tool from CRANE_TOOLS_BIN or hack/build-tools' cache, else from PATH."""
    directory = tools_bin()
    if directory is not None and (directory / name).is_file():
        return directory / name
    found = shutil.which(name)
    return Path(found) if found else None


@dataclass(frozen=True)
class Helm:
    """The helm binary, run against the chart with the tested Kubernetes version."""

    binary: Path
    kube_version: str

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr.strip()}"
            )
        return proc

    def template_args(
        self,
        *sets: str,
        values: Sequence[Path] = (),
        release: str = "t",
        namespace: str = "crane-system",
        extra: Sequence[str] = (),
    ) -> list[str]:
        args = [
            "template",
            release,
            str(CHART),
            "--namespace",
            namespace,
            "--kube-version",
            self.kube_version,
            *extra,
        ]
        for path in values:
            args += ["--values", str(path)]
        for item in sets:
            args += ["--set", item]
        return args

    def template(self, *sets: str, **kwargs: Any) -> list[dict[str, Any]]:
        """The chart rendered with ``--set`` items, as a list of objects."""
        return load_all(self.run(*self.template_args(*sets, **kwargs)).stdout)


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(
    objects: Sequence[dict[str, Any]], kind: str, component: str | None = None
) -> list[dict[str, Any]]:
    """Objects of one kind (and component label, when given)."""
    return [
        o
        for o in objects
        if o["kind"] == kind
        and (
            component is None
            or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        )
    ]


def one(
    objects: Sequence[dict[str, Any]], kind: str, component: str | None = None
) -> dict[str, Any]:
    found = find(objects, kind, component)
    assert len(found) == 1, f"expected one {kind} {component or ''}, got {len(found)}"
    return found[0]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def flags(deployment: dict[str, Any]) -> dict[str, str]:
    """``--name=value`` arguments of the container as a dict."""
    out: dict[str, str] = {}
    for arg in container(deployment).get("args", []):
        if arg.startswith("--") and "=" in arg:
            name, _, value = arg[2:].partition("=")
            out[name] = value
    return out


@dataclass(frozen=True)
class Rule:
    """One (apiGroup, resource, verb[, resourceName]) permission of a role."""

    group: str
    resource: str
    verb: str
    name: str = ""

    @property
    def can_i(self) -> list[str]:
        """The ``kubectl auth can-i`` arguments that ask for this permission."""
        base, _, sub = self.resource.partition("/")
        res = f"{base}.{self.group}" if self.group else base
        args = [self.verb, f"{res}/{self.name}" if self.name else res]
        if sub:
            args.append(f"--subresource={sub}")
        return args


def rules_of(role: dict[str, Any]) -> Iterator[Rule]:
    for rule in role.get("rules", []):
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    for name in rule.get("resourceNames") or [""]:
                        yield Rule(group, resource, verb, name)
