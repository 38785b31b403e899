"""Response headers every answer carries (PROMISES.md 19).

A strict Content-Security-Policy (no inline script, no eval, nothing from other origins), HSTS,
nosniff, a Referrer-Policy that leaks no path (paths can name a patient's statement), and
``Cache-Control: no-store`` on everything but fingerprinted static files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

POLICY: dict[str, tuple[str, ...]] = {
    "default-src": ("'none'",),
    "script-src": ("'self'",),
    "style-src": ("'self'",),
    "img-src": ("'self'", "data:"),
    "font-src": ("'self'",),
    "connect-src": ("'self'",),
    "manifest-src": ("'self'",),
    "form-action": ("'self'",),
    "frame-ancestors": ("'none'",),
    "base-uri": ("'none'",),
}
EXTRA_SOURCES = "carefront.csp_sources"
"""Scope key: sources one page adds to the policy (the payment page, for the gateway's element)."""


def content_security_policy(extra: Mapping[str, Sequence[str]] | None = None) -> str:
    """The policy, with ``extra`` sources added to their directives ('none' gives way to them)."""
    directives = dict(POLICY)
    for directive, sources in (extra or {}).items():
        base = [source for source in directives.get(directive, ()) if source != "'none'"]
        directives[directive] = tuple(dict.fromkeys([*base, *sources]))
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items() if sources)


CONTENT_SECURITY_POLICY = content_security_policy()


def allow_sources(connection: ASGIConnection, sources: Mapping[str, Sequence[str]]) -> None:
    """Widen this one response's policy by ``sources`` (a gateway's declared origins, already checked
    by carefront_sdk.models.GatewayPage); every other response keeps the strict policy."""
    connection.scope[EXTRA_SOURCES] = sources  # type: ignore[literal-required]


SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "strict-transport-security": "max-age=63072000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(self), geolocation=(), microphone=(), payment=(self), usb=()",
}

STATIC_PREFIX = "/static/"
STATIC_CACHE = "public, max-age=31536000, immutable"


def security_headers_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: add the headers above to every HTTP response."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        is_static = scope["path"].startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
                if extra := scope.get(EXTRA_SOURCES):
                    headers["content-security-policy"] = content_security_policy(extra)
                # Static URLs carry a content hash, so they may be cached for a year; nothing else may.
                headers["cache-control"] = STATIC_CACHE if is_static and message["status"] == 200 else "no-store"
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
