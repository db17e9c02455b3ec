"""``crane up`` as a user runs it: on hack/dockerd daemon 0 with 8 declared H100.

First start: URL, admin token and a CLI login, so the CLI works at once. SIGKILL and restart:
the same containers, no second token. SIGINT: Crane stops cleanly, containers keep running.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from crane.docker import labels as L
from crane.docker.containers import managed_containers
from tests.dockerd import env, wait_healthy
from tests.support import free_port


@dataclass
class Up:
    """``crane up`` and the ``crane`` CLI sharing one data and one config directory."""

    docker_url: str
    tmp: Path
    port: int

    def env(self) -> dict[str, str]:
        return env(CRANE_CONFIG_DIR=str(self.tmp / "cfg"), DOCKER_HOST=self.docker_url)

    def start(self, gpus: int = 8) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.tmp / f"up-{time.monotonic_ns()}.log"
        args = ["up", "--gpus", str(gpus), "--gpu-type", "H100", "--port", str(self.port)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "crane", *args, "--data-dir", str(self.tmp / "data")],
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        wait_healthy(f"http://127.0.0.1:{self.port}", proc, log)
        return proc, log

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crane", *args],
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=120,
            check=False,
        )


@pytest.fixture
def up(
    docker_urls: list[str], clients: dict[str, docker.DockerClient], tmp_path: Path
) -> Iterator[Up]:
    yield Up(docker_urls[0], tmp_path, free_port())


def _ids(client: docker.DockerClient) -> dict[str, str]:
    return {c.name: c.id for c in managed_containers(client) if c.status == "running"}


def _stop(proc: subprocess.Popen[bytes], sig: int) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=60)


def test_first_start_restart_after_sigkill_and_ctrl_c(
    up: Up, clients: dict[str, docker.DockerClient]
) -> None:
    engine = clients["h0"]
    proc, log = up.start()
    try:
        first = log.read_text()
        assert f"API at http://127.0.0.1:{up.port}" in first
        tokens = re.findall(r"admin token \(also in .*admin-token\): (crane_\S+)", first)
        assert len(tokens) == 1, first
        assert "8 x H100 (declared)" in first

        created = up.cli(
            "mc", "create", "up-test", "--gpu-type", "H100", "--min", "2", "--max", "4"
        )
        assert created.returncode == 0, created.stderr
        added = up.cli(
            "cargo", "add", "up-test", "--replicas", "2", "--gpus-per-replica", "1",
            "--image", "crane-test:busybox", "--wait", "--timeout", "60", "--", "sleep", "300",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        nodes = up.cli("nodes", "-o", "json")
        assert nodes.returncode == 0, nodes.stderr
        [local] = json.loads(nodes.stdout)
        assert (local["name"], local["gpuCount"]) == ("local", 8)
        in_use = [g for g in local["gpus"] if g.get("cargo") == "default/up-test-0"]
        assert len(in_use) == 2
        before = _ids(engine)
        assert len(before) == 2
        gpu_labels = {c.labels[L.GPU_IDS] for c in managed_containers(engine)}

        proc.kill()
        proc.wait(timeout=30)
        proc, log = up.start()
        time.sleep(3)  # a few reconcile passes
        assert "admin token" not in log.read_text()
        assert _ids(engine) == before
        assert {c.labels[L.GPU_IDS] for c in managed_containers(engine)} == gpu_labels
        listed = up.cli("cargo", "list", "-o", "json")
        phases = [c["status"]["phase"] for c in json.loads(listed.stdout)["items"]]
        assert phases == ["Running"]

        assert _stop(proc, signal.SIGINT) == 0
        assert "Traceback" not in log.read_text()
        assert _ids(engine) == before
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _held(client: docker.DockerClient) -> list[tuple[str, int]]:
    """(container, GPU id) for every GPU a running Crane container of the host holds."""
    return [
        (c.name, int(g))
        for c in managed_containers(client)
        if c.status == "running" and c.labels.get(L.GPU_IDS)
        for g in c.labels[L.GPU_IDS].split(",")
    ]


def test_restart_with_fewer_gpus_never_gives_a_held_gpu_twice(
    up: Up, clients: dict[str, docker.DockerClient]
) -> None:
    """`crane up --gpus 4` after `--gpus 8` while a cargo's containers ran on GPUs 0-7: the
    cargo, holding GPUs the node no longer has, was left out of the engine whole, so GPUs 0-3
    its containers still ran on were handed to the next MiniCluster (two running containers on
    one GPU). It keeps them until its containers are stopped, and is placed again."""
    engine = clients["h0"]
    work = ["sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait"]
    proc, log = up.start()
    try:
        made = up.cli("mc", "create", "wide", "--gpu-type", "H100", "--min", "2", "--max", "8")
        assert made.returncode == 0, made.stderr
        added = up.cli(
            "cargo", "add", "wide", "--replicas", "4", "--gpus-per-replica", "2",
            "--image", "crane-test:busybox", "--wait", "--timeout", "60", "--", *work,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert sorted(g for _, g in _held(engine)) == list(range(8))
        proc.kill()
        proc.wait(timeout=30)
        proc, log = up.start(gpus=4)
        made = up.cli("mc", "create", "next", "--gpu-type", "H100", "--min", "2", "--max", "2")
        assert made.returncode == 0, made.stderr
        added = up.cli(
            "cargo", "add", "next", "--replicas", "1", "--gpus-per-replica", "2",
            "--image", "crane-test:busybox", "--", *work,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        deadline = time.monotonic() + 90
        while True:
            held = _held(engine)
            ids = [g for _, g in held]
            twice = sorted({g for g in ids if ids.count(g) > 1})
            assert not twice, f"GPUs {twice} held by two running containers: {sorted(held)}"
            listed = up.cli("cargo", "get", "next-0", "-o", "json")
            if listed.returncode == 0 and json.loads(listed.stdout)["status"]["phase"] == "Running":
                break
            assert time.monotonic() < deadline, "next-0 never ran"
            time.sleep(0.5)
        wide = json.loads(up.cli("cargo", "get", "wide-0", "-o", "json").stdout)
        assert wide["status"]["phase"] != "Running", wide["status"]
        assert "Traceback" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
