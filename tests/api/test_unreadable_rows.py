"""A Docker-mode row edited in the database by hand so that it cannot be read stops no one in the
API: every tenant's lists, the MiniCluster it belongs to and the event stream (whose usage
snapshot reads every placed cargo) go on without it, and asking for it is one 409 saying what
to do. Before, the list of its tenant and the MiniCluster it belonged to answered 500, and the
server's event stream broke at start for every tenant, again each time it resumed."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from fastapi.testclient import TestClient

from crane.api.app import create_app
from crane.api.settings import ApiSettings, BackendKind

ADMIN = "crane_unreadable_" + "s" * 43
TEMPLATE = {"spec": {"containers": [{"name": "m", "image": "busybox"}]}}


def _client(db: Path) -> TestClient:
    settings = ApiSettings(
        database_url=f"sqlite:///{db}", backend=BackendKind.DOCKER, bootstrap_token=ADMIN
    )
    client = TestClient(create_app(settings))
    client.headers["Authorization"] = f"Bearer {ADMIN}"
    return client


def _made(client: TestClient, tenant: str, mc: str, cargos: list[str]) -> None:
    spec = {"gpuType": "H100", "gpus": {"min": 0, "max": 8}}
    got = client.post(
        "/v1/miniclusters", params={"tenant": tenant}, json={"name": mc, "spec": spec}
    )
    assert got.status_code == 201, got.text
    for name in cargos:
        body = {
            "name": name,
            "spec": {"miniCluster": mc, "gpusPerReplica": 1, "template": TEMPLATE},
        }
        got = client.post("/v1/cargos", params={"tenant": tenant}, json=body)
        assert got.status_code == 201, got.text


def test_a_row_that_cannot_be_read_stops_no_list_no_minicluster_and_no_event_stream(
    tmp_path: Path,
) -> None:
    db = tmp_path / "crane.db"
    with _client(db) as client:
        for tenant in ("t", "u"):
            assert client.post("/v1/tenants", json={"name": tenant}).status_code == 201
        _made(client, "t", "team", ["bad", "good"])
        _made(client, "u", "other", ["theirs"])
    with sqlite3.connect(db) as conn:  # placed once, then edited by hand
        conn.execute(
            "update docker_cargos set spec='{\"miniCluster\": ', placed_at=created_at, "
            "phase='Running' where name='bad'"
        )
        conn.execute(
            "update docker_cargos set placed_at=created_at, phase='Running' where name='theirs'"
        )
    with _client(db) as client:
        listed = client.get("/v1/cargos", params={"tenant": "t"})
        assert listed.status_code == 200, listed.text
        assert [c["name"] for c in listed.json()["items"]] == ["good"]
        team = client.get("/v1/miniclusters/team", params={"tenant": "t"})
        assert team.status_code == 200, team.text
        assert client.get("/v1/miniclusters", params={"tenant": "t"}).status_code == 200
        bad = client.get("/v1/cargos/bad", params={"tenant": "t"})
        assert bad.status_code == 409, bad.text
        assert bad.headers["content-type"].startswith("application/problem+json")
        detail = bad.json()["detail"]
        assert "cargo 'bad' in tenant 't' cannot be read from the database" in detail, detail
        assert "an admin must fix or remove its row" in detail, detail
        theirs = client.get("/v1/cargos", params={"tenant": "u"})
        assert [c["name"] for c in theirs.json()["items"]] == ["theirs"], theirs.text
        # the event stream started: its usage snapshot counted the other tenant's cargo
        deadline = time.monotonic() + 30
        counted: list[str] = []
        while time.monotonic() < deadline and not counted:
            got = client.get("/v1/usage", params={"tenant": "u", "byCargo": "true"})
            assert got.status_code == 200, got.text
            counted = [row.get("cargo") for row in got.json()["items"]]
            time.sleep(0.1)
        assert counted == ["theirs"], counted


def _rows(db: Path, table: str, name: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute(f"select count(*) from {table} where name=?", (name,)).fetchone()[0]
        )


def _gone(db: Path, table: str, name: str) -> None:
    deadline = time.monotonic() + 30
    while _rows(db, table, name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _rows(db, table, name) == 0, f"{table} {name} still stored"


def test_an_unreadable_row_can_be_deleted_through_the_api_and_still_not_read(
    tmp_path: Path,
) -> None:
    """An admin, or a token of the row's own tenant (not a MiniCluster token), deletes such a
    cargo or MiniCluster as any other: the row goes (a MiniCluster's after its cargos), reads
    still answer 409 until then and 404 after. Before, DELETE answered the same 409 as a read,
    so no one could remove the row through the API."""
    db = tmp_path / "crane.db"
    with _client(db) as client:
        assert client.post("/v1/tenants", json={"name": "t"}).status_code == 201
        _made(client, "t", "team", ["bad", "good"])
        _made(client, "t", "broken", ["inside", "torn"])
        made = client.post("/v1/tokens", json={"scope": "tenant", "tenant": "t"})
        assert made.status_code == 201, made.text
        tenant_token = made.json()["token"]
        made = client.post(
            "/v1/tokens", json={"scope": "minicluster", "tenant": "t", "miniCluster": "team"}
        )
        assert made.status_code == 201, made.text
        mc_token = made.json()["token"]
    with sqlite3.connect(db) as conn:  # edited by hand
        conn.execute(
            "update docker_cargos set spec='{\"miniCluster\": ' where name in ('bad', 'torn')"
        )
        conn.execute("update docker_miniclusters set spec='[' where name='broken'")
    with _client(db) as client:
        for path in ("/v1/cargos/bad", "/v1/miniclusters/broken"):
            read = client.get(path, params={"tenant": "t"})
            assert read.status_code == 409, read.text
            assert "an admin must fix or remove its row" in read.json()["detail"]
        # a MiniCluster token: the MiniCluster the cargo belongs to is in what cannot be read
        scoped = {"Authorization": f"Bearer {mc_token}"}
        refused = client.delete("/v1/cargos/bad", params={"tenant": "t"}, headers=scoped)
        assert refused.status_code == 403, refused.text
        assert _rows(db, "docker_cargos", "bad") == 1
        tenant = {"Authorization": f"Bearer {tenant_token}"}
        deleted = client.delete("/v1/cargos/bad", params={"tenant": "t"}, headers=tenant)
        assert deleted.status_code == 204, deleted.text
        assert client.get("/v1/cargos/bad", params={"tenant": "t"}).status_code == 404
        _gone(db, "docker_cargos", "bad")
        assert client.get("/v1/cargos/good", params={"tenant": "t"}).status_code == 200

        deleted = client.delete("/v1/miniclusters/broken", params={"tenant": "t"})
        assert deleted.status_code == 204, deleted.text
        assert client.get("/v1/miniclusters/broken", params={"tenant": "t"}).status_code == 404
        for cargo in ("inside", "torn"):
            _gone(db, "docker_cargos", cargo)
        _gone(db, "docker_miniclusters", "broken")
        assert client.delete("/v1/cargos/bad", params={"tenant": "t"}).status_code == 404
        listed = client.get("/v1/miniclusters", params={"tenant": "t"})
        assert [mc["name"] for mc in listed.json()["items"]] == ["team"], listed.text


def test_a_time_that_does_not_parse_is_an_unreadable_row_and_stops_no_pass(
    tmp_path: Path,
) -> None:
    """SQLite keeps any text in a time column. A cargo's and a MiniCluster's ``created_at``
    edited to text read as any unreadable row: 409 for it, the others listed, and the
    reconcile pass goes on for every tenant (a cargo made afterwards is told why it waits),
    and the cargo can be deleted. Before, loading the row failed the query: its tenant's list
    answered 500 and the pass stopped for the whole server."""
    db = tmp_path / "crane.db"
    with _client(db) as client:
        for tenant in ("t", "u"):
            assert client.post("/v1/tenants", json={"name": tenant}).status_code == 201
        _made(client, "t", "team", ["bad", "good"])
        _made(client, "t", "broken", [])
        _made(client, "u", "other", [])
    with sqlite3.connect(db) as conn:  # edited by hand
        conn.execute("update docker_cargos set created_at='yesterday' where name='bad'")
        conn.execute("update docker_miniclusters set created_at='x' where name='broken'")
    with _client(db) as client:
        listed = client.get("/v1/cargos", params={"tenant": "t"})
        assert listed.status_code == 200, listed.text
        assert [c["name"] for c in listed.json()["items"]] == ["good"]
        mcs = client.get("/v1/miniclusters", params={"tenant": "t"})
        assert [m["name"] for m in mcs.json()["items"]] == ["team"], mcs.text
        for path in ("/v1/cargos/bad", "/v1/miniclusters/broken"):
            read = client.get(path, params={"tenant": "t"})
            assert read.status_code == 409, read.text
            assert "created_at is not a time" in read.json()["detail"], read.text
        _made(client, "u", "again", ["later"])
        deadline = time.monotonic() + 30
        said: list[dict[str, str]] = []
        while time.monotonic() < deadline and not said:
            got = client.get("/v1/cargos/later", params={"tenant": "u"})
            assert got.status_code == 200, got.text
            said = got.json()["status"]["conditions"]
            time.sleep(0.1)
        assert [c["reason"] for c in said] == ["MiniClusterNotAdmitted"], said
        deleted = client.delete("/v1/cargos/bad", params={"tenant": "t"})
        assert deleted.status_code == 204, deleted.text
        _gone(db, "docker_cargos", "bad")


def test_a_token_whose_time_does_not_parse_is_refused_and_stops_no_other_token(
    tmp_path: Path,
) -> None:
    """A token's ``expires_at`` (or ``created_at``) edited by hand into text that is no time:
    that token is refused with a 401 that says so (never taken as unexpiring), the token list
    answers without it, every other token works, and an admin can still revoke it by its id.
    Before, that token's calls and the admin's token list answered 500."""
    db = tmp_path / "crane.db"
    minted: dict[str, str] = {}
    with _client(db) as client:
        assert client.post("/v1/tenants", json={"name": "t"}).status_code == 201
        for key in ("edited", "born", "fine"):
            got = client.post("/v1/tokens", json={"scope": "tenant", "tenant": "t"})
            assert got.status_code == 201, got.text
            minted[key] = got.json()["token"]
    ids = {key: text.removeprefix("crane_").partition("_")[0] for key, text in minted.items()}
    with sqlite3.connect(db) as conn:  # edited by hand
        conn.execute("update tokens set expires_at='next week' where id=?", (ids["edited"],))
        conn.execute("update tokens set created_at='long ago' where id=?", (ids["born"],))
    with _client(db) as client:
        for key in ("edited", "born"):
            got = client.get("/v1/whoami", headers={"Authorization": f"Bearer {minted[key]}"})
            assert got.status_code == 401, got.text
            assert "cannot be read" in got.json()["detail"], got.text
        fine = client.get("/v1/whoami", headers={"Authorization": f"Bearer {minted['fine']}"})
        assert fine.status_code == 200, fine.text
        listed = client.get("/v1/tokens")
        assert listed.status_code == 200, listed.text
        assert ids["fine"] in [t["id"] for t in listed.json()["items"]], listed.text
        assert not {ids["edited"], ids["born"]} & {t["id"] for t in listed.json()["items"]}
        assert listed.json()["count"] == len(listed.json()["items"]), listed.text
        theirs = client.get("/v1/tokens", headers={"Authorization": f"Bearer {minted['fine']}"})
        assert theirs.status_code == 200, theirs.text
        assert [t["id"] for t in theirs.json()["items"]] == [ids["fine"]], theirs.text
        revoked = client.delete(f"/v1/tokens/{ids['edited']}")
        assert revoked.status_code == 204, revoked.text
        again = client.get("/v1/whoami", headers={"Authorization": f"Bearer {minted['edited']}"})
        assert again.status_code == 401, again.text
        assert "revoked" in again.json()["detail"], again.text


def test_a_usage_interval_whose_time_does_not_parse_stops_no_event_stream_and_no_report(
    tmp_path: Path,
) -> None:
    """A usage interval's ``start`` or ``end`` edited by hand into text that is no time counts
    for nothing and stops nothing: the event stream's usage snapshot still counts every placed
    cargo (the one whose interval broke gets a readable one), and the usage reports answer.
    Before, the snapshot failed on that row, again each time the stream resumed, so no event
    reached any tenant, and the usage report of its tenant answered 500."""
    db = tmp_path / "crane.db"
    with _client(db) as client:
        for tenant in ("t", "u"):
            assert client.post("/v1/tenants", json={"name": tenant}).status_code == 201
        _made(client, "u", "other", ["theirs"])
    with sqlite3.connect(db) as conn:  # placed once, and usage edited by hand
        conn.execute(
            "update docker_cargos set placed_at=created_at, phase='Running' where name='theirs'"
        )
        conn.execute(
            'insert into usage_intervals (tenant, minicluster, cargo, gpus, start, "end") '
            "values ('t', 'team', 'gone', 1, 'sometime', null), "
            "('u', 'other', 'theirs', 1, '2026-01-01 00:00:00.000000', 'later')"
        )
    with _client(db) as client:
        deadline = time.monotonic() + 30
        counted: list[str] = []
        while time.monotonic() < deadline and not counted:
            got = client.get("/v1/usage", params={"tenant": "u", "byCargo": "true"})
            assert got.status_code == 200, got.text
            counted = [row["cargo"] for row in got.json()["items"]]
            time.sleep(0.1)
        assert counted == ["theirs"], counted
        since = got.json()["items"][0]["startedAt"]
        assert not since.startswith("2026-01-01"), got.text
        mine = client.get("/v1/usage", params={"tenant": "t"})
        assert mine.status_code == 200, mine.text
        assert mine.json()["items"] == [], mine.text
        everyone = client.get("/v1/usage")
        assert everyone.status_code == 200, everyone.text
        assert [r["tenant"] for r in everyone.json()["items"]] == ["u"], everyone.text


def test_a_tenant_or_audit_time_that_does_not_parse_stops_no_start_and_no_tenant(
    tmp_path: Path,
) -> None:
    """A tenant's ``created_at`` and an audit entry's ``time`` edited by hand into text that
    is no time: the server starts, the tenant works (MiniClusters,
    tokens), and the lists answer, showing the time as 0001-01-01T00:00:00Z. Before, with the
    default tenant's time edited the server did not start at all; with another tenant's, that
    tenant's creates and token mints answered 500, and so did the tenant and audit lists."""
    db = tmp_path / "crane.db"
    with _client(db) as client:
        assert client.post("/v1/tenants", json={"name": "u"}).status_code == 201
    with sqlite3.connect(db) as conn:  # edited by hand
        conn.execute("update tenants set created_at='garbage'")
        conn.execute("update audit_log set time='whenever'")
    with _client(db) as client:
        assert client.get("/v1/whoami").status_code == 200
        spec = {"gpuType": "H100", "gpus": {"min": 0, "max": 8}}
        for tenant in ("u", "default"):
            got = client.post(
                "/v1/miniclusters", params={"tenant": tenant}, json={"name": "a", "spec": spec}
            )
            assert got.status_code == 201, got.text
        minted = client.post("/v1/tokens", json={"scope": "tenant", "tenant": "u"})
        assert minted.status_code == 201, minted.text
        tenants = client.get("/v1/tenants")
        assert tenants.status_code == 200, tenants.text
        shown = {t["name"]: t["createdAt"] for t in tenants.json()["items"]}
        assert set(shown) == {"default", "u"}, tenants.text
        assert all(at.startswith("0001-01-01T00:00:00") for at in shown.values()), shown
        audit = client.get("/v1/audit")
        assert audit.status_code == 200, audit.text
        times = [entry["time"] for entry in audit.json()["items"]]
        assert any(at.startswith("0001-01-01") for at in times), times
        assert any(not at.startswith("0001-01-01") for at in times), times
