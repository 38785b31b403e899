"""Response headers every answer carries (PROMISES.md 19).

A strict Content-Security-Policy (no inline script, no eval, nothing from other origins), HSTS,
nosniff, a Referrer-Policy that leaks no path (paths can name a patient's statement), and
``Cache-Control: no-store`` on everything but fingerprinted static files.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)

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
                # Static URLs carry a content hash, so they may be cached for a year; nothing else may.
                headers["cache-control"] = STATIC_CACHE if is_static and message["status"] == 200 else "no-store"
            await send(message)

        await app(scope, receive, send_with_headers)

    return middleware
