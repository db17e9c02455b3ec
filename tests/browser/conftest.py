"""The dashboard in a real browser: Playwright (PyPI) driving Debian's ``chromium``.

Playwright's own browser download is never used (it cannot be reached): the tests launch
``/usr/bin/chromium`` (``CRANE_CHROMIUM`` overrides). ``crane_server`` is a real ``crane serve``,
once with the Docker backend (hack/dockerd daemons 6 and 7: run under
``flock /tmp/crane-docker.lock``) and once with the Kubernetes backend on the e2e cluster with
``crane operator`` running. Every page a test opens fails the test if it logs a console error.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import unavailable

CHROMIUM = os.environ.get("CRANE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ADMIN = "crane_browseradm_" + "b" * 43
SHOTS = os.environ.get("CRANE_SCREENSHOTS")
"""A directory: the tests save the screenshots of docs/ there (hack/screenshots sets it)."""


@dataclass
class CraneServer:
    """A running ``crane serve`` the browser tests drive; ``gpu_type`` is the MiniClusters'."""

    backend: str
    url: str
    gpu_type: str
    template: dict[str, Any]
    tenants: list[str] = field(default_factory=list)

    def api(self, token: str = ADMIN, tenant: str | None = None) -> httpx.Client:
        """An HTTP client with a bearer token (``tenant`` adds ``?tenant=`` for an admin)."""
        params = {"tenant": tenant} if tenant else {}
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}"},
            params=params,
            timeout=120,
        )

    def tenant(self, prefix: str) -> tuple[str, str]:
        """A new tenant and a tenant-scoped token for it."""
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        with self.api() as api:
            assert api.post("/v1/tenants", json={"name": name}).status_code == 201
            made = api.post("/v1/tokens", json={"scope": "tenant", "tenant": name})
            assert made.status_code == 201, made.text
        self.tenants.append(name)
        return name, made.json()["token"]

    def minicluster(self, token: str, name: str, lo: int, hi: int) -> None:
        """Create a MiniCluster with the server's template (2 replicas of 1 GPU per cargo)."""
        body = {
            "name": name,
            "spec": {
                "gpuType": self.gpu_type,
                "gpus": {"min": lo, "max": hi},
                "template": {"replicas": 2, "gpusPerReplica": 1, "template": self.template},
            },
        }
        with self.api(token) as api:
            made = api.post("/v1/miniclusters", json=body)
            assert made.status_code == 201, made.text


def gpu_state(gpu: dict[str, Any]) -> str:
    """The dashboard's rule (and ``crane nodes``'): busy, borrowed, in use, reserved, free."""
    if gpu.get("busy"):
        return "busy"
    if gpu.get("cargo"):
        return "in-use" if gpu.get("reservedFor") == gpu.get("miniCluster") else "borrowed"
    return "reserved" if gpu.get("reservedFor") else "free"


def state_counts(nodes: list[dict[str, Any]]) -> dict[str, int]:
    """GPUs per state of a ``GET /v1/nodes`` answer, as the map's summary shows them."""
    counts = Counter(gpu_state(g) for n in nodes for g in n["gpus"])
    out = {s: counts.get(s, 0) for s in ("in-use", "reserved", "borrowed", "busy", "free")}
    out["total"] = sum(counts.values())
    out["nodes"] = len(nodes)
    return out


def wait_until(check: Callable[[], Any], what: str, timeout: float = 90) -> Any:
    """Poll ``check`` until it is truthy; AssertionError naming ``what`` at the timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright (never Playwright's own download)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        unavailable(f"{CHROMIUM} not found: apt-get install -y chromium")
    try:
        with sync_playwright() as pw:
            launched = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield launched
            launched.close()
    finally:
        # Playwright's sync API leaves its event loop marked as running in this thread after
        # it stops; every later asyncio.run() in the session would then fail.
        asyncio.events._set_running_loop(None)


# Chromium logs this itself when the host's interfaces change under a request (dockerd adding a
# bridge or veth for the Docker-mode suites); the dashboard retries such GETs, so it is no error
# of the page.
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"


def console_error(url: str, msg: Any) -> str | None:
    """The line to record for a console message, or None when it is not a page error."""
    if msg.type != "error" or NETWORK_CHANGED in msg.text:
        return None
    return f"{url}: {msg.text}"


class Pages:
    """Opens pages (each in its own context, so its own cookies) and records console errors."""

    def __init__(self, browser: Any) -> None:
        self.browser = browser
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def open(self, url: str, width: int = 1280, height: int = 720) -> Any:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.on("console", lambda msg: self._record(console_error(url, msg)))
        page.on("pageerror", lambda exc: self.errors.append(f"{url}: {exc}"))
        page.goto(url)
        return page

    def _record(self, line: str | None) -> None:
        if line is not None:
            self.errors.append(line)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def pages(browser: Any) -> Iterator[Pages]:
    """New pages for one test; the test fails if any of them logged a console error."""
    opened = Pages(browser)
    yield opened
    opened.close()
    assert not opened.errors, "console errors:\n" + "\n".join(opened.errors)


def sign_in(page: Any, token: str) -> None:
    """Sign in through the form and wait for the map."""
    page.fill("#token", token)
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#map-summary [data-count=total]")


def shot(page: Any, name: str) -> None:
    """Save a screenshot for docs/ when hack/screenshots asks for them."""
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / name))


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="crane-browser-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


DOCKER_DAEMONS = range(6, 8)
KUBE_PRODUCT = "NVIDIA-GB300"
"""A GPU family no other e2e test uses, so the kube run's free capacity is its own."""


