"""One audit row for each read or write of patient data (PROMISES.md 8), written by the page that did it.

A page calls :func:`record_access` once it has shown or changed something of the patient's: who
(the session's account and role), acting as whom (the patient the pages show), what (``action``,
e.g. ``statement.read``), on which object (``subject``, an id — never a name or a code printed on a
bill) and the outcome.
"""

from __future__ import annotations

from collections.abc import Mapping

from litestar.connection import ASGIConnection

from portal.audit.log import Auditor, Entry
from portal.identity.sessions import Viewer


def who(viewer: Viewer | None) -> dict[str, str | None]:
    """The actor fields of an audit entry for whoever the session says is asking."""
    if viewer is None:
        return {"actor": "anonymous", "actor_role": "anonymous", "acting_as": None}
    return {
        "actor": f"account:{viewer.account_id}" if viewer.account_id else viewer.realm.value,
        "actor_role": viewer.role or viewer.realm.value,
        "acting_as": viewer.acting_for,
    }


def entry_for(
    connection: ASGIConnection,
    action: str,
    subject: str | None,
    *,
    outcome: str = "ok",
    detail: Mapping[str, str] | None = None,
) -> Entry:
    client = connection.client
    return Entry(
        **who(Viewer.from_session(connection.scope.get("session") or {})),  # type: ignore[arg-type]
        action=action,
        subject=subject,
        outcome=outcome,
        address=client.host if client else "",
        detail=dict(detail or {}),
    )


async def record_access(
    connection: ASGIConnection,
    action: str,
    subject: str | None,
    *,
    outcome: str = "ok",
    detail: Mapping[str, str] | None = None,
) -> None:
    """Append the row for ``action`` on ``subject`` by whoever this request's session is."""
    auditor: Auditor = connection.app.state["auditor"]
    await auditor.record(entry_for(connection, action, subject, outcome=outcome, detail=detail))
