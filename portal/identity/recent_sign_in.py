"""A recent sign-in: what changing credentials, contact details or payment methods needs (PROMISES.md 6).

Recent means the session began, or its holder confirmed who they are (their password again, or a
one-time code), in the last ten minutes. Pages that change such things check :func:`is_recent` and
otherwise send the person to the ``account-confirm`` page, which calls :func:`confirmed`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from litestar.connection import ASGIConnection

RECENT = timedelta(minutes=10)
CONFIRMED_AT = "confirmed_at"
"""Session key: when the holder last confirmed who they are (ISO 8601, UTC)."""
_SIGNED_IN_AT = "signed_in_at"  # set by sessions.begin


def is_recent(session: dict[str, Any], now: datetime) -> bool:
    """True when the session began, or was confirmed, within the last ten minutes."""
    for key in (_SIGNED_IN_AT, CONFIRMED_AT):
        try:
            moment = datetime.fromisoformat(session[key])
        except (KeyError, TypeError, ValueError):
            continue
        if timedelta(0) <= now - moment <= RECENT:
            return True
    return False


def confirmed(connection: ASGIConnection, now: datetime) -> None:
    """Note in the session that its holder has just proved who they are."""
    connection.set_session({**connection.session, CONFIRMED_AT: now.isoformat()})