def _docker_server(tmp: Path) -> Iterator[CraneServer]:
    from tests.dockerd import clean, daemons, serve_docker

    urls = daemons(DOCKER_DAEMONS)
    clean(urls)
    hosts: list[dict[str, object]] = [
        {
            "name": f"gpu-{i}",
            "dockerHost": url,
            "gpus": 8,
            "gpuType": "H100",
            "islands": "0-3,4-7",
            "labels": {"rack": f"r{i}"},
        }
        for i, url in enumerate(urls, start=1)
    ]
    server = serve_docker(tmp / "docker", ADMIN, hosts)
    template = {
        "spec": {
            "containers": [
                {"name": "main", "image": "crane-test:busybox", "command": ["sleep", "3600"]}
            ]
        }
    }
    try:
        yield CraneServer("docker", server.url, "H100", template)
    finally:
        server.stop()
        clean(urls)


def _kube_server(request: pytest.FixtureRequest, tmp: Path) -> Iterator[CraneServer]:
    import signal
    import subprocess
    import sys

    from kubernetes.client.exceptions import ApiException

    from crane.kube.fleet import apply_nodes, delete_nodes, fleet_manifests, wait_ready
    from crane.model.fleet import FleetSpec, NodeGroup
    from tests.e2e.operator_support import operator_args
    from tests.support import free_port

    cluster = request.getfixturevalue("kube_cluster")
    core = request.getfixturevalue("core_v1")
    request.getfixturevalue("crane_crds")
    root = Path(__file__).resolve().parents[2]
    group = NodeGroup(
        name=f"brw-{uuid.uuid4().hex[:5]}",
        product=KUBE_PRODUCT,
        gpus_per_node=8,
        islands="0-3,4-7",
        racks_per_block=2,
        nodes_per_rack=2,
    )
    manifests = fleet_manifests(FleetSpec(groups=[group]))
    apply_nodes(core, manifests)
    added = [m["metadata"]["name"] for m in manifests]
    env = {k: v for k, v in cluster.env.items() if not k.startswith("CRANE_")}
    env["PYTHONPATH"] = str(root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []

    def run(args: list[str], log: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "crane", *args],
            env=env,
            cwd=root,
            stdout=(tmp / log).open("ab"),
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        return proc

    template = {"spec": {"containers": [{"name": "main", "image": "trainer:1"}]}}
    server = CraneServer("kube", url, "GB300", template)
    try:
        wait_ready(core, added, timeout=60)
        run(
            [
                "serve", "--backend", "kube", "--port", str(port), "--bootstrap-token", ADMIN,
                "--database-url", f"sqlite:///{tmp / 'kube.db'}",
                "--kubeconfig", str(cluster.kubeconfig), "--log-level", "warning",
            ],
            "serve.log",
        )  # fmt: skip
        run(operator_args(api_url=url, api_token=ADMIN), "operator.log")

        def ready() -> bool:
            assert all(p.poll() is None for p in procs), (tmp / "serve.log").read_text()
            try:
                return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, "crane serve --backend kube to be ready", 90)
        yield server
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        for tenant in server.tenants:
            try:
                core.delete_namespace(tenant, propagation_policy="Background")
            except ApiException as err:
                if err.status != 404:
                    raise
        delete_nodes(core, added)


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("docker", marks=pytest.mark.docker),
        pytest.param("kube", marks=pytest.mark.e2e),
    ],
)
def crane_server(request: pytest.FixtureRequest, tmp_root: Path) -> Iterator[CraneServer]:
    """``crane serve`` with the Docker backend, then with the Kubernetes backend."""
    tmp = tmp_root / f"{request.param}-{uuid.uuid4().hex[:6]}"
    tmp.mkdir()
    if request.param == "docker":
        yield from _docker_server(tmp)
    else:
        yield from _kube_server(request, tmp)
