"""The store's host stops answering while the world grows (two hosts in network namespaces of
their own, hack/dockerd-netns, declaring their addresses): the MiniCluster keeps one rendezvous
store, a cargo added meanwhile joins the running world's store once its host is back, and a
MiniCluster with no world yet is not held up (its store starts on the host that answers).

Before, the reconciler started a second store on the host that answered and gave the new cargo
its endpoint, while the running cargo kept the first: two worlds that never met, and after the
host came back two stores for one MiniCluster. The host is cut off by stopping the socket
forwarder Crane reaches its daemon through, so the daemon and its containers keep running, as
behind a network partition."""

from __future__ import annotations

import contextlib
import io
import socket
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from crane.docker import labels as L
from crane.docker.containers import managed_containers
from tests.dockerd import DockerServer, NetnsHost, clean, import_busybox_image, serve_docker

ADMIN = "crane_storedown_" + "d" * 43
IMAGE = "crane-test:storedown"
STORE_STANDIN = """#!/bin/sh
# stands in for the rendezvous store's python3 (no torch in this image)
echo "crane rendezvous store listening on port 0"
exec sleep 100000
"""
SLOW_STORE = """#!/bin/sh
# a store slow to listen (torch's import takes seconds): it listens once /tmp/go exists
until [ -f /tmp/go ]; do sleep 0.2; done
echo "crane rendezvous store listening on port 0"
exec sleep 100000
"""
WAIT = 180
"""Seconds a wait may take: 2x what it takes on a loaded machine."""


class Forwarder:
    """A unix socket that forwards every connection to ``target`` (a daemon's socket) until
    :meth:`stop`, which closes the connections it carries too; :meth:`start` serves again."""

    def __init__(self, path: Path, target: str) -> None:
        self.path, self.target = path, target
        self.live: list[socket.socket] = []
        self.listener: socket.socket | None = None

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return
            far = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            far.connect(self.target)
            self.live += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for end in (src, dst):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
        self.path.unlink(missing_ok=True)
        for end in self.live:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()
        self.live = []


@pytest.fixture(scope="module")
def hosts(separate_hosts: list[NetnsHost]) -> list[NetnsHost]:
    chosen = separate_hosts[:2]
    import_busybox_image(
        [h.url for h in chosen],
        "crane-test",
        "storedown",
        ("sh", "sleep"),
        files={"bin/python3": STORE_STANDIN.encode()},
    )
    import_busybox_image(
        [h.url for h in chosen],
        "crane-test",
        "slowstore",
        ("sh", "sleep", "echo", "["),
        files={"bin/python3": SLOW_STORE.encode()},
    )
    return chosen


