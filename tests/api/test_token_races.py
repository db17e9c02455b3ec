"""A token revoked while it mints another: the new token goes down with it, as every token
it minted does (it outlived its revoked parent)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crane.api import auth
from crane.api.app import create_app
from crane.api.routers import access
from crane.api.settings import ApiSettings, BackendKind

ADMIN = "crane_tokenrace_" + "k" * 43


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    """One hostless Docker-mode server, in this process."""
    settings = ApiSettings(
        database_url=f"sqlite:///{tmp_path / 'crane.db'}",
        backend=BackendKind.DOCKER,
        bootstrap_token=ADMIN,
    )
    with TestClient(create_app(settings)) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN}"
        yield client


def test_a_token_minted_while_its_parent_is_revoked_does_not_work(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent passed its check, then an admin revoked it (204) before the new token was
    stored: the new token must not authenticate."""
    assert api.post("/v1/tenants", json={"name": "acme"}).status_code == 201
    parent = api.post("/v1/tokens", json={"scope": "tenant", "tenant": "acme"}).json()
    entered, release = threading.Event(), threading.Event()

    def paused(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(60), "the test never released the mint"
        return auth.mint(*args, **kwargs)

    monkeypatch.setattr(access, "mint", paused)
    as_parent = {"Authorization": f"Bearer {parent['token']}"}
    body = {"scope": "tenant", "tenant": "acme"}
    with ThreadPoolExecutor(1) as pool:
        minted = pool.submit(api.post, "/v1/tokens", json=body, headers=as_parent)
        try:
            assert entered.wait(60), "the mint never started"
            assert api.delete(f"/v1/tokens/{parent['id']}").status_code == 204
        finally:
            release.set()
        answer = minted.result(60)
    assert api.get("/v1/whoami", headers=as_parent).status_code == 401
    if answer.status_code == 201:
        child = {"Authorization": f"Bearer {answer.json()['token']}"}
        assert api.get("/v1/whoami", headers=child).status_code == 401
    else:
        assert answer.status_code == 401, answer.text
    listed = {t["id"]: t for t in api.get("/v1/tokens").json()["items"]}
    assert all(t["revoked"] for t in listed.values() if t["id"] != ADMIN.split("_")[1])


def test_a_token_minted_while_its_tenant_is_deleted_does_not_serve_the_tenant_made_again(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mint passed its check of the tenant, then the tenant was deleted (204) before the
    token was stored: a tenant made again under the name must not answer to that token."""
    assert api.post("/v1/tenants", json={"name": "acme"}).status_code == 201
    entered, release = threading.Event(), threading.Event()

    def paused(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        assert release.wait(60), "the test never released the mint"
        return auth.mint(*args, **kwargs)

    monkeypatch.setattr(access, "mint", paused)
    with ThreadPoolExecutor(1) as pool:
        minted = pool.submit(api.post, "/v1/tokens", json={"scope": "tenant", "tenant": "acme"})
        try:
            assert entered.wait(60), "the mint never started"
            assert api.delete("/v1/tenants/acme").status_code == 204
        finally:
            release.set()
        answer = minted.result(60)
    assert api.post("/v1/tenants", json={"name": "acme"}).status_code == 201
    if answer.status_code == 201:
        old = {"Authorization": f"Bearer {answer.json()['token']}"}
        assert api.get("/v1/miniclusters", headers=old).status_code == 401
    else:
        assert answer.status_code == 404, answer.text
