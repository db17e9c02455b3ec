"""A tenant deleted while MiniClusters are created in it, on one server or on two servers of
one database: no MiniCluster outlives its tenant (nothing a re-created tenant of that name
would inherit, no GPUs held by a tenant no one can see).

Docker-mode servers without hosts: MiniClusters queue, which needs no Docker daemon.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from crane.api.db import TenantRow, make_engine
from crane.docker.api_backend import DockerBackend
from crane.docker.reconciler import Reconciler
from tests.dockerd import DockerServer
from tests.support import Gate

MC = {"name": "orphan", "spec": {"gpuType": "H100", "gpus": {"min": 1, "max": 2}}}


def _names(api: httpx.Client | TestClient, tenant: str) -> list[str]:
    listed = api.get("/v1/miniclusters", params={"tenant": tenant})
    assert listed.status_code == 200, listed.text
    return [mc["name"] for mc in listed.json()["items"]]


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


def test_a_minicluster_created_while_its_tenant_is_deleted_goes_with_the_tenant(
    local_api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create passed its check of the tenant, then the tenant was deleted (204) before
    the MiniCluster was stored: the create answers 404 and a tenant made again under the name
    finds no MiniCluster."""
    gate = Gate()
    gate.hold(monkeypatch, DockerBackend, "create_minicluster")
    assert local_api.post("/v1/tenants", json={"name": "gone"}).status_code == 201
    with ThreadPoolExecutor(1) as pool:
        made = pool.submit(local_api.post, "/v1/miniclusters", params={"tenant": "gone"}, json=MC)
        try:
            gate.wait_entered("the create in the backend")
            assert local_api.delete("/v1/tenants/gone").status_code == 204
        finally:
            gate.release.set()
        answer = made.result(60)
    assert answer.status_code == 404, answer.text
    assert local_api.post("/v1/tenants", json={"name": "gone"}).status_code == 201
    assert _names(local_api, "gone") == []


def test_a_tenant_delete_cut_short_by_a_crash_leaves_no_token_for_the_namesake(
    local_api: TestClient,
) -> None:
    """A delete drops the tenant, then revokes its tokens: a server killed between the two
    left them working for a tenant made again under that name. Creating the tenant revokes
    whatever tokens a namesake left."""
    url = local_api.app.state.crane.settings.database_url
    assert local_api.post("/v1/tenants", json={"name": "crashed"}).status_code == 201
    minted = local_api.post("/v1/tokens", json={"scope": "tenant", "tenant": "crashed"})
    assert minted.status_code == 201, minted.text
    old = {"Authorization": f"Bearer {minted.json()['token']}"}
    assert local_api.post("/v1/tenants", json={"name": "crashed"}).status_code == 409
    assert local_api.get("/v1/miniclusters", headers=old).status_code == 200  # 409 revokes none
    with Session(make_engine(url)) as session:  # the drop, and then the crash
        session.delete(session.get(TenantRow, "crashed"))
        session.commit()
    assert local_api.post("/v1/tenants", json={"name": "crashed"}).status_code == 201
    answer = local_api.get("/v1/miniclusters", headers=old)
    assert answer.status_code == 401, answer.text


def test_a_tenant_stays_while_a_minicluster_of_it_is_being_deleted(
    local_api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MiniCluster being deleted (its cargos stopping, still holding GPUs) is the tenant's
    until it is gone: deleting the tenant meanwhile is a 409, else a namesake tenant made next
    received its last events ("MiniCluster deleted") as its own. Here the deletion is kept from
    finishing (the reconciler's step that finishes it does nothing), then let go."""
    monkeypatch.setattr(Reconciler, "_delete_miniclusters", lambda *_: None)
    assert local_api.post("/v1/tenants", json={"name": "leaving"}).status_code == 201
    made = local_api.post("/v1/miniclusters", params={"tenant": "leaving"}, json=MC)
    assert made.status_code == 201, made.text
    gone = local_api.delete(f"/v1/miniclusters/{MC['name']}", params={"tenant": "leaving"})
    assert gone.status_code in (202, 204), gone.text
    assert _names(local_api, "leaving") == []  # listed as gone, not gone yet
    refused = local_api.delete("/v1/tenants/leaving")
    assert refused.status_code == 409, refused.text
    assert "still has MiniClusters" in refused.json()["detail"]
    assert "leaving" in [t["name"] for t in local_api.get("/v1/tenants").json()["items"]]
    monkeypatch.undo()
    deadline = time.monotonic() + 60
    while (deleted := local_api.delete("/v1/tenants/leaving")).status_code == 409:
        assert time.monotonic() < deadline, deleted.text
        time.sleep(0.1)
    assert deleted.status_code == 204, deleted.text
