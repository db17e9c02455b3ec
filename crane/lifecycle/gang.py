"""What a gang's replicas say about the cargo, judged once for both backends (no I/O).

Each pass, a backend tells what it sees of each replica of a placed cargo (a pod or a
container) as a :class:`ReplicaSeen`; :func:`judge` says whether the gang failed (which replica,
in what words: a replica taken away while the gang ran comes first, then the lowest replica that
failed), every replica succeeded, or how many run. Kubernetes mode
(``crane/lifecycle/cargo_lifecycle.py``) and Docker mode (``crane/docker/reconciler.py``) act on
the answer with :mod:`crane.lifecycle.cargo_end`, so a gang with the same replicas in the same
states ends the same way, in the same words, on either backend.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from crane.lifecycle.restart import gone_replicas, replica_failed
from crane.model.specs import CargoPhase


class ReplicaState(StrEnum):
    """What a replica's pod or container is doing."""

    WAITING = "Waiting"
    """Not started yet, or started but not ready (a pod not ready, a container created)."""
    RUNNING = "Running"
    """Runs (a pod that is ready)."""
    SUCCEEDED = "Succeeded"
    """Exited 0."""
    FAILED = "Failed"
    """Exited non-zero, or failed another way (``detail`` says how)."""


@dataclass(frozen=True)
class ReplicaSeen:
    """One replica's pod or container as a backend sees it."""

    state: ReplicaState
    exit_code: int | None = None
    """A failed replica's exit code, where known."""
    detail: str = ""
    """How a failed replica failed when its exit code says nothing (a pod's status message,
    a container cut off from its network)."""


@dataclass(frozen=True)
class Failure:
    """The replica failure a gang fails (or restarts) for."""

    replica: int
    what: str
    """What happened, in the same words on both backends
    (:func:`~crane.lifecycle.restart.replica_failed`)."""
    exit_code: int | None


@dataclass(frozen=True)
class GangState:
    """What a gang's replicas say about the cargo."""

    failure: Failure | None
    """Why the gang fails or restarts; None when no replica failed."""
    succeeded: bool
    """Every placed replica exited 0."""
    running: int
    """How many replicas run."""


def judge(
    phase: CargoPhase,
    ran: Iterable[int],
    seen: Mapping[int, ReplicaSeen],
    replicas: int,
    gone: str,
) -> GangState:
    """Judge a placed gang of ``replicas`` from what is ``seen`` of each replica by index (a
    replica not made yet is not there).

    A replica of a ``Running`` gang among those that ``ran`` whose pod or container is gone is
    a failure first (saying ``gone``: :func:`~crane.lifecycle.restart.gone_replicas`; a backend
    that cannot tell yet, its replicas still being replaced, passes none); else the lowest
    replica that failed. With no failure, the gang succeeded when all ``replicas`` exited 0."""
    lost = gone_replicas(phase, ran, seen)
    if lost:
        return GangState(Failure(lost[0], replica_failed(lost[0], None, gone), None), False, 0)
    failed = sorted(r for r, s in seen.items() if s.state is ReplicaState.FAILED)
    if failed:
        first = seen[failed[0]]
        what = replica_failed(failed[0], first.exit_code, first.detail)
        return GangState(Failure(failed[0], what, first.exit_code), False, 0)
    done = sum(1 for s in seen.values() if s.state is ReplicaState.SUCCEEDED)
    running = sum(1 for s in seen.values() if s.state is ReplicaState.RUNNING)
    return GangState(None, replicas > 0 and done == replicas, running)
