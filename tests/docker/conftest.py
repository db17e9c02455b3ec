"""Three real dockerd on this machine, standing for three hosts, and the imported test image.

The daemons come from ``hack/dockerd`` (state under ~/.cache/crane/dockerd). With ``CI=true`` a
daemon that cannot start fails the run; elsewhere the Docker tests are skipped with the reason.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from crane.docker.containers import labelled_containers, managed_networks
from crane.docker.hosts import HostSpec
from tests.dockerd import DockerServer, NetnsHost, netns_hosts, stop_netns_hosts
from tests.support import unavailable

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "crane-test:busybox"
DAEMONS = 3

HOST_SHAPES = [
    {
        "name": "h0",
        "gpu_product": "NVIDIA-H100-80GB-HBM3",
        "gpu_count": 8,
        "islands": "0-3,4-7",
        "labels": {"rack": "r1"},
    },
    {
        "name": "h1",
        "gpu_product": "NVIDIA-H100-80GB-HBM3",
        "gpu_count": 8,
        "islands": "0-3,4-7",
        "labels": {"rack": "r2"},
    },
    {
        "name": "h2",
        "gpu_product": "NVIDIA-A100-SXM4-80GB",
        "gpu_count": 4,
        "labels": {"rack": "r1"},
    },
]
"""Two H100 hosts in different racks and an A100 host sharing rack r1 with h0."""


@pytest.fixture(scope="session")
def docker_urls() -> list[str]:
    script = ROOT / "hack" / "dockerd"
    try:
        started = subprocess.run(
            [str(script), "start", str(DAEMONS)], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        unavailable(f"hack/dockerd start failed: {err}")
    if started.returncode != 0:
        unavailable(f"hack/dockerd start failed: {started.stderr.strip()[-600:]}")
    imported = subprocess.run(
        [str(script), "image", str(DAEMONS)], capture_output=True, text=True, timeout=300
    )
    if imported.returncode != 0:
        unavailable(f"hack/dockerd image failed: {imported.stderr.strip()[-600:]}")
    return started.stdout.split()


@pytest.fixture(scope="session")
def host_specs(docker_urls: list[str]) -> list[HostSpec]:
    return [HostSpec(url=url, **shape) for url, shape in zip(docker_urls, HOST_SHAPES, strict=True)]


@pytest.fixture
def clients(host_specs: list[HostSpec]) -> Iterator[dict[str, docker.DockerClient]]:
    """A client per host; every Crane container and network is gone before and after a test."""
    out = {h.name: docker.DockerClient(base_url=h.url) for h in host_specs}

    def clean() -> None:
        for client in out.values():
            for container in labelled_containers(client):
                container.remove(force=True)
            for network in managed_networks(client):
                network.remove()

    clean()
    yield out
    clean()
    for client in out.values():
        client.close()


@pytest.fixture
def admin(server: DockerServer) -> Iterator[httpx.Client]:
    """An admin client of the module's ``server`` fixture."""
    with server.client() as api:
        yield api


@pytest.fixture(scope="session")
def separate_hosts() -> Iterator[list[NetnsHost]]:
    """Three dockerd, each in a network namespace of its own with its own address on one test
    bridge (hack/dockerd-netns): hosts that reach each other over a network, not one stack.
    Stopped, namespaces and all, when the session ends."""
    hosts = netns_hosts(3)
    yield hosts
    stop_netns_hosts()
