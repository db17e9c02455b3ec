"""Small helpers shared by the test suites."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn

import pytest

CI = os.environ.get("CI", "").lower() == "true"
"""Under CI=true a missing real part fails the run: nothing is skipped there."""


REPO = Path(__file__).resolve().parents[1]
"""The repository root: on PYTHONPATH of every ``python -m crane`` a test starts."""


def crane_env(config_dir: Path, **env: str) -> dict[str, str]:
    """The environment of a ``python -m crane`` subprocess: the caller's without any CRANE_*,
    the repository on PYTHONPATH, its own ``CRANE_CONFIG_DIR``, then ``env`` on top."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRANE_")}
    return {**clean, "PYTHONPATH": str(REPO), "CRANE_CONFIG_DIR": str(config_dir), **env}


def crane(
    *args: str, config_dir: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``crane ARGS`` to its end as a shell user would (``python -m crane``), with
    :func:`crane_env` and no stdin; its exit status, stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "crane", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=crane_env(config_dir, **env),
        timeout=timeout,
        check=False,
    )


def unavailable(reason: str) -> NoReturn:
    """A real part this test needs is missing: fail under CI=true, else skip with the reason."""
    if CI:
        pytest.fail(f"CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


LEASE_NAMESPACE = "crane-system"
"""Where the operator of the e2e tests keeps its Lease (created by the ``crane_crds`` fixture)."""


def wait_established(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], *crds: str, timeout: float = 120
) -> None:
    """Wait until the CRDs are Established. A CRD just created may have no status.conditions
    yet, and ``kubectl wait`` then fails at once ("accessor error") instead of waiting: ask
    again until it can wait."""
    deadline = time.monotonic() + timeout
    while True:
        waited = kubectl("wait", "--for=condition=Established", *crds, "--timeout=60s", check=False)
        if waited.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{' '.join(crds)} not Established: {waited.stderr.strip()}")
        time.sleep(0.5)


FENCE_RELEASE = "crane"
"""The release the e2e tests' leader fence is rendered as (:func:`apply_leader_fence`)."""


def apply_leader_fence(
    kubectl: Callable[..., subprocess.CompletedProcess[str]], tools_bin: Path
) -> None:
    """Apply the chart's leader fence (its ValidatingAdmissionPolicy and binding) for the
    operator Lease of the e2e tests, as ``helm install`` into ``LEASE_NAMESPACE`` would."""
    versions = dict(
        line.split("=", 1)
        for line in (REPO / "hack" / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    rendered = subprocess.run(
        [
            str(tools_bin / "helm"),
            "template",
            FENCE_RELEASE,
            str(REPO / "helm" / "crane"),
            "--namespace",
            LEASE_NAMESPACE,
            "--kube-version",
            versions["KUBERNETES_VERSION"],
            "--show-only",
            "templates/operator-leader-fence.yaml",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    kubectl("apply", "--server-side", "-f", "-", input=rendered)


Answer = tuple[int, str, bytes]
"""Status, content type ('' for none) and body of every answer of a fake server."""


class FakeApi:
    """A local HTTP server giving every request the same answer (``answer``, changeable), on
    ``port`` (default: a free one; a closed one's port serves it again)."""

    def __init__(self, port: int = 0) -> None:
        self.answer: Answer = (200, "application/json", b"{}")
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                fake.requests.append(f"{self.command} {self.path}")
                status, media, body = fake.answer
                self.send_response(status)
                if media:
                    self.send_header("content-type", media)
                if status in (301, 302, 303, 307):
                    self.send_header("location", "https://sso.example/login?next=/v1")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *_: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Gate:
    """Holds a call at its start until the test lets it go: the way a race test pauses one
    request at a chosen step while another acts.

    ``gate.hold(monkeypatch, owner, "name")`` patches ``owner.name`` (sync or async); the test
    waits on ``gate.entered`` and then sets ``gate.release``.
    """

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    seconds: float = 60.0

    def hold(self, monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
        """Replace ``owner.name`` with a version that waits at the gate, then calls it."""
        call = getattr(owner, name)
        if inspect.iscoroutinefunction(call):

            async def held_async(*args: Any, **kwargs: Any) -> Any:
                self.entered.set()
                released = await asyncio.to_thread(self.release.wait, self.seconds)
                assert released, f"the test never released {name}"
                return await call(*args, **kwargs)

            monkeypatch.setattr(owner, name, held_async)
            return

        def held(*args: Any, **kwargs: Any) -> Any:
            self.entered.set()
            assert self.release.wait(self.seconds), f"the test never released {name}"
            return call(*args, **kwargs)

        monkeypatch.setattr(owner, name, held)

    def wait_entered(self, what: str) -> None:
        """Wait until the held call has started; fail saying ``what`` never did."""
        assert self.entered.wait(self.seconds), f"{what} never started"


class SilentServer:
    """A TCP server that accepts connections and never answers: a stalled API server, or a
    peer gone without a word behind a connection that stays open (``with``: listening).

    ``kubeconfig(path)`` writes a kubeconfig naming it."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._taker = threading.Thread(target=self._take, name="silent-server", daemon=True)
        self.port: int = self._listener.getsockname()[1]

    def _take(self) -> None:
        while not self._stop.is_set():
            try:
                conn = self._listener.accept()[0]
            except OSError:
                continue
            self._held.append(conn)
            self.answer(conn)

    def answer(self, conn: socket.socket) -> None:
        """What the server says on a new connection: nothing."""

    def kubeconfig(self, path: Path) -> str:
        """A kubeconfig at ``path`` whose cluster is this server; its path."""
        path.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: silent\n"
            f"clusters: [{{name: silent, cluster: {{server: 'http://127.0.0.1:{self.port}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: silent, context: {cluster: silent, user: u}}]\n"
        )
        return str(path)

    def __enter__(self) -> SilentServer:
        self._taker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._taker.join()
        for conn in self._held:
            conn.close()
        self._listener.close()


class StallingServer(SilentServer):
    """A server that answers every request's headers (200, a large JSON body announced), sends
    the body's first bytes, then stalls: an API server or a peer gone half-way through a large
    listing."""

    def answer(self, conn: socket.socket) -> None:
        """Start an answer and stop sending."""
        conn.settimeout(5)
        with contextlib.suppress(OSError):
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: 50000000\r\n\r\n" + b'{"kind": "List", "items": ['
            )
