"""How a cargo's attempt ends, decided once for both backends (crane/lifecycle/cargo_end.py)."""

from __future__ import annotations

from crane.lifecycle import cargo_end
from crane.model.specs import CargoPhase, CargoSpec, RestartPolicy

WHAT = "replica 1 exited with code 3"


def _spec(policy: RestartPolicy, limit: int = 1) -> CargoSpec:
    return CargoSpec(
        mini_cluster="mc", gpus_per_replica=1, restart_policy=policy, backoff_limit=limit
    )


def _conditions(end: cargo_end.CargoEnd) -> dict[str, tuple[bool, str, str]]:
    return {t: (v.ok, v.reason, v.message) for t, v in end.conditions}


def test_a_failure_under_on_failure_restarts_the_gang_reading_restarting() -> None:
    end = cargo_end.failure(_spec(RestartPolicy.ON_FAILURE), 0, "ReplicaFailed", WHAT, 3)
    said = f"{WHAT}; restarting the gang (restart 1 of 1)"
    assert (end.restart, end.phase, end.restarts, end.message) == (
        True,
        CargoPhase.PENDING,
        1,
        said,
    )
    assert _conditions(end) == {
        "Placed": (False, "Restarting", said),
        "Ready": (False, "ReplicaFailed", WHAT),
    }
    assert (end.event, end.event_message, end.warning) == ("Restarting", said, True)
    assert end.exit_code is None  # a restarting gang has not ended


def test_the_failure_past_the_backoff_limit_fails_for_that_reason_keeping_the_exit_code() -> None:
    end = cargo_end.failure(_spec(RestartPolicy.ON_FAILURE), 1, "NodeLost", WHAT, None)
    said = f"{WHAT}; backoffLimit 1 reached"
    assert (end.restart, end.phase, end.restarts, end.message) == (
        False,
        CargoPhase.FAILED,
        1,
        said,
    )
    assert _conditions(end) == {
        "Failed": (True, "BackoffLimitExceeded", said),
        "Ready": (False, "NodeLost", WHAT),
    }
    assert (end.event, end.warning) == ("Failed", True)
    never = cargo_end.failure(_spec(RestartPolicy.NEVER), 0, "ReplicaFailed", WHAT, 3)
    assert (never.phase, never.restarts, never.message, never.exit_code) == (
        CargoPhase.FAILED,
        0,
        WHAT,
        3,
    )
    assert _conditions(never)["Failed"] == (True, "ReplicaFailed", WHAT)


def test_a_failure_told_in_other_words_changes_only_what_said_the_old_ones() -> None:
    first = "replica 0 exited with code 3"
    limit = cargo_end.failure(_spec(RestartPolicy.ON_FAILURE, 0), 0, "ReplicaFailed", WHAT, 143)
    kept = limit.saying(f"{first}; backoffLimit 0 reached")
    assert kept.message == kept.event_message == f"{first}; backoffLimit 0 reached"
    assert _conditions(kept)["Failed"] == (True, "BackoffLimitExceeded", kept.message)
    assert _conditions(kept)["Ready"] == (False, "ReplicaFailed", WHAT)  # what this pass saw
    never = cargo_end.failure(_spec(RestartPolicy.NEVER), 0, "ReplicaFailed", WHAT, 143)
    assert set(_conditions(never.saying(first)).values()) == {
        (True, "ReplicaFailed", first),
        (False, "ReplicaFailed", first),
    }


def test_a_refusal_fails_whatever_the_policy_and_says_its_reason() -> None:
    end = cargo_end.refusal(2, "PodSecurity", "violates restricted")
    assert (end.phase, end.restarts, end.message, end.exit_code) == (
        CargoPhase.FAILED,
        2,
        "violates restricted",
        None,
    )
    assert _conditions(end) == {
        "Failed": (True, "PodSecurity", "violates restricted"),
        "Ready": (False, "PodSecurity", "violates restricted"),
    }
    assert (end.event, end.warning, end.restart) == ("PodSecurity", True, False)


def test_success_clears_the_message_and_ends_with_exit_code_zero() -> None:
    end = cargo_end.success(1, 4)
    assert (end.phase, end.restarts, end.message, end.exit_code) == (
        CargoPhase.SUCCEEDED,
        1,
        "",
        0,
    )
    assert _conditions(end)["Succeeded"] == (True, "AllReplicasSucceeded", "4 replicas succeeded")
    assert end.ready.ok is False
    assert (end.event, end.event_message, end.warning) == (
        "Succeeded",
        "all 4 replicas succeeded",
        False,
    )