def _until(check: Callable[[], Any], what: str, seen: Callable[[], object] = str) -> Any:
    deadline = time.monotonic() + WAIT
    while not (got := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; {seen()}"
        time.sleep(0.3)
    return got


def _host(name: str, url: str, address: str) -> dict[str, Any]:
    return {
        "name": name,
        "dockerHost": url,
        "gpus": 8,
        "gpuType": "NVIDIA-H100-80GB-HBM3",
        "address": address,
    }


def _env(container: Container) -> dict[str, str]:
    pairs = (item.partition("=") for item in container.attrs["Config"]["Env"])
    return {k: v for k, _, v in pairs}


@pytest.fixture
def server(hosts: list[NetnsHost], tmp_path: Path) -> Iterator[tuple[DockerServer, Forwarder]]:
    """Host n0 reached through a forwarder to its daemon's socket (stopped to cut it off); n1
    is added by the test."""
    urls = [h.url for h in hosts]
    clean(urls)
    forwarder = Forwarder(tmp_path / "n0.sock", hosts[0].url.removeprefix("unix://"))
    forwarder.start()
    running = serve_docker(
        tmp_path / "data", ADMIN, [_host("n0", f"unix://{forwarder.path}", hosts[0].address)]
    )
    yield running, forwarder
    running.stop()
    forwarder.stop()
    clean(urls)


def test_a_grow_while_the_stores_host_is_cut_off_joins_the_running_world(
    server: tuple[DockerServer, Forwarder], hosts: list[NetnsHost]
) -> None:
    running, forwarder = server
    engines = {f"n{i}": docker.DockerClient(base_url=h.url) for i, h in enumerate(hosts)}

    def stores(mc: str = "w") -> list[tuple[str, Container]]:
        return [
            (host, c)
            for host, engine in engines.items()
            for c in managed_containers(engine)
            if c.labels.get(L.RENDEZVOUS) and c.labels.get(L.MINICLUSTER) == mc
        ]

    def replica(cargo: str) -> Container | None:
        found = [
            c
            for engine in engines.values()
            for c in managed_containers(engine)
            if c.labels.get(L.CARGO) == cargo and c.status == "running"
        ]
        return found[0] if found else None

    container = {"name": "main", "image": IMAGE, "command": ["sleep", "100000"]}
    spec = {
        "gpuType": "H100",
        "gpus": {"min": 4, "max": 8},
        "replicas": 1,
        "template": {
            "replicas": 1,
            "gpusPerReplica": 4,
            "template": {"spec": {"containers": [container]}},
        },
        "rendezvous": {"enabled": True},
    }
    with closing(running.client()) as api:
        made = api.post("/v1/miniclusters", json={"name": "w", "spec": spec})
        assert made.status_code == 201, made.text
        first = _until(lambda: replica("w-0"), "cargo w-0 running on n0", stores)
        endpoint = _env(first)["CRANE_RDZV_ENDPOINT"]
        assert [h for h, _ in stores()] == ["n0"]
        added = api.post("/v1/hosts", json=_host("n1", hosts[1].url, hosts[1].address))
        assert added.status_code == 201, added.text
        forwarder.stop()  # n0 stops answering; its daemon and containers run on
        _until(lambda: not api.get("/v1/hosts/n0").json()["ready"], "n0 not ready")
        grown = api.post("/v1/miniclusters/w:grow", json={"count": 1})
        assert grown.is_success, grown.text

        def waiting() -> str:
            got = api.get("/v1/cargos/w-1")
            message = got.json().get("status", {}).get("message", "") if got.is_success else ""
            return message if "rendezvous store" in message else ""

        # before, w-1 ran at once on n1, with a second store there
        _until(
            lambda: waiting() or replica("w-1"),
            "w-1 waiting for the store or running",
            lambda: (stores(), api.get("/v1/cargos/w-1").text),
        )
        assert replica("w-1") is None, f"w-1 started without its world's store: {stores()}"
        said = waiting()
        assert "n0" in said, said
        assert replica("w-1") is None, "w-1 started without its world's store"
        assert [h for h, _ in stores()] == ["n0"], "a second store for one MiniCluster"
        # a MiniCluster with no world yet is not held up by n0: its store starts on n1
        fresh = {**spec, "gpus": {"min": 4, "max": 4}}
        made = api.post("/v1/miniclusters", json={"name": "fresh", "spec": fresh})
        assert made.status_code == 201, made.text
        _until(
            lambda: replica("fresh-0"),
            "fresh-0 running on n1 while n0 is cut off",
            lambda: (stores("fresh"), api.get("/v1/cargos/fresh-0").text),
        )
        assert [h for h, _ in stores("fresh")] == ["n1"]
        assert replica("w-1") is None, "w-1 started without its world's store"
        forwarder.start()  # n0 is back
        second = _until(lambda: replica("w-1"), "w-1 running once n0 is back", stores)
        assert _env(second)["CRANE_RDZV_ENDPOINT"] == endpoint, "w-1 is in another world"
        assert [h for h, _ in stores()] == ["n0"]
        assert api.delete("/v1/miniclusters/w").is_success
        assert api.delete("/v1/miniclusters/fresh").is_success
        _until(
            lambda: not any(managed_containers(e) for e in engines.values()),
            "every container gone with the MiniCluster",
        )
    for engine in engines.values():
        engine.close()


def test_no_replica_before_its_store_listens_on_the_stores_host(
    server: tuple[DockerServer, Forwarder], hosts: list[NetnsHost]
) -> None:
    """A replica on the store's host, made before the store listened, took the endpoint (its
    host's address) for its own: torchrun's agent served the store itself, the store's
    container restarted forever on ``address already in use``, and shrinking that replica's
    cargo took the world's store. The cargo now waits, saying so, until the store has printed
    that it listens; then its replica is made."""
    running, _ = server
    engine = docker.DockerClient(base_url=hosts[0].url)

    def containers(label: str) -> list[Container]:
        return [
            c
            for c in managed_containers(engine)
            if c.labels.get(label) and c.labels.get(L.MINICLUSTER) == "slow"
        ]

    container = {"name": "main", "image": "crane-test:slowstore", "command": ["sleep", "100000"]}
    spec = {
        "gpuType": "H100",
        "gpus": {"min": 4, "max": 8},
        "replicas": 1,
        "template": {
            "replicas": 1,
            "gpusPerReplica": 4,
            "template": {"spec": {"containers": [container]}},
        },
        "rendezvous": {"enabled": True},
    }
    with closing(running.client()) as api, closing(engine):
        made = api.post("/v1/miniclusters", json={"name": "slow", "spec": spec})
        assert made.status_code == 201, made.text
        try:

            def message() -> str:
                got = api.get("/v1/cargos/slow-0")
                return got.json().get("status", {}).get("message", "") if got.is_success else ""

            store = _until(
                lambda: [c for c in containers(L.RENDEZVOUS) if c.status == "running"],
                "the store's container running",
            )[0]
            # a replica is made in the pass after the store's container runs, or never: the
            # store does not listen until told, so none may come for several passes
            window = time.monotonic() + 10
            while time.monotonic() < window:
                assert not containers(L.CARGO), "a replica was made before its store listened"
                time.sleep(0.3)
            assert "waiting for the rendezvous store of MiniCluster slow" in message()
            go = io.BytesIO()
            with tarfile.open(fileobj=go, mode="w") as tar:
                tar.addfile(tarfile.TarInfo("go"), io.BytesIO(b""))
            store.put_archive("/tmp", go.getvalue())
            _until(lambda: containers(L.CARGO), "slow-0's replica once the store listens")
        finally:
            api.delete("/v1/miniclusters/slow")
