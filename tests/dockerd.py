"""Real dockerd daemons (hack/dockerd) and ``crane serve --backend docker`` for the test suites.

Each suite that keeps a server alive uses daemons of its own: a server's reconciler removes
Crane containers it does not know, so two servers must never share a daemon.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx

from crane.docker.containers import labelled_containers, managed_networks
from crane.docker.hosts import HostSpec
from tests.support import free_port, unavailable

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "hack" / "dockerd"
NETNS_SCRIPT = ROOT / "hack" / "dockerd-netns"
IMAGE = "crane-test:busybox"
WORK = ["sh", "-c", "trap 'exit 0' TERM; sleep 300 & wait"]
"""Ends at once on SIGTERM, so deletions do not wait out the grace period."""
SLEEP = {"spec": {"containers": [{"name": "main", "image": IMAGE, "command": WORK}]}}
"""A cargo template of one container running :data:`WORK`."""


@dataclass(frozen=True)
class NetnsHost:
    """A dockerd in a network namespace of its own (hack/dockerd-netns): its API and address."""

    url: str
    address: str


def netns_hosts(count: int) -> list[NetnsHost]:
    """Start ``count`` daemons each in its own network namespace with its own address (running
    ones are kept) and import the busybox test image into them."""
    started = _hack("start", count, NETNS_SCRIPT)
    hosts = [NetnsHost(*line.split()) for line in started.splitlines()]
    _hack("image", count, NETNS_SCRIPT)
    return hosts


def import_busybox_image(
    urls: list[str],
    repository: str,
    tag: str,
    applets: tuple[str, ...],
    files: dict[str, bytes] | None = None,
    links: dict[str, str] | None = None,
    changes: list[str] | None = None,
) -> None:
    """``docker import`` into every daemon of ``urls`` a root filesystem of busybox, links to
    its ``applets`` in /bin, executable ``files`` and symbolic ``links`` (path -> target);
    ``changes`` are Dockerfile lines (``ENV PATH=...``)."""
    busybox = shutil.which("busybox")
    if busybox is None:
        unavailable("busybox not found: apt-get install -y busybox-static")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for folder, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777)):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(busybox, "bin/busybox")
        every_link = {f"bin/{a}": "busybox" for a in applets} | (links or {})
        for path, target in every_link.items():
            link = tarfile.TarInfo(path)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tar.addfile(link)
        for path, data in (files or {}).items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    for url in urls:
        with closing(docker.DockerClient(base_url=url)) as engine:
            engine.api.import_image_from_data(
                buf.getvalue(), repository=repository, tag=tag, changes=changes
            )


def stop_netns_hosts() -> None:
    """Stop every daemon of hack/dockerd-netns and delete its namespaces, veths and bridge."""
    subprocess.run([str(NETNS_SCRIPT), "stop"], capture_output=True, timeout=120, check=True)


def _hack(step: str, count: int, script: Path = SCRIPT) -> str:
    """Run ``hack/dockerd`` (or ``hack/dockerd-netns``) ``step count``; its stdout."""
    what = f"hack/{script.name} {step}"
    try:
        done = subprocess.run(
            [str(script), step, str(count)], capture_output=True, text=True, timeout=300
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        unavailable(f"{what} failed: {err}")
    if done.returncode != 0:
        unavailable(f"{what} failed: {done.stderr.strip()[-600:]}")
    return done.stdout


def daemons(indices: range) -> list[str]:
    """Start daemons 0..max(indices) (running ones are kept), import the test image, tag it
    ``busybox`` too; the URLs of ``indices``."""
    urls = _hack("start", indices.stop).split()
    _hack("image", indices.stop)
    chosen = [urls[i] for i in indices]
    for url in chosen:
        with closing(docker.DockerClient(base_url=url)) as client:
            client.images.get(IMAGE).tag("busybox", "latest")
    return chosen


def clean(urls: list[str]) -> None:
    """Remove every Crane container and network of these daemons."""
    for url in urls:
        with closing(docker.DockerClient(base_url=url)) as client:
            for container in labelled_containers(client):
                container.remove(force=True)
            for network in managed_networks(client):
                network.remove()


def env(**extra: str) -> dict[str, str]:
    """The environment of a ``crane`` subprocess: no CRANE_* of the caller, the worktree first."""
    out = {k: v for k, v in os.environ.items() if not k.startswith(("CRANE_", "DOCKER_"))}
    out["PYTHONPATH"] = str(ROOT)
    out.update(extra)
    return out


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"crane did not start: {log.read_text()[-3000:]}")
        time.sleep(0.2)


@dataclass
class DockerServer:
    """A ``crane serve --backend docker`` subprocess with an admin token."""

    url: str
    token: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


def serve_docker(
    data: Path,
    token: str,
    hosts: list[dict[str, object]],
    *,
    database_url: str | None = None,
    name: str = "serve",
    **settings: str,
) -> DockerServer:
    """Start the server on ``database_url`` (default: a SQLite file in ``data``), with
    ``settings`` in its environment (e.g. ``CRANE_DOCKER_ALLOWED_MOUNTS``), and add ``hosts``
    through ``POST /v1/hosts``; returns once ``/readyz`` is green. ``name`` names its log and
    CLI config directory in ``data`` (a second server on one database needs its own)."""
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = data / f"{name}.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crane",
            "serve",
            "--backend",
            "docker",
            "--port",
            str(port),
            "--database-url",
            database_url or f"sqlite:///{data / 'crane.db'}",
            "--bootstrap-token",
            token,
            "--log-level",
            "warning",
        ],
        env=env(CRANE_CONFIG_DIR=str(data / f"{name}-cfg"), **settings),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    server = DockerServer(f"http://127.0.0.1:{port}", token, proc, log)
    wait_healthy(server.url, proc, log)
    with server.client() as api:
        for host in hosts:
            added = api.post("/v1/hosts", json=host)
            assert added.status_code == 201, added.text
        deadline = time.monotonic() + 30
        while api.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, api.get("/readyz").text
            time.sleep(0.2)
    return server


def host_wire(spec: HostSpec, **override: object) -> dict[str, object]:
    """The ``POST /v1/hosts`` body of a test host (fields in ``override`` replace its own)."""
    wire: dict[str, object] = {
        "name": spec.name,
        "dockerHost": spec.url,
        "gpus": spec.gpu_count,
        "gpuType": spec.gpu_product,
        "islands": spec.islands,
        "labels": spec.labels,
    }
    return {**wire, **override}


@contextmanager
def serving(
    data: Path,
    token: str,
    hosts: Sequence[HostSpec],
    wire: Sequence[dict[str, object]] | None = None,
    database_url: str | None = None,
    settings: dict[str, str] | None = None,
) -> Iterator[DockerServer]:
    """A Docker-mode server serving ``hosts`` (as ``wire`` when given, else as they are), with
    ``settings`` in its environment, and every Crane container and network of those hosts
    removed before and after."""
    urls = [h.url for h in hosts]
    clean(urls)
    hosts_wire = list(wire or [host_wire(h) for h in hosts])
    running = serve_docker(data, token, hosts_wire, database_url=database_url, **(settings or {}))
    try:
        yield running
    finally:
        running.stop()
        clean(urls)


def cli(url: str, token: str, config_dir: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m crane ARGS`` against ``url`` as ``token`` with its own config directory;
    the completed process (exit code, stdout and stderr as text) is returned, never raised."""
    cli_env = env(CRANE_CONFIG_DIR=str(config_dir), CRANE_API_URL=url, CRANE_TOKEN=token)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crane", *args],
            capture_output=True,
            text=True,
            env=cli_env,
            timeout=120,
            check=False,
        )

    return run
