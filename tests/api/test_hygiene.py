"""API hygiene: a body limit (413), time zones required, ``Allow`` on 405, every status code
and one-of rule in the OpenAPI, and connections that survive an error answer."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

from tests.api.conftest import ADMIN, Server

PROBLEM = "application/problem+json"
MIB = 1024 * 1024


def _big_minicluster(size: int) -> bytes:
    labels = {f"k{i}": "v" * 1000 for i in range(size // 1000)}
    body = {"name": "big", "spec": {"gpuType": "H100", "gpus": {"min": 1, "max": 2}}}
    return json.dumps({**body, "labels": labels}).encode()


def _connection(server: Server) -> http.client.HTTPConnection:
    url = urlsplit(server.url)
    return http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)


AUTH = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}


def test_a_body_over_the_limit_is_413_and_the_connection_stays_open(server: Server) -> None:
    conn = _connection(server)
    try:
        conn.request("POST", "/v1/miniclusters", body=_big_minicluster(10 * MIB), headers=AUTH)
        first = conn.getresponse()
        problem = json.loads(first.read())
        assert first.status == 413, problem
        assert first.getheader("content-type") == PROBLEM
        assert "larger than the limit of 1048576 bytes" in problem["detail"]
        sock = conn.sock
        assert sock is not None and not first.will_close

        def chunks() -> Iterator[bytes]:
            data = _big_minicluster(3 * MIB)
            for i in range(0, len(data), 64 * 1024):
                yield data[i : i + 64 * 1024]

        conn.request("POST", "/v1/miniclusters", body=chunks(), headers=AUTH, encode_chunked=True)
        second = conn.getresponse()
        assert second.status == 413, second.read()
        second.read()
        conn.request("GET", "/healthz")
        third = conn.getresponse()
        assert third.status == 200 and json.loads(third.read())["status"] == "ok"
        assert conn.sock is sock, "the server dropped the keep-alive connection"
    finally:
        conn.close()


def test_a_body_under_the_limit_reaches_the_route(server: Server) -> None:
    with server.client() as admin:
        r = admin.post(
            "/v1/tenants",
            content=json.dumps({"name": "t-small"}).encode(),
            headers={"Content-Type": "application/json"},
        )
    assert r.status_code == 201, r.text


def test_times_without_a_zone_or_as_numbers_are_422(server: Server) -> None:
    with server.client() as admin:
        naive = admin.post(
            "/v1/tokens", json={"scope": "admin", "expiresAt": "2030-01-01T00:00:00"}
        )
        number = admin.get("/v1/usage", params={"until": "0.5"})
        aware = admin.post(
            "/v1/tokens", json={"scope": "admin", "expiresAt": "2030-01-01T00:00:00Z"}
        )
        window = admin.get(
            "/v1/usage",
            params={"since": "2030-01-01T00:00:00+02:00", "until": "2030-01-02T00:00:00Z"},
        )
    assert naive.status_code == 422, naive.text
    assert naive.headers["content-type"] == PROBLEM
    assert "time zone" in naive.json()["detail"] and "expiresAt" in naive.json()["detail"]
    assert number.status_code == 422, number.text
    assert "until" in number.json()["detail"]
    assert aware.status_code == 201, aware.text
    assert aware.json()["expiresAt"].startswith("2030-01-01T00:00:00")
    assert window.status_code == 200, window.text


def test_405_says_which_methods_are_allowed(server: Server) -> None:
    with server.client() as admin:
        put = admin.put("/v1/miniclusters")
        options = admin.options("/v1/tenants/x")
    assert put.status_code == 405 and put.headers["content-type"] == PROBLEM
    assert {m.strip() for m in put.headers["allow"].split(",")} >= {"GET", "POST"}
    assert "use GET" in put.json()["detail"]
    assert options.status_code == 405
    allowed = {m.strip() for m in options.headers["allow"].split(",")}
    assert allowed == {"DELETE", "GET", "HEAD", "PATCH"}


def test_openapi_declares_every_status_and_one_of_rule(server: Server) -> None:
    with server.client() as admin:
        schema = admin.get("/openapi.json").json()
        empty_grow = admin.post("/v1/miniclusters/a:grow", json={})
        blank_type = admin.post(
            "/v1/miniclusters",
            json={"name": "a", "spec": {"gpuType": "", "gpus": {"min": 0, "max": 1}}},
        )
        blank_level = admin.post(
            "/v1/placement:dryrun",
            json={
                "miniCluster": {
                    "gpuType": "H100",
                    "gpus": {"min": 1, "max": 1},
                    "topology": {"level": ""},
                }
            },
        )
    for r in (empty_grow, blank_type, blank_level):
        assert r.status_code == 422, r.text
    for path, item in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, op in item.items():
            declared = set(op["responses"])
            assert {"400", "401", "413", "422", "503"} <= declared, (method, path, declared)
    parts = schema["components"]["schemas"]
    assert len(parts["GrowRequest"]["oneOf"]) == 2
    assert len(parts["ShrinkRequest"]["oneOf"]) == 2
    assert len(parts["DryRunRequest"]["oneOf"]) == 2
    assert len(parts["TokenCreate"]["oneOf"]) == 3
    assert parts["MiniClusterSpec"]["properties"]["gpuType"]["minLength"] == 1
    assert "" not in parts["TopologySpec"]["properties"]["level"]["enum"]


def test_made_up_methods_cannot_grow_the_metrics_without_end(server: Server) -> None:
    """Each new HTTP method an outsider sent (no token needed) became a new ``method`` label of
    ``crane_api_requests`` and ``crane_api_request_seconds``, kept for the life of the server:
    a loop of random methods grew the server's memory and ``/metrics`` without end. Methods
    HTTP does not define are now counted together as ``other``."""
    with server.client(None) as anon:
        for i in range(40):
            resp = anon.request(f"CRANEPROBE{i}", "/healthz")
            assert resp.status_code in (404, 405), resp.status_code
        exposition = anon.get("/metrics").text
    assert "CRANEPROBE" not in exposition
    assert 'method="other"' in exposition
