"""A Kubernetes API server that takes connections and never answers (etcd stalled, a peer gone
without a word), and a server killed while it runs a request sent with an ``Idempotency-Key``.

Both hung a user for an hour or for ever: every request to the API waited on the silent
Kubernetes API without a limit (each holding one of the threads every tenant's blocking calls
share), and a retry of a request whose server was killed waited for that request's answer for
an hour, then said it was "still running", for ever.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.api.conftest import ADMIN, start_server, stop_server
from tests.support import SilentServer, StallingServer

BODY = {
    "name": "study",
    "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 8}},
}


@pytest.fixture
def silent_kube(tmp_path: Path) -> Iterator[str]:
    """A kubeconfig naming a server that accepts connections and never answers."""
    with SilentServer() as silent:
        yield silent.kubeconfig(tmp_path / "silent.kubeconfig")


def _claims(database_url: str, key: str) -> int:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            query = text("SELECT count(*) FROM idempotency_keys WHERE key = :key")
            return int(conn.execute(query, {"key": key}).scalar() or 0)
    finally:
        engine.dispose()


def test_a_kubernetes_api_that_never_answers_is_a_503_not_a_hang(
    database_url: str, tmp_path: Path, silent_kube: str
) -> None:
    server = start_server(
        database_url,
        tmp_path / "serve.log",
        kubeconfig=silent_kube,
        extra=["--bootstrap-token", ADMIN],
        settings={"CRANE_KUBE_TIMEOUT": "2"},
    )
    try:
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
        ) as admin:
            for _ in range(3):
                got = admin.get("/v1/miniclusters")
                assert got.status_code == 503, got.text
                assert got.headers["content-type"] == "application/problem+json"
                assert "did not answer within 2 s" in got.json()["detail"]
            assert admin.get("/healthz").status_code == 200
    finally:
        stop_server(server)


def test_a_listing_whose_body_stalls_is_a_503_and_holds_no_other_request(
    database_url: str, tmp_path: Path
) -> None:
    """The Kubernetes API answers a listing's headers, then stops sending its body (a peer gone
    half-way through megabytes of nodes): the body was read on the event loop every request
    shares, outside the call's error mapping, so every request waited on it and the listing
    ended in a 500. Now it is read in the worker thread under the time limit: a 503 saying so,
    and the server answers others meanwhile."""
    with StallingServer() as stalling:
        kubeconfig = stalling.kubeconfig(tmp_path / "stalling.kubeconfig")
        server = start_server(
            database_url,
            tmp_path / "serve.log",
            kubeconfig=kubeconfig,
            extra=["--bootstrap-token", ADMIN],
            settings={"CRANE_KUBE_TIMEOUT": "3"},
        )
        try:
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=60
            ) as admin:
                answered: list[float] = []

                def health() -> None:
                    while not listed.is_set():
                        began = time.monotonic()
                        assert admin.get("/healthz").status_code == 200
                        answered.append(time.monotonic() - began)
                        time.sleep(0.05)

                listed = threading.Event()
                prober = threading.Thread(target=health)
                prober.start()
                try:
                    got = admin.get("/v1/nodes")
                finally:
                    listed.set()
                    prober.join()
                assert got.status_code == 503, got.text
                assert got.headers["content-type"] == "application/problem+json"
                assert "did not answer within 3 s" in got.json()["detail"]
                assert answered and max(answered) < 2.0, answered
        finally:
            stop_server(server)


def test_a_retry_after_its_server_was_killed_is_told_at_once(
    database_url: str, tmp_path: Path, silent_kube: str
) -> None:
    """Server A takes a create with a key and is killed while the create waits on Kubernetes;
    the client retries on server B (same database): a 409 saying the first attempt was cut off
    and what to do, within the time a server takes to be seen gone, not an hour's wait."""
    key = f"create-{uuid.uuid4().hex}"
    first = start_server(
        database_url,
        tmp_path / "a.log",
        kubeconfig=silent_kube,
        extra=["--bootstrap-token", ADMIN],
        settings={"CRANE_KUBE_TIMEOUT": "600"},
    )
    headers = {"Authorization": f"Bearer {ADMIN}", "Idempotency-Key": key}
    hanging = threading.Thread(
        target=lambda: _swallow(first.url, headers), name="first-attempt", daemon=True
    )
    hanging.start()
    deadline = time.monotonic() + 60
    while _claims(database_url, key) == 0:
        assert time.monotonic() < deadline, "server A never took the key"
        time.sleep(0.1)
    os.kill(first.process.pid, signal.SIGKILL)
    first.process.wait(10)
    second = start_server(
        database_url,
        tmp_path / "b.log",
        kubeconfig=silent_kube,
        settings={"CRANE_KUBE_TIMEOUT": "2"},
    )
    try:
        with httpx.Client(base_url=second.url, headers=headers, timeout=90) as retry:
            started = time.monotonic()
            got = retry.post("/v1/miniclusters", json=BODY)
            took = time.monotonic() - started
        assert got.status_code == 409, got.text
        detail = got.json()["detail"]
        assert "did not finish" in detail and "new Idempotency-Key" in detail, detail
        assert took < 60, f"the retry waited {took:.0f} s"
        fresh = {**headers, "Idempotency-Key": f"other-{uuid.uuid4().hex}"}
        with httpx.Client(base_url=second.url, headers=fresh, timeout=60) as client:
            again = client.post("/v1/miniclusters", json=BODY)
        assert again.status_code == 503, again.text  # a new key runs: Kubernetes is still silent
    finally:
        stop_server(second)


def _swallow(url: str, headers: dict[str, str]) -> None:
    """POST the create and ignore how it ends (its server is killed under it)."""
    with contextlib.suppress(httpx.HTTPError):
        httpx.post(f"{url}/v1/miniclusters", json=BODY, headers=headers, timeout=120)
