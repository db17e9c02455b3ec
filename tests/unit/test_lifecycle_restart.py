"""The restart-policy rule both backends use (crane/lifecycle/restart.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crane.lifecycle.restart import after_failure, first_start, is_restarting, replica_failed
from crane.model.specs import CargoPhase, RestartPolicy

WHAT = "replica 1 exited with code 3"


@pytest.mark.parametrize(
    ("replica", "code", "detail", "said"),
    [
        (1, 3, "", "replica 1 exited with code 3"),
        (0, 137, "ignored when the code is known", "replica 0 exited with code 137"),
        (2, None, "its container disappeared", "replica 2 failed: its container disappeared"),
        (0, None, "", "replica 0 failed"),
        (None, None, "evicted", "a replica failed: evicted"),
    ],
)
def test_what_happened_to_a_replica_is_said_one_way(
    replica: int | None, code: int | None, detail: str, said: str
) -> None:
    assert replica_failed(replica, code, detail) == said


def test_on_failure_restarts_the_gang_until_the_backoff_limit() -> None:
    first = after_failure(RestartPolicy.ON_FAILURE, 0, 2, WHAT)
    assert (first.restart, first.restarts, first.limit_reached) == (True, 1, False)
    assert first.phase is CargoPhase.PENDING  # until the gang is placed again
    assert first.message == f"{WHAT}; restarting the gang (restart 1 of 2)"
    second = after_failure(RestartPolicy.ON_FAILURE, first.restarts, 2, WHAT)
    assert (second.restart, second.restarts) == (True, 2)
    assert second.message == f"{WHAT}; restarting the gang (restart 2 of 2)"
    last = after_failure(RestartPolicy.ON_FAILURE, second.restarts, 2, WHAT)
    assert (last.restart, last.restarts, last.limit_reached) == (False, 2, True)
    assert last.phase is CargoPhase.FAILED
    assert last.message == f"{WHAT}; backoffLimit 2 reached"


def test_on_failure_with_backoff_limit_zero_fails_at_once() -> None:
    then = after_failure(RestartPolicy.ON_FAILURE, 0, 0, WHAT)
    assert (then.restart, then.restarts, then.limit_reached) == (False, 0, True)
    assert then.message == f"{WHAT}; backoffLimit 0 reached"


@pytest.mark.parametrize("restarts", [0, 5])
def test_never_fails_at_once_with_what_happened_only(restarts: int) -> None:
    then = after_failure(RestartPolicy.NEVER, restarts, 3, WHAT)
    assert (then.restart, then.restarts, then.limit_reached) == (False, restarts, False)
    assert then.phase is CargoPhase.FAILED
    assert then.message == WHAT


@pytest.mark.parametrize(
    ("phase", "placed", "restarting"),
    [
        (CargoPhase.PENDING, True, True),  # the old replicas still go
        (CargoPhase.PENDING, False, False),  # waiting (also after preemption or lost GPUs)
        (CargoPhase.PLACED, True, False),
        (CargoPhase.PREEMPTED, True, False),
    ],
)
def test_a_restart_is_pending_with_its_placement_kept(
    phase: CargoPhase, placed: bool, restarting: bool
) -> None:
    assert is_restarting(phase, placed) is restarting


def test_started_at_is_the_first_start_kept_across_restarts() -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    assert first_start(None, first) == first
    assert first_start(first, first + timedelta(hours=2)) == first
