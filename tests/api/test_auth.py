"""Tokens and tenancy as a user meets them: 401 without a token, 403 for the wrong scope,
404 for another tenant's things; secrets stored only as hashes."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.api.conftest import Server


def _token(srv: Server, **body: object) -> str:
    with srv.client() as admin:
        r = admin.post("/v1/tokens", json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])


def _tenant(srv: Server, name: str) -> None:
    with srv.client() as admin:
        assert admin.post("/v1/tenants", json={"name": name}).status_code == 201


def test_no_token_is_401_problem_with_remedy(server: Server) -> None:
    with server.client(token=None) as anon:
        r = anon.get("/v1/miniclusters")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in r.json()["detail"]


def test_wrong_and_revoked_tokens_are_401(server: Server) -> None:
    _tenant(server, "team-a")
    token = _token(server, scope="tenant", tenant="team-a")
    with server.client(token=token[:-2] + "xx") as forged:
        assert forged.get("/v1/whoami").status_code == 401
    with server.client(token=token) as user:
        me = user.get("/v1/whoami").json()
        assert me["scope"] == "tenant" and me["tenant"] == "team-a" and "token" not in me
    with server.client() as admin:
        assert admin.delete(f"/v1/tokens/{me['id']}").status_code == 204
    with server.client(token=token) as user:
        r = user.get("/v1/whoami")
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_another_tenant_is_404_and_admin_routes_are_403(server: Server) -> None:
    _tenant(server, "team-a")
    _tenant(server, "team-b")
    a = _token(server, scope="tenant", tenant="team-a")
    with server.client(token=a) as user:
        r = user.get("/v1/miniclusters", params={"tenant": "team-b"})
        assert r.status_code == 404 and "team-b" in r.json()["detail"]
        r = user.post("/v1/miniclusters/x:grow", params={"tenant": "team-b"}, json={"count": 1})
        assert r.status_code == 404
        assert user.get("/v1/tenants").status_code == 403
        assert user.get("/v1/audit").status_code == 403
        r = user.post("/v1/tokens", json={"scope": "admin"})
        assert r.status_code == 403 and "admin" in r.json()["detail"]
        r = user.post("/v1/tokens", json={"scope": "tenant", "tenant": "team-b"})
        assert r.status_code == 404
        listed = user.get("/v1/tokens").json()
    assert {t["tenant"] for t in listed["items"]} == {"team-a"}


def test_minicluster_token_is_confined_to_its_minicluster(server: Server) -> None:
    _tenant(server, "team-a")
    tenant_token = _token(server, scope="tenant", tenant="team-a")
    with server.client(token=tenant_token) as user:
        r = user.post(
            "/v1/tokens", json={"scope": "minicluster", "tenant": "team-a", "miniCluster": "study"}
        )
        assert r.status_code == 201
        am = r.json()["token"]
    with server.client(token=am) as app_manager:
        r = app_manager.post(
            "/v1/miniclusters",
            json={"name": "new", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 8}}},
        )
        assert r.status_code == 403
        assert app_manager.get("/v1/miniclusters/other").status_code == 404
        assert app_manager.post("/v1/miniclusters/other:grow", json={"count": 1}).status_code == 404
        assert app_manager.delete("/v1/miniclusters/study").status_code == 403
        assert (
            app_manager.post("/v1/tokens", json={"scope": "tenant", "tenant": "team-a"}).status_code
            == 403
        )


def test_tokens_are_stored_hashed_and_mutations_audited(server: Server, database_url: str) -> None:
    _tenant(server, "team-a")
    token = _token(server, scope="tenant", tenant="team-a")
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, secret_sha256 FROM tokens")).all()
        audit = conn.execute(text("SELECT action, target, status, token_id FROM audit_log")).all()
    engine.dispose()
    secret = token.split("_", 2)[2]
    assert all(secret not in row.secret_sha256 for row in rows)
    assert ("POST", "/v1/tenants", 201, "admin0") in [tuple(r) for r in audit]
    assert ("POST", "/v1/tokens", 201, "admin0") in [tuple(r) for r in audit]


def test_a_token_cannot_be_minted_already_expired_or_outlive_its_minter(server: Server) -> None:
    """An expiry in the past is a 422; a tenant token's children expire no later than it does,
    so a leaked short-lived token cannot mint a permanent one."""
    _tenant(server, "team-e")
    with server.client() as admin:
        r = admin.post(
            "/v1/tokens",
            json={"scope": "tenant", "tenant": "team-e", "expiresAt": "2001-01-01T00:00:00Z"},
        )
        assert r.status_code == 422 and "past" in r.text, r.text
        r = admin.post("/v1/tokens", json={"scope": "admin", "tenant": "team-e"})
        assert r.status_code == 422 and "tenant" in r.text, r.text
    short = _token(server, scope="tenant", tenant="team-e", expiresAt="2099-01-01T00:00:00Z")
    with server.client(token=short) as user:
        child = user.post("/v1/tokens", json={"scope": "tenant", "tenant": "team-e"})
        assert child.status_code == 201, child.text
        assert child.json()["expiresAt"].startswith("2099-01-01"), child.json()
        r = user.post(
            "/v1/tokens",
            json={"scope": "minicluster", "tenant": "team-e", "miniCluster": "m"}
            | {"expiresAt": "2100-01-01T00:00:00Z"},
        )
        assert r.status_code == 422 and "2099-01-01" in r.json()["detail"], r.text


def test_revoking_a_tenant_token_revokes_the_tokens_it_minted(server: Server) -> None:
    """A leaked tenant token's children die with it; an admin token's children survive it, so
    rotating an admin token does not cut off every tenant."""
    _tenant(server, "team-r")
    parent = _token(server, scope="tenant", tenant="team-r")
    with server.client(token=parent) as user:
        parent_id = user.get("/v1/whoami").json()["id"]
        child = user.post("/v1/tokens", json={"scope": "tenant", "tenant": "team-r"}).json()
    with server.client(token=child["token"]) as user:
        grandchild = user.post(
            "/v1/tokens", json={"scope": "minicluster", "tenant": "team-r", "miniCluster": "m"}
        ).json()
    rotated = _token(server, scope="admin")
    with server.client(token=rotated) as admin:
        kept = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": "team-r"}).json()
    with server.client() as admin:
        assert admin.delete(f"/v1/tokens/{parent_id}").status_code == 204
        rotated_id = admin.get("/v1/whoami", headers={"Authorization": f"Bearer {rotated}"})
        assert admin.delete(f"/v1/tokens/{rotated_id.json()['id']}").status_code == 204
    for gone in (parent, child["token"], grandchild["token"], rotated):
        with server.client(token=gone) as user:
            r = user.get("/v1/whoami")
            assert r.status_code == 401 and "revoked" in r.json()["detail"], r.text
    with server.client(token=kept["token"]) as user:
        assert user.get("/v1/whoami").status_code == 200


def test_a_token_with_a_nul_character_signing_in_is_401_not_500(server: Server) -> None:
    """The dashboard's sign-in takes its token from a JSON body, where ``\\u0000`` is a
    character like any other: on PostgreSQL the token id ``x\\x00`` was looked up as it was and
    the database refused the query (a 500). Such a token is malformed, on either database."""
    with server.client(token=None) as browser:
        for token in ("crane_x\u0000_secret", "crane_\u0000_secret", "crane_admin0_s\u0000"):
            answer = browser.post(
                "/ui/session", json={"token": token}, headers={"X-Crane-CSRF": "1"}
            )
            assert answer.status_code == 401, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
            assert "set-cookie" not in answer.headers
        assert browser.get("/healthz").status_code == 200
