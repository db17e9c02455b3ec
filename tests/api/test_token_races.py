"""A token revoked while it mints another: the new token goes down with it, as every token
it minted does (it outlived its revoked parent)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from crane.api.routers import access
from tests.api.conftest import ADMIN
from tests.support import Gate


def test_a_token_minted_while_its_parent_is_revoked_does_not_work(
    local_api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent passed its check, then an admin revoked it (204) before the new token was
    stored: the new token must not authenticate."""
    assert local_api.post("/v1/tenants", json={"name": "acme"}).status_code == 201
    parent = local_api.post("/v1/tokens", json={"scope": "tenant", "tenant": "acme"}).json()
    gate = Gate()
    gate.hold(monkeypatch, access, "mint")
    as_parent = {"Authorization": f"Bearer {parent['token']}"}
    body = {"scope": "tenant", "tenant": "acme"}
    with ThreadPoolExecutor(1) as pool:
        minted = pool.submit(local_api.post, "/v1/tokens", json=body, headers=as_parent)
        try:
            gate.wait_entered("the mint")
            assert local_api.delete(f"/v1/tokens/{parent['id']}").status_code == 204
        finally:
            gate.release.set()
        answer = minted.result(60)
    assert local_api.get("/v1/whoami", headers=as_parent).status_code == 401
    if answer.status_code == 201:
        child = {"Authorization": f"Bearer {answer.json()['token']}"}
        assert local_api.get("/v1/whoami", headers=child).status_code == 401
    else:
        assert answer.status_code == 401, answer.text
    listed = {t["id"]: t for t in local_api.get("/v1/tokens").json()["items"]}
    assert all(t["revoked"] for t in listed.values() if t["id"] != ADMIN.split("_")[1])


def test_a_token_minted_while_its_tenant_is_deleted_does_not_serve_the_tenant_made_again(
    local_api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mint passed its check of the tenant, then the tenant was deleted (204) before the
    token was stored: a tenant made again under the name must not answer to that token."""
    assert local_api.post("/v1/tenants", json={"name": "acme"}).status_code == 201
    gate = Gate()
    gate.hold(monkeypatch, access, "mint")
    with ThreadPoolExecutor(1) as pool:
        minted = pool.submit(
            local_api.post, "/v1/tokens", json={"scope": "tenant", "tenant": "acme"}
        )
        try:
            gate.wait_entered("the mint")
            assert local_api.delete("/v1/tenants/acme").status_code == 204
        finally:
            gate.release.set()
        answer = minted.result(60)
    assert local_api.post("/v1/tenants", json={"name": "acme"}).status_code == 201
    if answer.status_code == 201:
        old = {"Authorization": f"Bearer {answer.json()['token']}"}
        assert local_api.get("/v1/miniclusters", headers=old).status_code == 401
    else:
        assert answer.status_code == 404, answer.text
