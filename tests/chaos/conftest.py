"""Fixtures of the chaos suite: a Kubernetes cluster of its own (the run restarts its
kube-apiserver, so no other suite may share it), started with ``hack/cluster up`` and deleted
at the end.

``CRANE_CHAOS_SEED`` replays a run; ``CRANE_CHAOS_KILLS`` changes the number of SIGKILLs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.chaos.kube_harness import REPO, Cluster, dedicated_cluster, tools_bin
from tests.support import unavailable

CHAOS_FLEET = REPO / "hack" / "fleets" / "chaos.yaml"
"""The small fleet's shape with DRA nodes (the A100s), so claims are made under the kills."""


@pytest.fixture(scope="session")
def chaos_cluster() -> Iterator[Cluster]:
    """A cluster named ``crane-test-chaos-<pid>`` with the chaos fleet, deleted afterwards."""
    try:
        tools_bin()
    except RuntimeError as err:
        unavailable(f"no chaos cluster: {err}")
    try:
        with dedicated_cluster(f"crane-test-chaos-{os.getpid()}", CHAOS_FLEET) as cluster:
            yield cluster
    except RuntimeError as err:
        if "hack/cluster up failed" in str(err):
            unavailable(f"no chaos cluster: {err}")
        raise


@pytest.fixture
def chaos_seed() -> int | None:
    """The seed to replay (``CRANE_CHAOS_SEED``), else None (a fresh one, printed)."""
    raw = os.environ.get("CRANE_CHAOS_SEED", "")
    return int(raw) if raw else None


@pytest.fixture
def chaos_kills() -> int | None:
    """The number of SIGKILLs asked for by ``CRANE_CHAOS_KILLS`` (None: the test's default)."""
    raw = os.environ.get("CRANE_CHAOS_KILLS", "")
    return int(raw) if raw else None


@pytest.fixture(scope="session")
def chaos_docker_urls() -> list[str]:
    """The three dockerd of hack/dockerd (0..2), with the test image; no Crane container left
    on them before the run."""
    from tests.dockerd import clean, daemons

    urls = daemons(range(3))
    clean(urls)
    return urls
