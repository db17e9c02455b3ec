"""The SDK against a scripted HTTP transport: requests, retries, errors, paging, SSE, waiting."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from crane.client import (
    AsyncClient,
    Client,
    Conflict,
    ConnectionFailed,
    CraneError,
    GrowOutcome,
    Invalid,
    NotFound,
    Unauthorized,
    WaitTimeout,
)

ROOT = Path(__file__).resolve().parents[2]
MC_SPEC = {"gpuType": "H100", "gpus": {"min": 8, "max": 16}}
Handler = Callable[[httpx.Request], httpx.Response]


def _mc(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "tenant": "t",
        "uid": name,
        "spec": MC_SPEC,
        "createdAt": "2026-01-01T00:00:00Z",
    }


def _cargo(name: str, phase: str = "Pending", message: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "tenant": "t",
        "uid": name,
        "createdAt": "2026-01-01T00:00:00Z",
        "spec": {"miniCluster": "study", "replicas": 1, "gpusPerReplica": 2},
        "status": {"phase": phase, "message": message},
    }


def _problem(status: int, detail: str, **extra: Any) -> httpx.Response:
    body = {"type": "about:blank", "title": "x", "status": status, "detail": detail, **extra}
    return httpx.Response(status, json=body, headers={"content-type": "application/problem+json"})


def _client(handler: Handler, **kw: Any) -> Client:
    return Client("http://crane.test", "secret", transport=httpx.MockTransport(handler), **kw)


GROW_OK = {
    "result": "granted",
    "requested": 2,
    "added": 2,
    "cargos": [
        {"name": "study-0", "gpus": 2, "added": True, "phase": "Placed"},
        {"name": "study-1", "gpus": 2, "added": True, "phase": "Placed"},
    ],
}


def test_grow_sends_count_wait_key_and_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=GROW_OK)

    result = _client(handler, tenant="team").grow("study", 2, wait=True, timeout=5)
    assert result.result is GrowOutcome.GRANTED
    assert [c.name for c in result.cargos] == ["study-0", "study-1"]
    request = seen[0]
    assert request.url.path == "/v1/miniclusters/study:grow"
    assert request.url.params["tenant"] == "team"
    assert json.loads(request.content) == {
        "count": 2,
        "allowPending": False,
        "wait": True,
        "timeoutSeconds": 5.0,
    }
    assert request.headers["authorization"] == "Bearer secret"
    assert len(request.headers["idempotency-key"]) == 36


def test_grow_with_cargo_shapes() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=GROW_OK)

    _client(handler).grow("study", cargos=[{"replicas": 2, "gpusPerReplica": 4}])
    assert bodies[0]["cargos"][0]["gpusPerReplica"] == 4
    assert "count" not in bodies[0]
    with pytest.raises(ValueError, match="either count"):
        _client(handler).grow("study")


def test_idempotency_key_is_reused_when_a_request_is_retried() -> None:
    keys: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        if len(keys) == 1:
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(201, json=_mc("study"))

    mc = _client(handler).create_minicluster("study", MC_SPEC)
    assert mc.name == "study"
    assert len(keys) == 2 and keys[0] == keys[1]


def test_patch_is_not_retried_after_it_may_have_reached_the_server() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ReadError("reset", request=request)

    with pytest.raises(ConnectionFailed, match=r"cannot reach the Crane API at http://crane\.test"):
        _client(handler).patch_minicluster("study", {"replicas": 2})
    assert len(calls) == 1


def test_problem_json_becomes_typed_errors() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/nope"):
            return _problem(404, "minicluster nope not found")
        if request.method == "POST":
            return _problem(
                422,
                "invalid",
                errors=[{"loc": ["body", "spec", "gpus", "max"], "msg": "must be >= min"}],
            )
        return _problem(401, "token expired")

    client = _client(handler)
    with pytest.raises(NotFound, match="minicluster nope not found") as nf:
        client.get_minicluster("nope")
    assert nf.value.status == 404 and nf.value.problem is not None
    with pytest.raises(Invalid) as inv:
        client.create_minicluster("study", MC_SPEC)
    assert [(e.field, e.msg) for e in inv.value.field_errors] == [
        ("spec.gpus.max", "must be >= min")
    ]
    with pytest.raises(Unauthorized):
        client.list_miniclusters()


def test_lists_are_fetched_page_by_page() -> None:
    names = [f"mc-{i}" for i in range(7)]

    def handler(request: httpx.Request) -> httpx.Response:
        offset = int(request.url.params["offset"])
        page = names[offset : offset + 3]
        return httpx.Response(200, json={"items": [_mc(n) for n in page], "count": len(names)})

    assert [m.name for m in _client(handler).list_miniclusters()] == names


def test_bad_input_is_rejected_before_sending() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("nothing should be sent")

    with pytest.raises(ValueError, match=r"gpus\.min"):
        _client(handler).create_minicluster(
            "study", {"gpuType": "H100", "gpus": {"min": 9, "max": 1}}
        )


def test_wait_for_cargos_until_running_with_updates() -> None:
    phases = iter(["Pending", "Placed", "Running"])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [_cargo("c1", next(phases))], "count": 1})

    seen: list[str] = []
    cargos = _client(handler).wait_for_cargos(
        ["c1"], interval=0.01, on_update=lambda cs: seen.append(str(cs[0].status.phase))
    )
    assert seen == ["Pending", "Placed", "Running"]
    assert str(cargos[0].status.phase) == "Running"


def test_wait_for_cargos_polls_soon_then_backs_off_to_the_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cargo often runs within a fraction of a second: the first polls come 50 ms apart, so
    ``--wait`` ends soon after; a long wait settles at one poll per ``interval``."""
    phases = iter(["Pending"] * 6 + ["Running"])
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [_cargo("c1", next(phases))], "count": 1})

    monkeypatch.setattr("crane.client.time.sleep", slept.append)
    _client(handler).wait_for_cargos(["c1"], interval=0.25)
    assert slept == [0.05, 0.1, 0.2, 0.25, 0.25, 0.25]


