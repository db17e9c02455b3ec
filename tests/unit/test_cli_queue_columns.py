"""Issue 14: `crane mc list` / `crane mc get` say whom a MiniCluster waits behind, when it
should start, and that one which can never fit is Unschedulable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crane.cli import columns
from crane.client import MiniCluster
from crane.model.conditions import Condition, ConditionStatus
from crane.model.specs import MiniClusterSpec, MiniClusterStatus


def cells(mc: MiniCluster) -> dict[str, object]:
    return {c.header: c.get(mc) for c in columns.MINICLUSTER}


def make(status: MiniClusterStatus) -> MiniCluster:
    spec = MiniClusterSpec.model_validate({"gpuType": "H100,A100", "gpus": {"min": 8, "max": 8}})
    return MiniCluster(
        name="wait", tenant="t", uid="u", spec=spec, status=status, created_at=datetime.now(UTC)
    )


def test_queued_row_names_whom_it_waits_behind_and_when_it_starts() -> None:
    status = MiniClusterStatus(
        queue_position=2,
        waits_behind=["t/head"],
        estimated_start=datetime.now(UTC) + timedelta(minutes=10, seconds=30),
    )
    row = cells(make(status))
    assert row["status"] == "Queued #2"
    assert row["behind"] == "t/head"
    assert row["start"] == "in 10m"
    assert row["gpu"] == "H100,A100"


def test_unknown_estimate_and_unschedulable() -> None:
    admitted = Condition(
        type="Admitted",
        status=ConditionStatus.FALSE,
        reason="Unschedulable",
        message="the largest rack has 16 H100 GPUs in all",
    )
    row = cells(make(MiniClusterStatus(conditions=[admitted])))
    assert row["status"] == "Unschedulable"
    assert row["behind"] == "-" and row["start"] == "-"
