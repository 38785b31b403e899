"""What a session says about who is asking, and how one begins and ends.

A session holds only identifiers, never PHI: the account's public id, its realm, a staff role,
which patient the pages show (``acting_for``) and with what access. Beginning a session always
gives it a new key, so a key planted before sign-in is worthless.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.types import Scope

from portal.identity.session_store import ROTATE


class Realm(enum.StrEnum):
    PATIENT = "patient"
    """A patient, or a proxy acting for patients."""
    STAFF = "staff"
    GUEST = "guest"
    """Opened with a statement code and birth date: that statement only, to view and pay it."""


class Access(enum.StrEnum):
    """What the signed-in person may see of the patient they act for."""

    SELF = "self"
    GUARDIAN = "guardian"
    CAREGIVER = "caregiver"
    BILLING = "billing"
    """Statements, payments and plans; no appointments or clinical text."""
    GUEST = "guest"


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking, read from the session."""

    realm: Realm
    account_id: str | None
    role: str | None = None
    acting_for: str | None = None
    access: Access | None = None
    statement_id: str | None = None
    """Guests only: the one statement they may see."""

    @classmethod
    def from_session(cls, session: dict[str, Any]) -> Viewer | None:
        try:
            realm = Realm(session["realm"])
        except (KeyError, ValueError):
            return None
        access = session.get("access")
        return cls(
            realm=realm,
            account_id=session.get("account_id"),
            role=session.get("role"),
            acting_for=session.get("acting_for"),
            access=Access(access) if access else None,
            statement_id=session.get("statement_id"),
        )

    @property
    def sees_clinical(self) -> bool:
        """Appointments and clinical text are hidden from billing delegates and guests."""
        return self.access in {Access.SELF, Access.GUARDIAN, Access.CAREGIVER}


def viewer(connection: ASGIConnection) -> Viewer | None:
    return Viewer.from_session(connection.session)


def _client_facts(connection: ASGIConnection) -> dict[str, str]:
    client = connection.client
    return {
        "address": client.host if client else "",
        "user_agent": connection.headers.get("user-agent", "")[:200],
    }


def begin(connection: ASGIConnection, now: datetime, **values: str | None) -> None:
    """Replace whatever session there was with a new one (under a new key) holding ``values``."""
    _rotate(connection.scope)
    connection.set_session(
        {key: value for key, value in values.items() if value is not None}
        | {"signed_in_at": now.isoformat()}
        | _client_facts(connection)
    )


def end(connection: ASGIConnection) -> None:
    """End the session on the server and tell the browser to forget its cookie."""
    connection.clear_session()


def _rotate(scope: Scope) -> None:
    scope[ROTATE] = True  # type: ignore[literal-required]
