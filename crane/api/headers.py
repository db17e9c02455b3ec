"""The security headers of every answer, set in one place (the outermost middleware).

The dashboard's own responses (``/`` and ``/ui/...``) get a Content-Security-Policy that allows
only the page's own scripts, styles and calls (no inline script, no eval). Every other answer
(``/v1``, ``/healthz``, ``/readyz``, ``/metrics``, errors) gets ``default-src 'none'``: JSON is
never a document to run anything in. All answers say ``nosniff``, may not be framed
(``X-Frame-Options: DENY`` and ``frame-ancestors 'none'``), send no ``Referer`` onwards, and,
unless the route chose its own ``Cache-Control`` (the event stream's ``no-cache``) or it is a
dashboard asset, are
``Cache-Control: no-store``: a minted token's secret or a tenant's objects must not be kept by a
browser's or a proxy's cache. No ``Access-Control-Allow-*`` header is ever sent: no other origin
may read an answer. FastAPI's ``/docs`` and ``/redoc`` pages are left without a CSP (they load
their viewer from elsewhere) but keep the other headers.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)
DASHBOARD = (
    (b"content-security-policy", DASHBOARD_CSP.encode()),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    *COMMON,
)
API = ((b"content-security-policy", API_CSP.encode()), *COMMON)
ASSETS = "/ui/assets/"
"""The dashboard's scripts and styles: public, revalidated by their ETag rather than no-store."""
VIEWERS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
"""FastAPI's API viewers: HTML pages that load scripts from elsewhere, so no CSP of ours."""


def headers_for(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The security headers an answer to ``path`` carries (``Cache-Control`` aside)."""
    if path == "/" or path.startswith("/ui/"):
        return DASHBOARD
    if path in VIEWERS:
        return COMMON
    return API


class SecurityHeaders:
    """Adds :func:`headers_for`'s headers, and ``Cache-Control: no-store`` where the route set
    none, to every HTTP answer; drops any ``Access-Control-Allow-*`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the call on, setting the security headers on its answer."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = headers_for(scope.get("path", ""))
        names = {k for k, _ in added}
        store = not scope.get("path", "").startswith(ASSETS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in names and not k.lower().startswith(b"access-control-")
                ]
                if store and not any(k.lower() == b"cache-control" for k, _ in kept):
                    kept.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*kept, *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
