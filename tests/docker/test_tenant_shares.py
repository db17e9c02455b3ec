"""Issue 14, tenant shares on the Docker backend, in numbers: two tenants on 16 H100 (h0 and
h1, 8 each). Guarantee and borrowing as ``GET /v1/tenants`` shows them, reclaim of borrowed
cargos with notice, and the weighted fair division of idle GPUs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from crane.docker.hosts import HostSpec
from tests.dockerd import SLEEP, DockerServer, serving

ADMIN = "crane_dockapi_" + "s" * 43


@pytest.fixture(scope="module")
def server(
    host_specs: list[HostSpec], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DockerServer]:
    with serving(tmp_path_factory.mktemp("shares"), ADMIN, host_specs[:2]) as running:
        yield running


def _until(check: Callable[[], Any], what: str, show: Callable[[str], Any] | None = None) -> Any:
    deadline = time.monotonic() + 90
    while not (got := check()):
        seen = show("/v1/cargos").json() if show else ""
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {seen}"
        time.sleep(0.3)
    return got


def _tenants(admin: httpx.Client, server: DockerServer, *names: str) -> dict[str, httpx.Client]:
    """Create the tenants and give each a client with its own token."""
    out = {}
    for name in names:
        created = admin.post("/v1/tenants", json={"name": name})
        assert created.status_code in (201, 409), created.text
        minted = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": name})
        out[name] = server.client(minted.json()["token"])
    return out


def _shares(admin: httpx.Client, tenant: str, **share: Any) -> None:
    body = {"shares": [{"gpuType": "H100", **share}] if share else []}
    answer = admin.put(f"/v1/tenants/{tenant}/shares", json=body)
    assert answer.status_code == 200, answer.text


def _use(admin: httpx.Client) -> dict[str, tuple[int, int, int]]:
    """tenant -> (guaranteed, in use, borrowing) of H100, as GET /v1/tenants shows them."""
    out = {}
    for tenant in admin.get("/v1/tenants").json()["items"]:
        for share in tenant["shares"]:
            out[tenant["name"]] = (share["nominal"], share["inUse"], share["borrowing"])
    return out


def _mc(api: httpx.Client, name: str, low: int, high: int) -> None:
    body = {"name": name, "spec": {"gpuType": "H100", "gpus": {"min": low, "max": high}}}
    answer = api.post("/v1/miniclusters", json=body)
    assert answer.status_code == 201, answer.text


def _cleanup(clients: dict[str, httpx.Client]) -> None:
    for api in clients.values():
        for mc in api.get("/v1/miniclusters").json()["items"]:
            api.delete(f"/v1/miniclusters/{mc['name']}")
    for api in clients.values():
        _until(lambda a=api: not a.get("/v1/miniclusters").json()["items"], "MiniClusters gone")
        api.close()


def test_bad_shares_are_refused_with_problem_json(admin: httpx.Client) -> None:
    assert admin.post("/v1/tenants", json={"name": "bad"}).status_code == 201
    body = {"shares": [{"gpuType": "H100", "nominal": 2, "lendingLimit": 4}]}
    answer = admin.put("/v1/tenants/bad/shares", json=body)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert "lendingLimit 4 is more than nominal 2" in answer.text
    missing = admin.put("/v1/tenants/nobody/shares", json={"shares": []})
    assert missing.status_code == 404


def test_guarantee_borrowing_and_reclaim_with_notice(
    admin: httpx.Client, server: DockerServer
) -> None:
    clients = _tenants(admin, server, "team-a", "team-b")
    a, b = clients["team-a"], clients["team-b"]
    try:
        _shares(admin, "team-a", nominal=8, weight=1)
        _shares(admin, "team-b", nominal=8, weight=1)
        assert _use(admin) == {"team-a": (8, 0, 0), "team-b": (8, 0, 0)}

        _mc(a, "study", 0, 16)
        for i in range(4):
            cargo = {
                "name": f"trial-{i}",
                "spec": {"miniCluster": "study", "gpusPerReplica": 4, "template": SLEEP},
            }
            assert a.post("/v1/cargos", json=cargo).status_code == 201
        _until(
            lambda: (
                [c["status"]["phase"] for c in a.get("/v1/cargos").json()["items"]]
                == ["Running"] * 4
            ),
            "team-a's 4 cargos running",
            a.get,
        )
        assert _use(admin) == {"team-a": (8, 16, 8), "team-b": (8, 0, 0)}  # borrows b's 8

        _mc(b, "train", 8, 8)
        reserved = _until(
            lambda: b.get("/v1/miniclusters/train").json()["status"]["reservedGpus"] == 8,
            "team-b's guarantee reclaimed",
        )
        assert reserved
        notices = {
            c["name"]: (cond["reason"], cond["message"])
            for c in a.get("/v1/cargos").json()["items"]
            for cond in c["status"]["conditions"]
            if cond["type"] == "Preempted" and cond["status"] == "True"
        }
        assert sorted(notices) == ["trial-2", "trial-3"]  # newest first, only as many as needed
        for reason, notice in notices.values():
            assert reason == "ReclaimedForShare"
            assert "reclaimed for a tenant below its guaranteed share" in notice
            assert "train" not in notice  # names no object of another tenant
        settled = {"team-a": (8, 8, 0), "team-b": (8, 8, 0)}  # both at their guarantee
        _until(lambda: _use(admin) == settled, "both tenants at their guarantee of 8")
    finally:
        _cleanup(clients)
        _shares(admin, "team-a")
        _shares(admin, "team-b")


def test_idle_gpus_are_divided_by_weight_not_by_arrival(
    admin: httpx.Client, server: DockerServer
) -> None:
    clients = _tenants(admin, server, "team-a", "team-b", "blocker")
    a, b, blocker = clients["team-a"], clients["team-b"], clients["blocker"]
    try:
        _shares(admin, "team-a", nominal=0, weight=3)
        _shares(admin, "team-b", nominal=0, weight=1)
        _mc(blocker, "all", 16, 16)
        for i in range(12):  # team-b asks first
            _mc(b, f"b-{i}", 1, 1)
        for i in range(12):
            _mc(a, f"a-{i}", 1, 1)
        assert _use(admin) == {"team-a": (0, 0, 0), "team-b": (0, 0, 0)}
        assert blocker.delete("/v1/miniclusters/all").status_code in (200, 202, 204)
        _until(lambda: sum(u[1] for u in _use(admin).values()) == 16, "16 GPUs admitted")
        assert _use(admin) == {"team-a": (0, 12, 12), "team-b": (0, 4, 4)}  # 3 : 1
    finally:
        _cleanup(clients)
        _shares(admin, "team-a")
        _shares(admin, "team-b")
