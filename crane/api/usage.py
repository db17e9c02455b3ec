"""Usage intervals: opened when a cargo is placed, closed when it ends; GPU-seconds from them."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from crane.api.db import UsageIntervalRow
from crane.api.schemas import Event, EventType, UsageRow

ENDS = frozenset({EventType.SUCCEEDED, EventType.FAILED, EventType.PREEMPTED, EventType.DELETED})


def record(engine: Engine, event: Event) -> None:
    """Open an interval on Placed (once per cargo), close the open one when the cargo ends."""
    if event.cargo is None or (event.type is not EventType.PLACED and event.type not in ENDS):
        return
    with Session(engine) as session:
        open_row = session.exec(
            select(UsageIntervalRow).where(
                UsageIntervalRow.tenant == event.tenant,
                UsageIntervalRow.cargo == event.cargo,
                col(UsageIntervalRow.end).is_(None),
            )
        ).first()
        if event.type is EventType.PLACED:
            if open_row is None and event.gpus > 0:
                session.add(
                    UsageIntervalRow(
                        tenant=event.tenant,
                        minicluster=event.mini_cluster,
                        cargo=event.cargo,
                        gpus=event.gpus,
                        start=event.time,
                    )
                )
        elif open_row is not None:
            open_row.end = event.time
            session.add(open_row)
        session.commit()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def report(
    engine: Engine,
    since: datetime,
    until: datetime,
    tenant: str | None = None,
    minicluster: str | None = None,
) -> list[UsageRow]:
    """GPU-seconds per tenant and MiniCluster of the intervals overlapping [since, until)."""
    now = datetime.now(UTC)
    query = select(UsageIntervalRow).where(
        UsageIntervalRow.start < until,
        or_(col(UsageIntervalRow.end).is_(None), col(UsageIntervalRow.end) > since),
    )
    if tenant is not None:
        query = query.where(UsageIntervalRow.tenant == tenant)
    if minicluster is not None:
        query = query.where(UsageIntervalRow.minicluster == minicluster)
    seconds: dict[tuple[str, str], float] = defaultdict(float)
    cargos: dict[tuple[str, str], set[str]] = defaultdict(set)
    with Session(engine) as session:
        for row in session.exec(query):
            start = max(_aware(row.start), since)
            end = min(_aware(row.end) if row.end else now, until)
            if end > start:
                key = (row.tenant, row.minicluster)
                seconds[key] += row.gpus * (end - start).total_seconds()
                cargos[key].add(row.cargo)
    return [
        UsageRow(tenant=t, mini_cluster=m, gpu_seconds=round(s, 3), cargos=len(cargos[(t, m)]))
        for (t, m), s in sorted(seconds.items())
    ]