def test_wait_for_cargos_fails_fast_and_times_out() -> None:
    def failed(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [_cargo("c1", "Failed", "OOM")], "count": 1})

    with pytest.raises(CraneError, match="cargo c1 is Failed: OOM"):
        _client(failed).wait_for_cargos(["c1"], interval=0.01)

    def pending(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"items": [_cargo("c1")], "count": 1})

    with pytest.raises(WaitTimeout, match="c1"):
        _client(pending).wait_for_cargos(["c1"], timeout=0.05, interval=0.01)


EVENT = {
    "type": "Placed",
    "tenant": "t",
    "miniCluster": "study",
    "cargo": "study-0",
    "gpus": 2,
    "time": "2026-01-01T00:00:00Z",
}


def test_events_reconnect_with_last_event_id() -> None:
    last_ids: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        last_ids.append(request.headers.get("last-event-id"))
        n = len(last_ids)
        body = (
            f": keepalive\nretry: 10\nid: {n}\ndata: {json.dumps({**EVENT, 'gpus': n})}\n\n"
            'data: {"type": "SomethingNew"}\n\n'
        )
        return httpx.Response(200, text=body, headers={"content-type": "text/event-stream"})

    events = _client(handler).events(last_event_id="0")
    got = [next(events), next(events)]
    assert [e.gpus for e in got] == [1, 2]
    assert str(got[0].type) == "Placed" and got[0].cargo == "study-0"
    assert last_ids == ["0", "1"]


def test_async_client_shares_requests_and_errors() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(":grow"):
            assert request.headers["idempotency-key"]
            return httpx.Response(200, json={**GROW_OK, "result": "partial", "added": 1})
        return _problem(404, "cargo x not found")

    async def run() -> None:
        async with AsyncClient(
            "http://crane.test", "s", transport=httpx.MockTransport(handler)
        ) as client:
            result = await client.grow("study", 2)
            assert result.result is GrowOutcome.PARTIAL
            with pytest.raises(NotFound, match="cargo x not found"):
                await client.get_cargo("x")

    asyncio.run(run())


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRANE_CONFIG_DIR", str(tmp_path))
    monkeypatch.setenv("CRANE_API_URL", "http://from-env:1/")
    monkeypatch.setenv("CRANE_TOKEN", "env-token")
    client = Client()
    assert (client.url, client.token) == ("http://from-env:1", "env-token")


def test_the_sdk_imports_no_server_libraries() -> None:
    code = (
        "import sys, crane.client; "
        "bad = {'fastapi', 'sqlmodel', 'sqlalchemy', 'kopf', 'kubernetes', 'docker', 'typer'} "
        "& set(sys.modules); print(sorted(bad)); sys.exit(bool(bad))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hold_and_release_patch_spec_suspend_sync_and_async() -> None:
    seen: list[tuple[str, str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((request.method, request.url.path, body))
        return httpx.Response(200, json={**_mc("study"), "spec": {**MC_SPEC, **body}})

    client = _client(handler)
    assert client.hold("study").spec.suspend is True
    assert client.release("study").spec.suspend is False

    async def run() -> None:
        async with AsyncClient(
            "http://crane.test", "s", transport=httpx.MockTransport(handler)
        ) as aclient:
            assert (await aclient.hold("study")).spec.suspend is True
            assert (await aclient.release("study")).spec.suspend is False

    asyncio.run(run())
    assert (
        seen
        == [
            ("PATCH", "/v1/miniclusters/study", {"suspend": True}),
            ("PATCH", "/v1/miniclusters/study", {"suspend": False}),
        ]
        * 2
    )


def test_logs_since_is_sent_as_whole_seconds() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="a\n")

    client = _client(handler)
    assert client.logs("job", replica=1, tail=5, since=90.5) == "a\n"
    client.logs("job")
    assert dict(seen[0].url.params) == {
        "replica": "1",
        "follow": "false",
        "tail": "5",
        "sinceSeconds": "91",
    }
    assert "sinceSeconds" not in seen[1].url.params


def test_exec_posts_the_command_and_keeps_exec_unsupported_a_conflict() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/kwok:exec"):
            return _problem(409, "a node simulated by kwok", type="https://crane.dev/problems/x")
        return httpx.Response(200, json={"exitCode": 3, "output": "hi\n"})

    client = _client(handler)
    result = client.exec("job", ["sh", "-c", "echo hi; exit 3"], replica=1, timeout=5)
    assert (result.exit_code, result.output) == (3, "hi\n")
    assert seen[0].url.path == "/v1/cargos/job:exec"
    assert json.loads(seen[0].content) == {
        "replica": 1,
        "command": ["sh", "-c", "echo hi; exit 3"],
        "timeoutSeconds": 5,
    }
    with pytest.raises(Conflict, match="kwok") as raised:
        client.exec("kwok", ["true"])
    assert raised.value.status == 409
    assert len(seen) == 2, "exec was retried"


def test_an_https_api_is_always_verified_and_plain_http_loads_no_ca_bundle() -> None:
    import ssl

    from crane.client import Client

    with Client("https://crane.example:8443", "t") as secure:
        pool = secure._http._transport._pool  # type: ignore[attr-defined]
        assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
        assert pool._ssl_context.check_hostname
    with Client("http://127.0.0.1:8080", "t") as plain:
        assert not plain._tls(), "no TLS connection is ever made to an http:// API"
