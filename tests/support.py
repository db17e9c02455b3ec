"""Small helpers shared by the test suites."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

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
