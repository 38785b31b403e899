"""The last step of every way in: record it, open a fresh session, or ask for the second factor first.

Password, one-time code, passkey and single sign-on all end here, so what a session holds and how
it is recorded is decided in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar.connection import ASGIConnection

from portal.audit.log import Auditor, Entry
from portal.identity import accounts, sessions
from portal.identity.sessions import Access, Realm

PENDING = "pending_sign_in"
"""Session key for a sign-in that passed its first factor and awaits the second."""


def needs_second_factor(account: dict[str, Any], method: str) -> bool:
    """A TOTP second factor is asked after a password or a code; a passkey is two factors already."""
    return account["totp_enabled_at"] is not None and method in {"password", "code"}


def await_second_factor(connection: ASGIConnection, account: dict[str, Any], method: str, now: datetime) -> None:
    """Hold the sign-in in a new, otherwise empty session until the second factor is given."""
    sessions.begin(connection, now, **{PENDING: str(account["public_id"]), "pending_method": method})


async def complete(connection: ASGIConnection, account: dict[str, Any], method: str, now: datetime) -> None:
    """Record the sign-in and open the account's session (under a new key)."""
    client = connection.client
    address = client.host if client else ""
    await accounts.record(
        account["id"], method, accounts.Outcome.SUCCEEDED, address, connection.headers.get("user-agent", ""), now
    )
    realm = Realm(account["realm"])
    acting_for = account["patient_id"] if realm is Realm.PATIENT else None
    auditor: Auditor = connection.app.state["auditor"]
    await auditor.record(
        Entry(
            actor=f"account:{account['public_id']}",
            actor_role=account["role"] or realm,
            action="sign_in",
            outcome="succeeded",
            acting_as=acting_for,
            address=address,
            detail={"method": method},
        )
    )
    sessions.begin(
        connection,
        now,
        account_id=str(account["public_id"]),
        realm=realm,
        role=account["role"],
        acting_for=acting_for,
        access=Access.SELF if acting_for else None,
        method=method,
    )
