"""While a member of staff acts as a patient: the time limit, and the banner on every htmx partial.

Runs inside the session middleware, on every request of a session that acts as a patient:

- past its end (``[console] acting_minutes``, 30 at most; PROMISES.md 7) the acting ends before the
  request is served: the record and the audit log say it expired, the session gets a new key with the
  staff identity only (PROMISES.md 3), and the browser goes back to the console's page of the patient;
- otherwise the minutes left and the patient's name (from the patient snapshot: the EHR is asked at
  most once in 30 seconds) go on ``request.state`` for the banner (templates/console/acting_banner.html,
  in base.html), and an htmx partial gets the banner's status line appended as an ``hx-swap-oob``
  element, so no partial ever shows a patient's data without it. It runs inside the compression
  middleware (portal/app.py), so a partial goes out compressed with its status line.
"""

from __future__ import annotations

from typing import Any

from litestar.datastructures import MutableScopeHeaders
from litestar.plugins.htmx import HTMXHeaders, HTMXRequest
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from portal.audit.access import who
from portal.audit.log import Auditor, Entry
from portal.console import acting
from portal.identity import sessions
from portal.identity.acting_for import patient_name
from portal.identity.sessions import Viewer

MINUTES_LEFT = "acting_minutes_left"
"""``request.state`` key: whole minutes left, for the banner's countdown."""
PATIENT_NAME = "impersonated_name"
"""``request.state`` key: the name of the patient acted as, for the banner (None when the EHR is down)."""
STATUS_TEMPLATE = "console/_acting_status.html"


def acting_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope.get("session")
        current = Viewer.from_session(session) if isinstance(session, dict) else None
        if current is None or not current.impersonating or current.acting_until is None:
            await app(scope, receive, send)
            return
        now = scope["app"].state["plugin_host"].clock()
        if current.acting_until <= now:
            await _expire(scope, send, current, now)
            return
        state = scope.setdefault("state", {})  # type: ignore[typeddict-item]
        state[MINUTES_LEFT] = acting.minutes_left(current.acting_until, now)
        state[PATIENT_NAME] = await patient_name(scope["app"].state["plugin_host"], str(current.acting_for))
        request = HTMXRequest(scope, receive)
        if request.htmx and not request.htmx.boosted:
            await app(scope, receive, _with_status_line(scope, send, current))
        else:
            await app(scope, receive, send)

    return middleware


async def _expire(scope: Scope, send: Send, current: Viewer, now: Any) -> None:
    session: dict[str, Any] = scope["session"]  # type: ignore[assignment]
    await acting.finish(session.get(sessions.ACTING_RECORD), "expired", now)
    auditor: Auditor = scope["app"].state["auditor"]
    client = scope.get("client")
    await auditor.record(
        Entry(
            **who(current),  # type: ignore[arg-type]
            action="acting.end",
            subject=session.get(sessions.ACTING_RECORD),
            outcome="expired",
            address=client[0] if client else "",
        )
    )
    scope["session"] = sessions.without_acting(session)  # type: ignore[typeddict-unknown-key]
    scope[sessions.ROTATE] = True  # type: ignore[literal-required]
    target = f"/console/patients/{current.acting_for}?ended=expired"
    request = HTMXRequest(scope)
    headers: list[tuple[bytes, bytes]] = [(b"cache-control", b"no-store"), (b"content-length", b"0")]
    if request.htmx:
        status = 200
        headers.append((HTMXHeaders.REDIRECT.value.lower().encode(), target.encode()))
    else:
        status = 303
        headers.append((b"location", target.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def _with_status_line(scope: Scope, send: Send, current: Viewer) -> Send:
    """``send``, with the banner's status line appended to an HTML body."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            content_type = MutableScopeHeaders.from_message(message).get("content-type", "")  # type: ignore[arg-type]
            if not content_type.startswith("text/html"):
                await send(message)
                return
            start.update(message)
            return
        if message["type"] != "http.response.body" or not start:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(chunks) + _status_line(scope, current).encode()
        headers = MutableScopeHeaders.from_message(start)  # type: ignore[arg-type]
        headers["content-length"] = str(len(body))
        await send(start)  # type: ignore[arg-type]
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return wrapped


def _status_line(scope: Scope, current: Viewer) -> str:
    state = scope.get("state", {})
    template = scope["app"].template_engine.get_template(STATUS_TEMPLATE)  # type: ignore[union-attr]
    return template.render(
        name=state.get(PATIENT_NAME),
        minutes_left=state.get(MINUTES_LEFT, 0),
        until=current.acting_until.isoformat() if current.acting_until else "",
        out_of_band=True,
    )
