"""Every denied request writes one audit row (PROMISES.md 8); and during every request, the app's
auditor is the one ``portal.audit.log.record_here`` writes through (failed sign-ins use it).

Denied means refused with 401 (no session — the browser may see a redirect to sign in), 403 (not
allowed, or a CSRF failure) or 404 from a route that takes an id (missing or someone else's: the
two look the same on purpose). The exception handler marks the scope; this middleware writes the
row once the response is sent. A 404 for a path no route knows is noise, not a denial.
"""

from __future__ import annotations

from litestar.types import ASGIApp, Receive, Scope, Send

from portal.audit.access import who
from portal.audit.log import Auditor, Entry
from portal.identity.sessions import Viewer
from portal.web.errors import DENIED


def audit_denials_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        auditor: Auditor = scope["app"].state["auditor"]
        token = auditor.serving()
        try:
            await app(scope, receive, send)
            code = scope.get(DENIED)
            if code is not None and (code != 404 or scope.get("path_params")):
                await auditor.record(denial(scope, code))
        finally:
            auditor.done(token)

    return middleware


def denial(scope: Scope, code: int) -> Entry:
    route = scope.get("path_template") or "unmatched"  # the template, so ids stay out of the detail
    client = scope.get("client")
    return Entry(
        **who(Viewer.from_session(scope.get("session") or {})),  # type: ignore[arg-type]
        action="request.denied",
        subject=None,
        outcome="denied",
        address=client[0] if client else "",
        detail={"status": str(code), "method": scope.get("method", ""), "route": route},
    )
