"""One Docker mode row that cannot be read (edited in the database by hand) stops nobody.

Before, the pass parsed every row in one transaction: one cargo or MiniCluster whose stored
spec, phase, placement or conditions did not parse failed every pass, so no other tenant's
MiniCluster was admitted or grew its cargos, and the loop logged a traceback each pass. Now the
row is left as it is, says why (``Reconciled`` False, ``InvalidSpec``), is logged once, and the
others go on; once fixed, it is handled again."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine as Database
from sqlmodel import Session

from crane.api.db import make_engine, migrate
from crane.docker import store
from crane.docker.reconciler import Reconciler
from crane.docker.store import CargoRow, MiniClusterRow
from crane.model.specs import CargoSpec, MiniClusterSpec

TEMPLATE = {"spec": {"containers": [{"name": "m", "image": "i"}]}}


def _database(tmp_path: Path) -> Database:
    db = make_engine(f"sqlite:///{tmp_path / 'crane.db'}")
    migrate(db)
    return db


def _mc(tenant: str, name: str, replicas: int | None = None) -> MiniClusterRow:
    body: dict[str, object] = {"gpuType": "H100", "gpus": {"min": 0, "max": 4}}
    if replicas is not None:
        body |= {"replicas": replicas, "template": {"template": TEMPLATE}}
    spec = MiniClusterSpec.model_validate(body)
    return MiniClusterRow(tenant=tenant, name=name, spec=spec.model_dump_json(by_alias=True))


def _cargo(tenant: str, name: str, mc: str) -> CargoRow:
    spec = CargoSpec.model_validate({"miniCluster": mc, "template": TEMPLATE})
    return CargoRow(
        tenant=tenant, name=name, minicluster=mc, spec=spec.model_dump_json(by_alias=True)
    )


def _healthy_tenant_grew(db: Database) -> bool:
    with Session(db) as s:
        names = {c.name for c in store.cargos(s, "healthy", "web")}
    return names == {"web-0", "web-1"}


def _reconciled(row: CargoRow | MiniClusterRow) -> tuple[str, str] | None:
    for cond in store.stored_conditions(row.conditions):
        if cond.type == "Reconciled":
            return cond.status.value, cond.reason
    return None


CORRUPTIONS = {
    "spec": '{"miniCluster": "team", "template": ',
    "phase": "Bogus",
    "placement": "not json",
}


@pytest.mark.parametrize("column", sorted(CORRUPTIONS))
def test_a_cargo_row_edited_by_hand_stops_no_other_tenant(
    tmp_path: Path, column: str, caplog: pytest.LogCaptureFixture
) -> None:
    db = _database(tmp_path)
    with Session(db) as s:
        s.add(_mc("broken", "team"))
        bad = _cargo("broken", "job", "team")
        setattr(bad, column, CORRUPTIONS[column])
        s.add(bad)
        s.add(_mc("healthy", "web", replicas=2))
        s.commit()
    reconciler = Reconciler(db)
    with caplog.at_level(logging.WARNING, logger="crane.docker"):
        for _ in range(3):
            reconciler.reconcile_once()
    assert _healthy_tenant_grew(db), "another tenant's MiniCluster did not grow its cargos"
    with Session(db) as s:
        row = store.cargo(s, "broken", "job")
        assert row is not None and not row.deleting
        assert row.message.startswith("InvalidSpec: its stored row cannot be read"), row.message
        assert getattr(row, column) == CORRUPTIONS[column]
        assert _reconciled(row) == ("False", "InvalidSpec")
    said = [r.getMessage() for r in caplog.records if "broken/job" in r.getMessage()]
    assert len(said) == 1, f"the broken row is logged once, not each pass: {said}"


def test_a_minicluster_row_edited_by_hand_keeps_its_cargos_and_stops_no_other(
    tmp_path: Path,
) -> None:
    db = _database(tmp_path)
    with Session(db) as s:
        bad = _mc("broken", "team")
        bad.spec = "{}"
        s.add(bad)
        s.add(_cargo("broken", "job", "team"))
        s.add(_mc("healthy", "web", replicas=2))
        s.commit()
    reconciler = Reconciler(db)
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    assert _healthy_tenant_grew(db)
    with Session(db) as s:
        mc = store.minicluster(s, "broken", "team")
        assert mc is not None and mc.message.startswith("InvalidSpec"), mc and mc.message
        assert _reconciled(mc) == ("False", "InvalidSpec")
        cargo = store.cargo(s, "broken", "job")
        assert cargo is not None and not cargo.deleting, (
            "a MiniCluster it cannot read is no gone one"
        )


def test_a_row_fixed_by_hand_is_handled_again(tmp_path: Path) -> None:
    db = _database(tmp_path)
    with Session(db) as s:
        s.add(_mc("broken", "team", replicas=1))
        good = _cargo("broken", "job", "team")
        spec = good.spec
        good.spec = "[]"
        s.add(good)
        s.commit()
    reconciler = Reconciler(db)
    reconciler.reconcile_once()
    with Session(db) as s:
        row = store.cargo(s, "broken", "job")
        assert row is not None
        row.spec = spec
        s.add(row)
        s.commit()
    reconciler.reconcile_once()
    with Session(db) as s:
        row = store.cargo(s, "broken", "job")
        assert row is not None
        assert _reconciled(row) == ("True", "Reconciled")
        assert not row.message.startswith("InvalidSpec"), row.message
        assert {c.name for c in store.cargos(s, "broken", "team")} == {"job", "team-0"}


def test_conditions_edited_by_hand_are_written_again(tmp_path: Path) -> None:
    """Conditions are the pass's to write: ones that do not parse are replaced."""
    db = _database(tmp_path)
    with Session(db) as s:
        s.add(_mc("broken", "team"))
        bad = _cargo("broken", "job", "team")
        bad.conditions = "[{"
        s.add(bad)
        s.add(_mc("healthy", "web", replicas=2))
        s.commit()
    reconciler = Reconciler(db)
    reconciler.reconcile_once()
    reconciler.reconcile_once()
    assert _healthy_tenant_grew(db)
    with Session(db) as s:
        row = store.cargo(s, "broken", "job")
        assert row is not None
        assert _reconciled(row) == ("True", "Reconciled")
        assert "is not admitted" in row.message, row.message


def test_a_pass_that_fails_the_same_way_is_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault no object's step owns (here the hosts' table gone from the database, which
    fails every pass's query of hosts) is one traceback, not one every pass."""
    db = _database(tmp_path)
    with Session(db) as s:
        s.add(_mc("broken", "team"))
        s.commit()
    with db.begin() as conn:
        conn.execute(sa.text("DROP TABLE docker_hosts"))
    reconciler = Reconciler(db, interval=0.01)
    passes = threading.Semaphore(0)
    once = reconciler.reconcile_once

    def counted(wait: float = 0.0) -> None:
        passes.release()
        once(wait)

    reconciler.reconcile_once = counted  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="crane.docker"):
        reconciler.start()
        try:
            for _ in range(5):
                assert passes.acquire(timeout=30), "the loop stopped"
        finally:
            reconciler.stop()
    failed = [r for r in caplog.records if "reconcile pass failed" in r.getMessage()]
    assert len(failed) == 1, f"{len(failed)} tracebacks for one fault"
