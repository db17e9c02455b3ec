"""GPU-seconds from recorded allocation intervals, on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crane.api import usage
from crane.api.db import make_engine, migrate
from crane.api.schemas import Event, EventType

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(kind: EventType, cargo: str, minutes: int, gpus: int = 8, mc: str = "study") -> Event:
    return Event(
        type=kind,
        tenant="team-a",
        mini_cluster=mc,
        cargo=cargo,
        gpus=gpus,
        time=T0 + timedelta(minutes=minutes),
    )


def test_gpu_seconds_per_minicluster_within_window(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate(engine)
    for event in (
        _event(EventType.PLACED, "study-0", 0),
        _event(EventType.PLACED, "study-0", 5),  # repeated notice: no second interval
        _event(EventType.SUCCEEDED, "study-0", 10),
        _event(EventType.PLACED, "study-1", 5, gpus=4),
        _event(EventType.PREEMPTED, "study-1", 15, gpus=4),
        _event(EventType.PLACED, "other-0", 0, gpus=2, mc="other"),
        _event(EventType.DELETED, "other-0", 60, gpus=2, mc="other"),
    ):
        usage.record(engine, event)
    rows = usage.report(engine, T0, T0 + timedelta(minutes=30), tenant="team-a")
    engine.dispose()
    by_mc = {r.mini_cluster: r for r in rows}
    assert by_mc["study"].gpu_seconds == 8 * 600 + 4 * 600
    assert by_mc["study"].cargos == 2
    assert by_mc["other"].gpu_seconds == 2 * 1800
