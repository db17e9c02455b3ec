"""A tenant deleted while MiniClusters are created in it, on one server or on two servers of
one database: no MiniCluster outlives its tenant (nothing a re-created tenant of that name
would inherit, no GPUs held by a tenant no one can see).

Docker-mode servers without hosts: MiniClusters queue, which needs no Docker daemon.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from crane.api.app import create_app
from crane.api.db import TenantRow, make_engine
from crane.api.schemas import MiniCluster, MiniClusterCreate
from crane.api.settings import ApiSettings, BackendKind
from crane.docker.api_backend import DockerBackend
from tests.dockerd import DockerServer, serve_docker

ADMIN = "crane_tenantrace_" + "t" * 43
MC = {"name": "orphan", "spec": {"gpuType": "H100", "gpus": {"min": 1, "max": 2}}}


def _names(api: httpx.Client | TestClient, tenant: str) -> list[str]:
    listed = api.get("/v1/miniclusters", params={"tenant": tenant})
    assert listed.status_code == 200, listed.text
    return [mc["name"] for mc in listed.json()["items"]]


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[DockerServer]]:
    """Two hostless Docker-mode servers on one SQLite database."""
    url = f"sqlite:///{tmp_path / 'crane.db'}"
    first = serve_docker(tmp_path, ADMIN, [], database_url=url, name="first")
    try:
        second = serve_docker(tmp_path, ADMIN, [], database_url=url, name="second")
        try:
            yield [first, second]
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_tenant_deleted_on_one_server_takes_no_minicluster_on_the_other(
    two_servers: list[DockerServer],
) -> None:
    """The second server served the tenant before the first deleted it: it must not take a
    MiniCluster for it afterwards (it remembered the tenant, and answered 201)."""
    first, second = two_servers
    with first.client() as one, second.client() as two:
        assert one.post("/v1/tenants", json={"name": "gone"}).status_code == 201
        assert _names(two, "gone") == []
        assert one.delete("/v1/tenants/gone").status_code == 204
        made = two.post("/v1/miniclusters", params={"tenant": "gone"}, json=MC)
        assert made.status_code == 404, made.text
        assert "gone" not in [t["name"] for t in two.get("/v1/tenants").json()["items"]]
        assert one.post("/v1/tenants", json={"name": "gone"}).status_code == 201
        assert _names(one, "gone") == []
        assert _names(two, "gone") == []


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


def test_a_minicluster_created_while_its_tenant_is_deleted_goes_with_the_tenant(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create passed its check of the tenant, then the tenant was deleted (204) before
    the MiniCluster was stored: the create answers 404 and a tenant made again under the name
    finds no MiniCluster."""
    entered, release = threading.Event(), threading.Event()
    create = DockerBackend.create_minicluster

    async def paused(self: DockerBackend, tenant: str, body: MiniClusterCreate) -> MiniCluster:
        entered.set()
        assert await asyncio.to_thread(release.wait, 60), "the test never released the create"
        return await create(self, tenant, body)

    monkeypatch.setattr(DockerBackend, "create_minicluster", paused)
    assert api.post("/v1/tenants", json={"name": "gone"}).status_code == 201
    with ThreadPoolExecutor(1) as pool:
        made = pool.submit(api.post, "/v1/miniclusters", params={"tenant": "gone"}, json=MC)
        try:
            assert entered.wait(60), "the create never reached the backend"
            assert api.delete("/v1/tenants/gone").status_code == 204
        finally:
            release.set()
        answer = made.result(60)
    assert answer.status_code == 404, answer.text
    assert api.post("/v1/tenants", json={"name": "gone"}).status_code == 201
    assert _names(api, "gone") == []


def test_a_tenant_delete_cut_short_by_a_crash_leaves_no_token_for_the_namesake(
    tmp_path: Path,
) -> None:
    """A delete drops the tenant, then revokes its tokens: a server killed between the two
    left them working for a tenant made again under that name. Creating the tenant revokes
    whatever tokens a namesake left."""
    url = f"sqlite:///{tmp_path / 'crane.db'}"
    settings = ApiSettings(database_url=url, backend=BackendKind.DOCKER, bootstrap_token=ADMIN)
    with TestClient(create_app(settings)) as api:
        api.headers["Authorization"] = f"Bearer {ADMIN}"
        assert api.post("/v1/tenants", json={"name": "crashed"}).status_code == 201
        minted = api.post("/v1/tokens", json={"scope": "tenant", "tenant": "crashed"})
        assert minted.status_code == 201, minted.text
        old = {"Authorization": f"Bearer {minted.json()['token']}"}
        assert api.post("/v1/tenants", json={"name": "crashed"}).status_code == 409
        assert api.get("/v1/miniclusters", headers=old).status_code == 200  # a 409 revokes none
        with Session(make_engine(url)) as session:  # the drop, and then the crash
            session.delete(session.get(TenantRow, "crashed"))
            session.commit()
        assert api.post("/v1/tenants", json={"name": "crashed"}).status_code == 201
        answer = api.get("/v1/miniclusters", headers=old)
        assert answer.status_code == 401, answer.text
