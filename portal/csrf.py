"""CSRF protection (PROMISES.md 4): Litestar's double-submit check, refusing what it would crash on.

Litestar compares tokens with ``secrets.compare_digest``, which raises ``TypeError`` for a ``str``
holding anything but ASCII. A token of ours is hex; a form field, header or cookie carrying "¿" is
forged, and must get the same "form has expired" 403 as any other forged token, not a 500 (wapiti
found it: tests/scans/test_wapiti.py). Litestar wires its own middleware from ``csrf_config``, so
the portal declares this one as middleware instead.
"""

from __future__ import annotations

from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware


class AsciiTokenCSRFMiddleware(CSRFMiddleware):
    def _decode_csrf_token(self, token: str) -> str | None:
        return super()._decode_csrf_token(token) if token.isascii() else None


def csrf_protection(config: CSRFConfig) -> DefineMiddleware:
    """The middleware to list in place of ``csrf_config=config``."""
    return DefineMiddleware(AsciiTokenCSRFMiddleware, config=config)
