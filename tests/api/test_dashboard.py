"""The dashboard's server side against a real ``crane serve``: the page at ``/`` (it answered
404 ``no route GET /`` before), its security headers, the cookie session, CSRF on changes."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import ADMIN, ROOT, Server, start_server

STATIC = ROOT / "crane" / "api" / "static"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("dash")
    running = start_server(
        f"sqlite:///{tmp / 'crane.db'}", tmp / "serve.log", extra=["--bootstrap-token", ADMIN]
    )
    yield running
    running.process.terminate()
    running.process.wait(20)


def _guarded(resp: httpx.Response) -> None:
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"


def test_root_serves_the_dashboard_with_security_headers(server: Server) -> None:
    with httpx.Client(base_url=server.url) as web:
        page = web.get("/")
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "<title>Crane</title>" in page.text
        _guarded(page)
        for src in re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', page.text):
            asset = web.get(src)
            assert asset.status_code == 200, src
            _guarded(asset)
        assert (
            web.get("/ui/assets/app.js")
            .headers["content-type"]
            .startswith(("text/javascript", "application/javascript"))
        )


def test_the_page_has_no_inline_script_or_style() -> None:
    html = (STATIC / "index.html").read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag, tag
    assert "<style" not in html and " style=" not in html and "javascript:" not in html
    for js in STATIC.glob("*.js"):
        text = js.read_text()
        assert "eval(" not in text and "new Function" not in text, js.name
        assert ' style="' not in text, f"{js.name}: inline style attributes break the CSP"


def test_sign_in_sets_an_httponly_strict_cookie_and_never_echoes_the_token(
    server: Server,
) -> None:
    with httpx.Client(base_url=server.url) as web:
        assert web.get("/ui/session").json() == {"signedIn": False}
        # no CSRF header: refused (a cross-site form cannot sign a browser in)
        assert web.post("/ui/session", json={"token": ADMIN}).status_code == 403
        bad = web.post("/ui/session", json={"token": "crane_x_y"}, headers={"X-Crane-CSRF": "1"})
        assert bad.status_code == 401
        assert bad.headers["content-type"] == "application/problem+json"
        made = web.post("/ui/session", json={"token": ADMIN}, headers={"X-Crane-CSRF": "1"})
        assert made.status_code == 200, made.text
        assert made.json()["scope"] == "admin" and ADMIN not in made.text
        cookie = made.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
        assert ADMIN.split("_")[-1] not in cookie
        assert web.get("/ui/session").json()["signedIn"] is True
        # the cookie works for reads, including the event stream EventSource opens
        assert web.get("/v1/whoami").json()["scope"] == "admin"
        with web.stream("GET", "/v1/events") as events:
            assert events.status_code == 200
            assert events.headers["content-type"].startswith("text/event-stream")


def test_changes_with_the_cookie_need_the_csrf_header(server: Server) -> None:
    with httpx.Client(base_url=server.url) as web:
        made = web.post("/ui/session", json={"token": ADMIN}, headers={"X-Crane-CSRF": "1"})
        assert made.status_code == 200
        forged = web.post("/v1/tenants", json={"name": "forged"})
        assert forged.status_code == 403
        assert "X-Crane-CSRF" in forged.json()["detail"]
        assert web.get("/v1/tenants").json()["count"] == 1  # nothing was created
        done = web.post("/v1/tenants", json={"name": "viacookie"}, headers={"X-Crane-CSRF": "1"})
        assert done.status_code == 201, done.text
        # signing out ends the session at once
        assert web.delete("/ui/session", headers={"X-Crane-CSRF": "1"}).status_code == 204
        assert web.get("/v1/whoami").status_code == 401
    # bearer clients are untouched: no CSRF header needed
    with server.client() as api:
        assert api.post("/v1/tenants", json={"name": "viabearer"}).status_code == 201


def test_a_revoked_token_ends_its_dashboard_session(server: Server) -> None:
    with server.client() as api:
        made = api.post("/v1/tokens", json={"scope": "admin"}).json()
    with httpx.Client(base_url=server.url) as web:
        signed = web.post(
            "/ui/session", json={"token": made["token"]}, headers={"X-Crane-CSRF": "1"}
        )
        assert signed.status_code == 200
        with server.client() as api:
            assert api.delete(f"/v1/tokens/{made['id']}").status_code == 204
        assert web.get("/ui/session").json() == {"signedIn": False}
        assert web.get("/v1/whoami").status_code == 401


def test_the_wheel_ships_every_asset() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["crane.api"]
    for asset in STATIC.iterdir():
        rel = str(Path("static") / asset.name)
        assert any(fnmatch.fnmatch(rel, p) for p in patterns), f"{rel} is not package data"


def test_one_token_holds_a_bounded_number_of_sessions_and_the_oldest_signs_out(
    server: Server,
) -> None:
    """Each sign-in kept a session in the server's memory for 12 hours, however many one token
    opened: a script signing in in a loop grew the server without end. A token now holds at
    most ``SESSIONS_PER_TOKEN``; a sign-in past that signs its oldest session out, and other
    tokens' sessions are untouched."""
    from crane.api.dashboard import SESSIONS_PER_TOKEN

    with server.client() as api:
        other = api.post("/v1/tokens", json={"scope": "admin"}).json()["token"]
    csrf = {"X-Crane-CSRF": "1"}
    browsers = [httpx.Client(base_url=server.url) for _ in range(SESSIONS_PER_TOKEN + 2)]
    bystander = httpx.Client(base_url=server.url)
    try:
        assert bystander.post("/ui/session", json={"token": other}, headers=csrf).is_success
        for web in browsers:
            assert web.post("/ui/session", json={"token": ADMIN}, headers=csrf).is_success
        signed = [web.get("/ui/session").json()["signedIn"] for web in browsers]
        assert signed == [False, False] + [True] * SESSIONS_PER_TOKEN
        assert browsers[0].get("/v1/whoami").status_code == 401
        assert bystander.get("/v1/whoami").json()["scope"] == "admin"
    finally:
        for web in [*browsers, bystander]:
            web.close()


