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
    impersonator: str | None = None
    """While a member of staff acts as the patient: their account's public id (PROMISES.md 7)."""
    acting_until: datetime | None = None
    """While acting: when it ends, at the latest (UTC)."""

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
            impersonator=session.get(IMPERSONATOR) if realm is Realm.STAFF else None,
            acting_until=_moment(session.get(ACTING_UNTIL)) if realm is Realm.STAFF else None,
        )

    @property
    def impersonating(self) -> bool:
        """A member of staff is acting as the patient ``acting_for``: they see what the patient sees."""
        return self.impersonator is not None and self.acting_for is not None and self.acting_until is not None

    @property
    def sees_clinical(self) -> bool:
        """Appointments and clinical text are hidden from billing delegates and guests."""
        return self.access in {Access.SELF, Access.GUARDIAN, Access.CAREGIVER}


IMPERSONATOR = "impersonator"
"""Session key: the staff account acting as the patient. Pages that change credentials, contact
details, MFA or payment methods refuse while it is set (PROMISES.md 7)."""
ACTING_UNTIL = "acting_until"
ACTING_ACCOUNT = "acting_account"
"""Session key: the patient's own portal account, whose account pages the representative sees."""
ACTING_RECORD = "acting_record"
"""Session key: the public id of the record of this act-as (portal.audit.tables.ActingSession)."""
_ACTING_KEYS = ("acting_for", "access", IMPERSONATOR, ACTING_UNTIL, ACTING_ACCOUNT, ACTING_RECORD)


def _moment(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


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


def begin_acting(
    connection: ASGIConnection, *, patient_id: str, patient_account: str, record: str, until: datetime
) -> None:
    """A staff session starts acting as the patient: same staff identity, a new key (PROMISES.md 3)."""
    staff = without_acting(connection.session)
    _rotate(connection.scope)
    connection.set_session(
        staff
        | {
            "acting_for": patient_id,
            "access": Access.SELF.value,
            IMPERSONATOR: staff["account_id"],
            ACTING_ACCOUNT: patient_account,
            ACTING_RECORD: record,
            ACTING_UNTIL: until.isoformat(),
        }
    )


def end_acting(connection: ASGIConnection) -> None:
    """Back to the staff member's own session, under a new key again."""
    _rotate(connection.scope)
    connection.set_session(without_acting(connection.session))


def without_acting(session: dict[str, Any]) -> dict[str, Any]:
    """The staff member's own session, as it was before they began acting."""
    return {key: value for key, value in session.items() if key not in _ACTING_KEYS}


def end(connection: ASGIConnection) -> None:
    """End the session on the server and tell the browser to forget its cookie."""
    connection.clear_session()


def _rotate(scope: Scope) -> None:
    scope[ROTATE] = True  # type: ignore[literal-required]
