"""Small helpers shared by the test suites."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from typing import NoReturn

import pytest

CI = os.environ.get("CI", "").lower() == "true"
"""Under CI=true a missing real part fails the run: nothing is skipped there."""


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
