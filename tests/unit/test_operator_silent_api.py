"""The operator against a Kubernetes API server that takes connections and never answers (a
stalled API server, or a connection whose peer vanished without a word).

Its writes and its lease calls had no time limit: one write on such a connection held the
scheduling pass for ever while the lease went on being renewed on its own task (so no standby
took over and nothing was placed anywhere again), and one renewal on it stopped renewing for
ever (a lone operator never led again). Each call now ends with an error in bounded time,
which the pass and the renewal already recover from.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from crane.kube.client import KubeClient, load_config
from crane.operator.leader import LeaseElector
from tests.support import SilentServer

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "t"},
    "spec": {"containers": [{"name": "c", "image": "i"}]},
}


@pytest.fixture
def silent(tmp_path: Path) -> Iterator[client.ApiClient]:
    with SilentServer() as server:
        api = load_config(server.kubeconfig(tmp_path / "kubeconfig"))
        yield api
        api.close()


def _ends_within(seconds: float, call: Callable[[], Any]) -> BaseException | None:
    """Run ``call`` on a thread; what it raised, or fail if it has not ended in ``seconds``."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as err:  # the call's own error is what the test looks at
            raised.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the call still waits after {seconds:.0f} s"
    return raised[0] if raised else None


def test_a_write_to_a_silent_api_server_fails_in_bounded_time(silent: client.ApiClient) -> None:
    kube = KubeClient(silent)
    kube.timeout = (1.0, 2.0)  # connect, then silence between reads (default 10 and 60 s)
    assert _ends_within(30, lambda: kube.create_pod(POD)) is not None
    assert _ends_within(30, lambda: kube.list_items("pods")) is not None


def test_a_lease_renewal_on_a_silent_api_server_fails_within_the_lease(
    silent: client.ApiClient,
) -> None:
    elector = LeaseElector(
        client.CoordinationV1Api(silent), "crane-system", "crane-operator", "me", duration=3.0
    )
    assert _ends_within(30, elector.try_acquire) is not None
    assert not elector.holds()
