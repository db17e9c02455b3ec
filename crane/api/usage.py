"""Usage intervals: opened when a cargo is placed, closed when it ends; GPU-seconds from them.

Events keep the intervals current while the server runs; a :class:`Snapshot` of what the backend
holds (on start, and whenever a backend must list again) reconciles them with what changed
while nobody watched.

An interval whose times were edited by hand into text that is no time counts for nothing, and
is left as it is (logged): the cargo it was of gets a readable one, and every other cargo's
usage, and the event stream that records it, go on.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, or_
from sqlmodel import Session, col, select

from crane.api.db import UsageIntervalRow, aware
from crane.api.schemas import Event, EventType, UsageRow

ENDS = frozenset({EventType.SUCCEEDED, EventType.FAILED, EventType.PREEMPTED, EventType.DELETED})
log = logging.getLogger(__name__)


def _readable(rows: Iterable[UsageIntervalRow]) -> list[UsageIntervalRow]:
    """``rows`` without those whose times cannot be read (logged once per call)."""
    rows = list(rows)
    if left := [row.id for row in rows if row.unreadable]:
        log.warning("usage intervals left out, a stored time not a time: ids %s", left)
    return [row for row in rows if not row.unreadable]


def record(engine: Engine, event: Event) -> None:
    """Open an interval on Placed (once per cargo), close the open one when the cargo ends."""
    if event.cargo is None or (event.type is not EventType.PLACED and event.type not in ENDS):
        return
    with Session(engine) as session:
        open_rows = _readable(
            session.exec(
                select(UsageIntervalRow).where(
                    UsageIntervalRow.tenant == event.tenant,
                    UsageIntervalRow.cargo == event.cargo,
                    col(UsageIntervalRow.end).is_(None),
                )
            )
        )
        open_row = open_rows[0] if open_rows else None
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
            open_row.state = event.type.value
            open_row.exit_code = event.exit_code
            session.add(open_row)
        session.commit()


@dataclass(frozen=True)
class Holding:
    """A placed cargo as the backend lists it: live (``finished_at`` None) or ended."""

    tenant: str
    minicluster: str
    cargo: str
    gpus: int
    placed_at: datetime
    finished_at: datetime | None = None
    state: str | None = None
    """An ended cargo's phase (Succeeded, Failed)."""
    exit_code: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """Every placed or finished cargo the backend lists at ``time``; the rest hold nothing."""

    holdings: list[Holding]
    time: datetime


def reconcile(engine: Engine, snapshot: Snapshot) -> None:
    """Make the intervals agree with ``snapshot``.

    An open interval of a cargo that is gone (or back to pending) closes at the snapshot's time,
    of a finished one at its finish time, of one placed again since at the new placement. A
    holding no interval covers gets one from its placement (closed at its finish, if ended).
    """
    held = {(h.tenant, h.cargo): h for h in snapshot.holdings}
    with Session(engine) as session:
        for row in _readable(
            session.exec(select(UsageIntervalRow).where(col(UsageIntervalRow.end).is_(None)))
        ):
            start = aware(row.start)
            holding = held.get((row.tenant, row.cargo))
            if holding is None:
                row.end = max(start, snapshot.time)
            elif holding.finished_at is not None:
                row.end = max(start, holding.finished_at)
                row.state, row.exit_code = holding.state, holding.exit_code
            elif holding.placed_at > start:
                row.end = holding.placed_at
            else:
                continue
            session.add(row)
        session.flush()
        for holding in snapshot.holdings:
            if holding.gpus > 0 and not _covered(session, holding):
                session.add(
                    UsageIntervalRow(
                        tenant=holding.tenant,
                        minicluster=holding.minicluster,
                        cargo=holding.cargo,
                        gpus=holding.gpus,
                        start=holding.placed_at,
                        end=holding.finished_at,
                        state=holding.state,
                        exit_code=holding.exit_code,
                    )
                )
        session.commit()


def _covered(session: Session, holding: Holding) -> bool:
    """Whether an interval of the cargo overlaps its placement ``[placed_at, finished_at)``."""
    rows = session.exec(
        select(UsageIntervalRow).where(
            UsageIntervalRow.tenant == holding.tenant, UsageIntervalRow.cargo == holding.cargo
        )
    )
    for row in _readable(rows):
        ends_after = row.end is None or aware(row.end) > holding.placed_at
        starts_before = holding.finished_at is None or aware(row.start) < holding.finished_at
        if ends_after and starts_before:
            return True
    return False


def _per_cargo(
    engine: Engine, since: datetime, until: datetime, tenant: str | None, minicluster: str | None
) -> list[UsageRow]:
    """One row per cargo: GPU-seconds in the window, first start and last end (None: open)."""
    now = datetime.now(UTC)
    query = select(UsageIntervalRow).where(
        UsageIntervalRow.start < until,
        or_(col(UsageIntervalRow.end).is_(None), col(UsageIntervalRow.end) > since),
    )
    if tenant is not None:
        query = query.where(UsageIntervalRow.tenant == tenant)
    if minicluster is not None:
        query = query.where(UsageIntervalRow.minicluster == minicluster)
    rows: dict[tuple[str, str, str], UsageRow] = {}
    with Session(engine) as session:
        for row in _readable(session.exec(query.order_by(col(UsageIntervalRow.start)))):
            start = max(aware(row.start), since)
            end = min(aware(row.end) if row.end else now, until)
            key = (row.tenant, row.minicluster, row.cargo)
            got = rows.setdefault(
                key,
                UsageRow(
                    tenant=row.tenant,
                    mini_cluster=row.minicluster,
                    gpu_seconds=0.0,
                    cargos=1,
                    cargo=row.cargo,
                    started_at=aware(row.start),
                    ended_at=aware(row.end) if row.end else None,
                ),
            )
            if end > start:
                got.gpu_seconds = round(
                    got.gpu_seconds + row.gpus * (end - start).total_seconds(), 3
                )
            if got.started_at is None or aware(row.start) < got.started_at:
                got.started_at = aware(row.start)
            if row.end is None:
                got.ended_at = None
            elif got.ended_at is not None and aware(row.end) > got.ended_at:
                got.ended_at = aware(row.end)
            # the latest interval says where the cargo stands (rows come oldest first)
            got.state = "Running" if row.end is None else row.state
            got.exit_code = None if row.end is None else row.exit_code
    return [rows[k] for k in sorted(rows)]


def report(
    engine: Engine,
    since: datetime,
    until: datetime,
    tenant: str | None = None,
    minicluster: str | None = None,
    by_cargo: bool = False,
) -> list[UsageRow]:
    """GPU-seconds per tenant and MiniCluster (or per cargo, like ``sacct``, with ``by_cargo``)
    of the intervals overlapping [since, until)."""
    if by_cargo:
        return _per_cargo(engine, since, until, tenant, minicluster)
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
        for row in _readable(session.exec(query)):
            start = max(aware(row.start), since)
            end = min(aware(row.end) if row.end else now, until)
            if end > start:
                key = (row.tenant, row.minicluster)
                seconds[key] += row.gpus * (end - start).total_seconds()
                cargos[key].add(row.cargo)
    return [
        UsageRow(tenant=t, mini_cluster=m, gpu_seconds=round(s, 3), cargos=len(cargos[(t, m)]))
        for (t, m), s in sorted(seconds.items())
    ]
