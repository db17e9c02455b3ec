"""Text a tenant or a hostile server controls never reaches an admin's terminal as control
characters: ``crane mc explain`` printed the server's message raw, ``crane nodes`` and
``crane top`` printed node names, GPU products and MiniCluster names raw, and an error line
printed the server's problem detail raw, so ``ESC]52;c;...`` (write the clipboard),
``ESC[2J`` (clear the screen) or an OSC 8 link ran in the admin's terminal. Now each prints as
visible escapes (``\\x1b``), as tables already did; ``crane logs`` alone stays raw, as
``kubectl logs`` does (docs/cli-guide.md)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support import crane

EVIL = (
    "\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\x9b31m"
)
"""Clipboard write, screen clear, an OSC 8 link and an 8-bit CSI."""

NODE = {
    "name": f"gpu{EVIL}",
    "gpuProduct": f"H100{EVIL}",
    "gpuCount": 1,
    "gpus": [{"id": 0, "miniCluster": f"mc{EVIL}", "reservedFor": f"mc{EVIL}"}],
}
MC = {
    "name": f"mc{EVIL}",
    "tenant": "t",
    "uid": "u1",
    "createdAt": "2026-01-01T00:00:00Z",
    "spec": {"gpuType": "H100", "gpus": {"min": 1, "max": 2}},
    "status": {"message": f"waits{EVIL}"},
}
EXPLAIN = {"name": "x", "admitted": False, "message": f"waiting{EVIL}", "cargos": []}


class Hostile(BaseHTTPRequestHandler):
    """A Crane API that answers with control characters in every text it can."""

    def _send(self, status: int, body: Any, kind: str = "application/json") -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # http.server calls it by this name
        path = self.path.split("?")[0]
        if path == "/v1/nodes":
            self._send(200, {"items": [NODE], "count": 1})
        elif path == "/v1/miniclusters":
            self._send(200, {"items": [MC], "count": 1})
        elif path == "/v1/miniclusters/x:explain":
            self._send(200, EXPLAIN)
        elif path == "/v1/tenants":
            self._send(403, {"status": 403, "title": "Forbidden", "detail": "admin only"})
        else:
            problem = {"type": "about:blank", "title": "boom", "status": 500, "detail": EVIL}
            self._send(500, problem, "application/problem+json")

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize(
    "args",
    [["mc", "explain", "x"], ["nodes"], ["top", "--once"], ["mc", "get", "missing"]],
    ids=["explain", "nodes", "top", "error-line"],
)
def test_server_text_reaches_the_terminal_escaped(
    url: str, tmp_path: Path, args: list[str]
) -> None:
    done = crane(*args, config_dir=tmp_path, CRANE_API_URL=url, CRANE_TOKEN="crane_a_b")
    out = done.stdout + done.stderr
    assert "\\x1b" in out, out  # the text is shown, visibly escaped
    for raw in ("\x1b", "\x07", "\x9b"):
        assert raw not in out, (args, out)
