"""``crane serve`` on an empty database: Alembic makes the schema; the admin token shows once."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from crane.api.db import MIGRATIONS
from tests.api.conftest import start_server, stop_server

HEAD = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def test_first_start_migrates_and_prints_admin_token_once(
    database_url: str, tmp_path: Path
) -> None:
    first = start_server(database_url, tmp_path / "first.log")
    stop_server(first)
    printed = re.findall(r"admin token \(shown once, keep it\): (crane_\S+)", first.log.read_text())
    assert len(printed) == 1
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == HEAD
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert {"tenants", "tokens", "audit_log", "usage_intervals", "idempotency_keys"} <= tables

    second = start_server(database_url, tmp_path / "second.log")
    try:
        assert "admin token" not in second.log.read_text()
        with second.client(token=printed[0]) as admin:
            assert admin.get("/v1/whoami").json()["scope"] == "admin"
            tenants = admin.get("/v1/tenants").json()
    finally:
        stop_server(second)
    assert [t["name"] for t in tenants["items"]] == ["default"]
