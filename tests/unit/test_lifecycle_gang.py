"""What a gang's replicas say about the cargo, judged once for both backends
(crane/lifecycle/gang.py)."""

from __future__ import annotations

from crane.lifecycle.gang import ReplicaSeen, ReplicaState, judge
from crane.model.specs import CargoPhase

RUN = ReplicaSeen(ReplicaState.RUNNING)
WAIT = ReplicaSeen(ReplicaState.WAITING)
DONE = ReplicaSeen(ReplicaState.SUCCEEDED)
GONE = "its pod was deleted"


def test_a_replica_taken_from_a_running_gang_comes_before_any_that_failed() -> None:
    seen = {0: RUN, 2: ReplicaSeen(ReplicaState.FAILED, 3)}
    gang = judge(CargoPhase.RUNNING, [0, 1, 2], seen, 3, GONE)
    assert gang.failure is not None
    assert (gang.failure.replica, gang.failure.what, gang.failure.exit_code) == (
        1,
        f"replica 1 failed: {GONE}",
        None,
    )
    assert not gang.succeeded


def test_the_lowest_failed_replica_is_the_one_told_with_its_code_or_how() -> None:
    seen = {
        0: RUN,
        2: ReplicaSeen(ReplicaState.FAILED, 3),
        1: ReplicaSeen(ReplicaState.FAILED, None, "cut off from its network"),
    }
    gang = judge(CargoPhase.RUNNING, [0, 1, 2], seen, 3, GONE)
    assert gang.failure is not None
    assert (gang.failure.replica, gang.failure.what) == (
        1,
        "replica 1 failed: cut off from its network",
    )
    coded = judge(CargoPhase.PLACED, [], {0: ReplicaSeen(ReplicaState.FAILED, 137)}, 2, GONE)
    assert coded.failure is not None
    assert (coded.failure.what, coded.failure.exit_code) == ("replica 0 exited with code 137", 137)


def test_a_gang_not_running_yet_waits_for_replicas_not_made_instead_of_failing() -> None:
    gang = judge(CargoPhase.PLACED, [0, 1], {0: RUN}, 2, GONE)
    assert (gang.failure, gang.succeeded, gang.running) == (None, False, 1)


def test_the_gang_succeeded_only_once_every_placed_replica_exited_zero() -> None:
    assert judge(CargoPhase.RUNNING, [0, 1], {0: DONE, 1: DONE}, 2, GONE).succeeded
    half = judge(CargoPhase.RUNNING, [0, 1], {0: DONE, 1: RUN}, 2, GONE)
    assert (half.succeeded, half.running) == (False, 1)
    assert not judge(CargoPhase.PLACED, [], {}, 0, GONE).succeeded
    waiting = judge(CargoPhase.PLACED, [], {0: WAIT, 1: RUN}, 2, GONE)
    assert (waiting.failure, waiting.running) == (None, 1)
