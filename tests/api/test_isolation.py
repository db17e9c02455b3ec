"""The tenant isolation matrix: every operation of the OpenAPI (a new endpoint is covered
automatically) x {another tenant's token, a MiniCluster token of another MiniCluster, an expired
token, a revoked token}: 401/403/404 where a foreign object is addressed, and no foreign name in
any answer or server-sent event.

The server runs the Docker backend without hosts: everything the API does short of starting
containers (MiniClusters queue, cargos wait) needs no Docker daemon.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from crane.api.db import UsageIntervalRow, make_engine
from tests.dockerd import DockerServer, serve_docker

ADMIN = "crane_isoadmin_" + "i" * 43
FOREIGN = ("iso-a", "secret-mc", "secret-cargo")
"""Tenant iso-a's names: its namespace, a MiniCluster and a cargo."""
SIBLING = "sibling-mc"
TEMPLATE = {"spec": {"containers": [{"name": "main", "image": "busybox"}]}}
"""A runnable template (Docker mode needs an image)."""
"""Another MiniCluster of iso-a, whose MiniCluster token must not see secret-mc."""
BODIES: dict[str, Any] = {
    "createMiniCluster": {
        "name": "probe-mc",
        "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 2}},
    },
    "patchMiniCluster": {"priority": 1},
    "growMiniCluster": {"count": 1},
    "shrinkMiniCluster": {"count": 1},
    "createCargo": {
        "spec": {
            "miniCluster": "secret-mc",
            "replicas": 1,
            "gpusPerReplica": 1,
            "template": TEMPLATE,
        }
    },
    "execCargo": {"command": ["true"]},
    "dryRunPlacement": {"cargo": {"miniCluster": "secret-mc", "gpusPerReplica": 1}},
    "createTenant": {"name": "probe-t"},
    "patchTenant": {"podSecurity": "baseline"},
    "putTenantShares": {"shares": [{"gpuType": "H100", "nominal": 1}]},
    "createToken": {"scope": "tenant", "tenant": "iso-a"},
    "createHost": {
        "name": "h-probe",
        "dockerHost": "tcp://127.0.0.1:9",
        "gpus": 1,
        "gpuType": "H100",
    },
}
"""A well-formed body per operation that takes one; an operation missing here is a test bug."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerServer]:
    running = serve_docker(tmp_path_factory.mktemp("iso"), ADMIN, [])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def world(server: DockerServer) -> dict[str, Any]:
    """Tenant iso-a with secret-mc (a cargo) and sibling-mc; tenant iso-b; the four tokens."""
    with server.client() as admin:
        for tenant in ("iso-a", "iso-b"):
            assert admin.post("/v1/tenants", json={"name": tenant}).status_code == 201
        for mc in ("secret-mc", SIBLING):
            body = {"name": mc, "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 4}}}
            made = admin.post("/v1/miniclusters", params={"tenant": "iso-a"}, json=body)
            assert made.status_code == 201, made.text
        cargo = {"name": "secret-cargo", "spec": {"miniCluster": "secret-mc", "template": TEMPLATE}}
        made = admin.post("/v1/cargos", params={"tenant": "iso-a"}, json=cargo)
        assert made.status_code == 201, made.text

        def token(**body: Any) -> dict[str, Any]:
            made = admin.post("/v1/tokens", json=body)
            assert made.status_code == 201, made.text
            return dict(made.json())

        own = token(scope="tenant", tenant="iso-a")
        soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        expired = token(scope="tenant", tenant="iso-a", expiresAt=soon)
        bearer = {"Authorization": f"Bearer {expired['token']}"}
        deadline = time.monotonic() + 60
        while admin.get("/v1/whoami", headers=bearer).status_code != 401:
            assert time.monotonic() < deadline, "a token past its expiry still works"
            time.sleep(0.2)
        revoked = token(scope="tenant", tenant="iso-a")
        assert admin.delete(f"/v1/tokens/{revoked['id']}").status_code == 204
        return {
            "other-tenant": token(scope="tenant", tenant="iso-b")["token"],
            "other-minicluster": token(scope="minicluster", tenant="iso-a", miniCluster=SIBLING)[
                "token"
            ],
            "expired": expired["token"],
            "revoked": revoked["token"],
            "token_id": own["id"],
        }


def _operations(server: DockerServer) -> list[tuple[str, str, dict[str, Any]]]:
    with server.client() as admin:
        schema = admin.get("/openapi.json").json()
    return [
        (method.upper(), path, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if path.startswith("/v1/")
    ]


def _path(path: str, world: dict[str, Any]) -> str:
    noun = path.split("/")[2]
    names = {"miniclusters": "secret-mc", "cargos": "secret-cargo", "tenants": "iso-a"}
    return path.replace("{name}", names.get(noun, "h-probe")).replace(
        "{token_id}", world["token_id"]
    )


def _foreign(who: str) -> tuple[str, ...]:
    return FOREIGN if who == "other-tenant" else FOREIGN[1:]


@pytest.mark.parametrize("who", ["other-tenant", "other-minicluster", "expired", "revoked"])
def test_every_operation_keeps_tenants_apart(
    server: DockerServer, world: dict[str, Any], who: str
) -> None:
    operations = _operations(server)
    assert len(operations) >= 25, "the OpenAPI lost operations"
    failures: list[str] = []
    for method, path, op in operations:
        op_id = op["operationId"]
        takes_tenant = any(p["name"] == "tenant" for p in op.get("parameters", []))
        addressed = "{" in path or op_id in ("createCargo", "dryRunPlacement", "createToken")
        variants = [{"tenant": "iso-a"}, {}] if takes_tenant and who == "other-tenant" else [{}]
        for params in variants:
            body = BODIES.get(op_id) if "requestBody" in op else None
            assert "requestBody" not in op or body is not None, f"add a body for {op_id}"
            with server.client(world[who]) as api:
                if op_id == "streamEvents":
                    continue  # streamed: see test_event_stream_names_no_foreign_object
                r = api.request(method, _path(path, world), params=params, json=body)
            text = r.text
            where = f"{who}: {method} {path} {params} -> {r.status_code}"
            if r.status_code >= 500:
                failures.append(f"{where}: {text[:200]}")
            elif who in ("expired", "revoked") and r.status_code != 401:
                failures.append(f"{where}: expected 401")
            elif (addressed or params) and r.status_code not in (401, 403, 404):
                failures.append(f"{where}: a foreign object was reachable: {text[:200]}")
            leaked = [n for n in _foreign(who) if n in text]
            if leaked and r.status_code < 300:
                failures.append(f"{where}: names {leaked}: {text[:300]}")
    assert not failures, "\n".join(failures)


def _collect(url: str, token: str, lines: list[str], stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.stream("GET", f"{url}/v1/events", headers=headers, timeout=None) as r:
        for line in r.iter_lines():
            lines.append(line)
            if stop.is_set():
                return


def test_event_stream_names_no_foreign_object(server: DockerServer, world: dict[str, Any]) -> None:
    stop = threading.Event()
    seen: dict[str, list[str]] = {"admin": [], "other-tenant": [], "other-minicluster": []}
    tokens = {"admin": ADMIN, **{k: world[k] for k in seen if k != "admin"}}
    threads = [
        threading.Thread(target=_collect, args=(server.url, tokens[k], seen[k], stop), daemon=True)
        for k in seen
    ]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while not all(any("connected" in line for line in v) for v in seen.values()):
        assert time.monotonic() < deadline, seen
        time.sleep(0.1)
    with server.client() as admin:
        cargo = {
            "name": "secret-cargo-2",
            "spec": {"miniCluster": "secret-mc", "template": TEMPLATE},
        }
        made = admin.post("/v1/cargos", params={"tenant": "iso-a"}, json=cargo)
        assert made.status_code == 201, made.text
        gone = admin.delete("/v1/cargos/secret-cargo-2", params={"tenant": "iso-a"})
        assert gone.status_code == 204
    while not any("secret-cargo-2" in line for line in seen["admin"]):
        assert time.monotonic() < deadline + 60, seen["admin"]
        time.sleep(0.1)
    stop.set()
    for name in ("other-tenant", "other-minicluster"):
        leaked = [line for line in seen[name] if any(n in line for n in _foreign(name)[1:])]
        assert not leaked, (name, leaked)


def test_reserved_namespaces_cannot_become_tenants(server: DockerServer) -> None:
    with server.client() as admin:
        for name in ("kube-system", "kube-public", "crane-system"):
            r = admin.post("/v1/tenants", json={"name": name})
            assert r.status_code == 422, r.text
            assert "reserved" in r.json()["detail"]
        assert admin.get("/v1/tenants").json()["count"] >= 1
        names = {
            t["name"] for t in admin.get("/v1/tenants", params={"limit": 1000}).json()["items"]
        }
        assert not names & {"kube-system", "kube-public", "crane-system"}


def test_a_host_without_gpus_is_refused_and_nothing_is_stored(server: DockerServer) -> None:
    with server.client() as admin:
        r = admin.post(
            "/v1/hosts", json={"name": "h0", "dockerHost": "tcp://127.0.0.1:9", "gpus": 0}
        )
        assert r.status_code == 422, r.text
        assert "gpus" in r.json()["detail"]
        assert admin.get("/v1/hosts/h0").status_code == 404
        assert admin.get("/v1/nodes").status_code == 200
        made = admin.post(
            "/v1/miniclusters",
            json={"name": "after-h0", "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 1}}},
        )
        assert made.status_code == 201, made.text
        assert admin.get("/v1/miniclusters/after-h0:explain").status_code == 200


def test_a_revoked_token_ends_its_event_stream(server: DockerServer, world: dict[str, Any]) -> None:
    """A stream opened before its token was revoked sends nothing after, and ends."""
    with server.client() as admin:
        made = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": "iso-a"})
        assert made.status_code == 201, made.text
        token = made.json()
        lines: list[str] = []
        stop = threading.Event()

        def collect() -> None:
            _collect(server.url, token["token"], lines, stop)
            lines.append("<closed>")

        thread = threading.Thread(target=collect, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not any("connected" in line for line in lines):
            assert time.monotonic() < deadline, lines
            time.sleep(0.1)
        assert admin.delete(f"/v1/tokens/{token['id']}").status_code == 204
        cargo = {"name": "after-revoke", "spec": {"miniCluster": "secret-mc", "template": TEMPLATE}}
        made = admin.post("/v1/cargos", params={"tenant": "iso-a"}, json=cargo)
        assert made.status_code == 201, made.text
        gone = admin.delete("/v1/cargos/after-revoke", params={"tenant": "iso-a"})
        assert gone.status_code == 204
        while "<closed>" not in lines:
            assert not any("after-revoke" in line for line in lines), lines
            assert time.monotonic() < deadline, f"the stream outlived its revoked token: {lines}"
            time.sleep(0.1)
        assert not any("after-revoke" in line for line in lines), lines


ORACLE_PROBES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/cargos/{cargo}", None),
    ("DELETE", "/v1/cargos/{cargo}", None),
    ("GET", "/v1/cargos/{cargo}/logs", None),
    ("POST", "/v1/cargos/{cargo}:exec", {"command": ["true"]}),
    ("GET", "/v1/miniclusters/{mc}", None),
    ("GET", "/v1/miniclusters/{mc}:explain", None),
    ("PATCH", "/v1/miniclusters/{mc}", {"priority": 1}),
    ("POST", "/v1/miniclusters/{mc}:grow", {"count": 1}),
    ("POST", "/v1/miniclusters/{mc}:shrink", {"count": 1}),
    ("DELETE", "/v1/miniclusters/{mc}", None),
]
"""Calls addressing one object by name: a foreign one must answer as an absent one does."""


@pytest.mark.parametrize("who", ["other-tenant", "other-minicluster"])
def test_a_foreign_object_answers_exactly_as_an_absent_one(
    server: DockerServer, world: dict[str, Any], who: str
) -> None:
    """No existence oracle: the status and the whole problem body are the same for another
    tenant's (or MiniCluster's) object and for one that does not exist."""
    differ = []
    with server.client(world[who]) as api:
        for method, path, body in ORACLE_PROBES:
            answers = [
                api.request(method, path.format(cargo=cargo, mc=mc), json=body)
                for cargo, mc in (("secret-cargo", "secret-mc"), ("no-such-cargo", "no-such-mc"))
            ]
            seen = [(r.status_code, r.text.replace("no-such-", "secret-")) for r in answers]
            if seen[0] != seen[1]:
                differ.append(f"{method} {path}: {seen[0]} vs {seen[1]}")
    assert not differ, "\n".join(differ)


def test_a_tenant_made_again_under_a_deleted_ones_name_inherits_none_of_its_past(
    server: DockerServer,
) -> None:
    """Tenant ``reborn`` is deleted and an admin creates a new ``reborn`` for someone else: its
    token replays none of the old tenant's events and counts none of its usage (an admin still
    reads both)."""
    old = {"mc": "old-secret-mc", "cargo": "old-secret-cargo"}
    with server.client() as admin:
        assert admin.post("/v1/tenants", json={"name": "reborn"}).status_code == 201
        mc = {"name": old["mc"], "spec": {"gpuType": "H100", "gpus": {"min": 0, "max": 2}}}
        assert admin.post("/v1/miniclusters", params={"tenant": "reborn"}, json=mc).status_code
        cargo = {"name": old["cargo"], "spec": {"miniCluster": old["mc"], "template": TEMPLATE}}
        made = admin.post("/v1/cargos", params={"tenant": "reborn"}, json=cargo)
        assert made.status_code == 201, made.text
        gone = admin.delete(f"/v1/cargos/{old['cargo']}", params={"tenant": "reborn"})
        assert gone.status_code == 204
        now = datetime.now(UTC)
        with Session(make_engine(f"sqlite:///{server.log.parent / 'crane.db'}")) as s:
            s.add(
                UsageIntervalRow(
                    tenant="reborn",
                    minicluster=old["mc"],
                    cargo=old["cargo"],
                    gpus=8,
                    start=now - timedelta(hours=2),
                    end=now - timedelta(hours=1),
                    state="Succeeded",
                )
            )
            s.commit()
        assert admin.delete(f"/v1/miniclusters/{old['mc']}", params={"tenant": "reborn"})
        deadline = time.monotonic() + 60
        while (deleted := admin.delete("/v1/tenants/reborn")).status_code == 409:
            assert time.monotonic() < deadline, deleted.text
            time.sleep(0.2)
        assert deleted.status_code == 204, deleted.text
        assert admin.post("/v1/tenants", json={"name": "reborn"}).status_code == 201
        made = admin.post("/v1/tokens", json={"scope": "tenant", "tenant": "reborn"})
        assert made.status_code == 201, made.text
        new_owner = {"Authorization": f"Bearer {made.json()['token']}"}

        replay = {"Last-Event-ID": "0"}
        params = {"follow": "false"}
        history = admin.get("/v1/events", params={**params, "tenant": "reborn"}, headers=replay)
        assert old["cargo"] in history.text, history.text  # an admin reads the past
        theirs = admin.get("/v1/events", params=params, headers={**replay, **new_owner})
        assert theirs.status_code == 200, theirs.text
        assert old["mc"] not in theirs.text and old["cargo"] not in theirs.text, theirs.text

        audit = admin.get("/v1/usage", params={"tenant": "reborn", "byCargo": "true"})
        assert [r["cargo"] for r in audit.json()["items"]] == [old["cargo"]], audit.text
        usage = admin.get("/v1/usage", params={"byCargo": "true"}, headers=new_owner)
        assert usage.status_code == 200, usage.text
        assert usage.json()["items"] == [], usage.text
