from datetime import UTC, datetime

from crane.model.conditions import Condition, ConditionStatus, find_condition, set_condition

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 1, 2, tzinfo=UTC)


def cond(type_: str, status: ConditionStatus, reason: str, at: datetime) -> Condition:
    return Condition(type=type_, status=status, reason=reason, last_transition_time=at)


def test_set_condition_keeps_transition_time_when_status_unchanged() -> None:
    old = [cond("Admitted", ConditionStatus.TRUE, "Reserved", T0)]
    out = set_condition(old, cond("Admitted", ConditionStatus.TRUE, "Resized", T1))
    assert len(out) == 1
    assert out[0].reason == "Resized"
    assert out[0].last_transition_time == T0


def test_set_condition_moves_transition_time_when_status_changes() -> None:
    old = [cond("Admitted", ConditionStatus.TRUE, "Reserved", T0)]
    out = set_condition(old, cond("Admitted", ConditionStatus.FALSE, "Queued", T1))
    assert (out[0].status, out[0].last_transition_time) == (ConditionStatus.FALSE, T1)


def test_set_condition_appends_new_types_and_keeps_others_in_place() -> None:
    old = [
        cond("Admitted", ConditionStatus.TRUE, "Reserved", T0),
        cond("Ready", ConditionStatus.FALSE, "Starting", T0),
    ]
    out = set_condition(old, cond("Ready", ConditionStatus.TRUE, "Running", T1))
    out = set_condition(out, cond("Resizing", ConditionStatus.TRUE, "Growing", T1))
    assert [c.type for c in out] == ["Admitted", "Ready", "Resizing"]
    assert out[0] is old[0]
    assert old[1].status is ConditionStatus.FALSE


def test_find_condition() -> None:
    conds = [cond("Ready", ConditionStatus.UNKNOWN, "Pending", T0)]
    found = find_condition(conds, "Ready")
    assert found is not None and found.status is ConditionStatus.UNKNOWN
    assert find_condition(conds, "Failed") is None


def test_condition_wire_form() -> None:
    c = Condition.model_validate(
        {
            "type": "Ready",
            "status": "True",
            "reason": "Running",
            "observedGeneration": 3,
            "lastTransitionTime": "2025-01-01T00:00:00Z",
        }
    )
    assert c.observed_generation == 3
    assert c.last_transition_time == T0
    wire = c.model_dump(by_alias=True, mode="json")
    assert wire["lastTransitionTime"] == "2025-01-01T00:00:00Z"
    assert wire["status"] == "True"
