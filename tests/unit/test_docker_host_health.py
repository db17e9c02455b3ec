"""One failing Docker host never stops the reconciler: it is marked NotReady with the reason,
the pass goes on, and a drained host without GPUs is forgotten (it no longer stays Draining)."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from crane.api.db import make_engine, migrate
from crane.docker.hosts import HostSpec
from crane.docker.reconciler import Reconciler
from crane.docker.store import HostRow

NOWHERE = "tcp://127.0.0.1:9"
"""Nothing listens there: the ping fails at once."""


def _row(name: str, **spec: object) -> HostRow:
    return HostRow(name=name, spec=HostSpec(name=name, url=NOWHERE, **spec).model_dump_json())


def test_a_host_the_engine_refuses_is_not_ready_and_the_pass_goes_on(tmp_path: Path) -> None:
    db = make_engine(f"sqlite:///{tmp_path / 'crane.db'}")
    migrate(db)
    with Session(db) as s:
        s.add(_row("cpu0"))  # no GPUs: stored by earlier versions of POST /v1/hosts
        s.add(_row("odd", gpu_product="H100", gpu_count=8, islands="0-99"))
        s.add(_row("h1", gpu_product="H100", gpu_count=8))
        s.commit()
    reconciler = Reconciler(db)
    reconciler.reconcile_once()
    assert "islands" in reconciler.host_errors["odd"]
    assert set(reconciler.engine.node_names()) >= {"cpu0", "odd", "h1"}
    with Session(db) as s:
        row = s.get(HostRow, "cpu0")
        assert row is not None
        row.draining = True
        s.add(row)
        s.commit()
    reconciler.reconcile_once()
    with Session(db) as s:
        assert s.get(HostRow, "cpu0") is None, "a drained host without cargos is forgotten"
        assert s.get(HostRow, "h1") is not None
