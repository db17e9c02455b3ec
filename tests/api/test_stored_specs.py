"""A spec stored in Docker mode's database before a template rule was added (a label or an env
name that is now Crane's) is read back as it was stored: the server answers for it and the
reconciler keeps running every other cargo; the backends refuse that one when they build it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from crane.docker.containers import container_template
from tests.dockerd import serve_docker

ADMIN = "crane_storedspecs_" + "s" * 43
TENANT = "t"
TEMPLATE = {"spec": {"containers": [{"name": "m", "image": "busybox", "env": [{"name": "KEEP"}]}]}}


def _wait_for_message(client: httpx.Client, name: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    got = {}
    while time.monotonic() < deadline:
        got = client.get(f"/v1/cargos/{name}", params={"tenant": TENANT}).json()
        if got.get("status", {}).get("message"):
            return str(got["status"]["message"])
        time.sleep(0.2)
    raise AssertionError(f"cargo {name} never said why it waits: {got}")


def test_a_stored_template_now_refused_stops_nothing_but_itself(tmp_path: Path) -> None:
    server = serve_docker(tmp_path, ADMIN, [])
    try:
        with server.client() as admin:
            assert admin.post("/v1/tenants", json={"name": TENANT}).status_code == 201
            spec = {"gpuType": "H100", "gpus": {"min": 0, "max": 8}}
            made = admin.post(
                "/v1/miniclusters", params={"tenant": TENANT}, json={"name": "mc", "spec": spec}
            )
            assert made.status_code == 201, made.text
            cargo = {"miniCluster": "mc", "gpusPerReplica": 1, "template": TEMPLATE}
            for name in ("old", "new"):
                made = admin.post(
                    "/v1/cargos", params={"tenant": TENANT}, json={"name": name, "spec": cargo}
                )
                assert made.status_code == 201, made.text
            # "old" was stored before RANK became Crane's alone
            with sqlite3.connect(next(tmp_path.rglob("*.db"))) as db:
                (stored,) = db.execute("select spec from docker_cargos where name='old'").fetchone()
                db.execute(
                    "update docker_cargos set spec=? where name='old'",
                    (stored.replace('"KEEP"', '"RANK"'),),
                )
            listed = admin.get("/v1/cargos", params={"tenant": TENANT})
            assert listed.status_code == 200, listed.text
            assert {c["name"] for c in listed.json()["items"]} == {"old", "new"}
            # the reconciler still runs: a cargo made afterwards is told why it waits
            cargo["template"] = TEMPLATE
            made = admin.post(
                "/v1/cargos", params={"tenant": TENANT}, json={"name": "later", "spec": cargo}
            )
            assert made.status_code == 201, made.text
            assert "H100" in _wait_for_message(admin, "later")
            gone = admin.delete("/v1/cargos/old", params={"tenant": TENANT})
            assert gone.status_code == 204, gone.text
    finally:
        server.stop()


def test_the_reconciler_refuses_a_stored_template_when_it_builds_the_container() -> None:
    """What fails that cargo (``InvalidSpec``) once it is placed, naming the variable."""
    stored = {"spec": {"containers": [{"name": "m", "image": "b", "env": [{"name": "RANK"}]}]}}
    with pytest.raises(ValueError, match="env: RANK is Crane's"):
        container_template(stored, "t")