def test_api_answers_are_never_cached_sniffed_framed_or_shared_cross_origin(
    server: Server,
) -> None:
    """A minted token's secret came back with no ``Cache-Control``: a browser or proxy could keep
    it on disk. Now every API answer says ``no-store``, ``nosniff`` and may not be framed, and
    no origin is ever granted a cross-origin read (no ``Access-Control-Allow-Origin``)."""
    evil = {"Origin": "https://evil.example"}
    with server.client() as admin:
        minted = admin.post(
            "/v1/tokens", json={"scope": "admin", "description": "headers"}, headers=evil
        )
        assert minted.status_code == 201, minted.text
        admin.delete(f"/v1/tokens/{minted.json()['id']}")
        answers = [
            minted,
            admin.get("/v1/miniclusters", headers=evil),
            admin.get("/v1/nodes", headers=evil),
            admin.get("/v1/nope", headers=evil),  # a 404 problem+json
            admin.options("/v1/tokens", headers={**evil, "Access-Control-Request-Method": "POST"}),
        ]
    with httpx.Client(base_url=server.url) as anon:
        answers += [anon.get("/v1/miniclusters"), anon.get("/healthz"), anon.get("/readyz")]
    for resp in answers:
        where = f"{resp.request.method} {resp.request.url.path} -> {resp.status_code}"
        assert resp.headers.get("cache-control") == "no-store", where
        assert resp.headers.get("x-content-type-options") == "nosniff", where
        assert resp.headers.get("x-frame-options") == "DENY", where
        assert "frame-ancestors 'none'" in resp.headers.get("content-security-policy", ""), where
        assert not any(h.startswith("access-control-") for h in resp.headers), where
