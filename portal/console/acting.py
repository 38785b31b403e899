"""Acting as a patient (PROMISES.md 7): the rules, and the record of each time it happens.

A service: no HTTP. A representative (or supervisor) acts as a patient only with a reason and after
verifying the caller, only as a patient who has a portal account of their own (acting shows exactly
what that patient sees), and never as anyone who is also on staff. It ends after at most
``[console] acting_minutes`` (30 at most), or when they end it, or when they start acting for another.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from portal.audit.tables import ActingSession
from portal.i18n import N_
from portal.identity.tables import Account

REASONS = {
    "caller_billing": N_("The patient called about a bill"),
    "caller_payment": N_("The patient called to pay or set up a plan"),
    "caller_portal": N_("The patient needs help with the portal"),
    "question": N_("Answering the patient's billing question"),
    "other": N_("Another reason"),
}
IDENTITY_CHECKS = {
    "name": N_("Full name"),
    "birth_date": N_("Date of birth"),
}
ONE_MORE_CHECK = {
    "address": N_("Home address"),
    "statement_code": N_("Statement code"),
    "last_payment": N_("Last payment (date and amount)"),
}
MAX_NOTE = 500


class CannotAct(Exception):
    """Acting as this patient is not possible; ``message`` (an English msgid) says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


NO_ACCOUNT = N_(
    "This patient has no portal account, so there is nothing they see to act in. Help them from this page, "
    "or send them a pay link."
)
STAFF_ACCOUNT = N_("Staff accounts cannot be acted as.")


@dataclass(frozen=True, slots=True)
class Grounds:
    """What the representative gives before acting: the reason, a note, and the checks they made."""

    reason: str
    note: str
    checks: frozenset[str]


def problems(grounds: Grounds) -> dict[str, str]:
    """Field name to the English msgid of what is missing before acting."""
    found = {}
    if grounds.reason not in REASONS:
        found["reason"] = N_("Choose why you are acting as the patient.")
    if grounds.reason == "other" and not grounds.note.strip():
        found["note"] = N_("Say why, in a few words.")
    elif len(grounds.note) > MAX_NOTE:
        found["note"] = N_("Keep the note under 500 characters.")
    if not set(IDENTITY_CHECKS) <= grounds.checks or not (grounds.checks & set(ONE_MORE_CHECK)):
        found["checks"] = N_("Verify the caller's full name, date of birth and one more detail first.")
    return found


async def account_to_act_as(patient_id: str, staff_account: str) -> dict[str, Any]:
    """The patient's own portal account; ``CannotAct`` when there is none, or when the person is on staff."""
    accounts = await Account.select().where(Account.patient_id == patient_id).run()
    if any(account["realm"] == "staff" for account in accounts) or any(
        str(account["public_id"]) == staff_account for account in accounts
    ):
        raise CannotAct(STAFF_ACCOUNT)
    patient = next((account for account in accounts if account["realm"] == "patient"), None)
    if patient is None:
        raise CannotAct(NO_ACCOUNT)
    return patient


async def begin(
    *, staff_account: str, staff_role: str, patient_id: str, grounds: Grounds, now: datetime, minutes: int
) -> dict[str, Any]:
    """Record the start; returns the record (its ``ends_at`` is when it ends by itself)."""
    (record,) = (
        await ActingSession.insert(
            ActingSession(
                public_id=uuid.uuid4(),
                staff_account=staff_account,
                staff_role=staff_role,
                patient_id=patient_id,
                reason=grounds.reason,
                note=grounds.note.strip(),
                verified=",".join(sorted(grounds.checks & (set(IDENTITY_CHECKS) | set(ONE_MORE_CHECK)))),
                started_at=now,
                ends_at=now + timedelta(minutes=minutes),
            )
        )
        .returning(*ActingSession.all_columns())
        .run()
    )
    return record


async def finish(record_id: str | None, how: str, now: datetime) -> None:
    """Note how and when it ended (ended, expired or replaced); a second finish changes nothing."""
    if not record_id:
        return
    await (
        ActingSession.update({ActingSession.ended_at: now, ActingSession.ended_how: how})
        .where((ActingSession.public_id == record_id) & ActingSession.ended_at.is_null())
        .run()
    )


async def reasons_of(record_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The records named, by public id (the "who accessed my account" page reads their reasons)."""
    if not record_ids:
        return {}
    rows = await ActingSession.select().where(ActingSession.public_id.is_in(record_ids)).run()
    return {str(row["public_id"]): row for row in rows}


def minutes_left(until: datetime, now: datetime) -> int:
    """Whole minutes left, rounded up, so "1 minute left" shows until the very end."""
    seconds = (until - now).total_seconds()
    return max(0, -int(-seconds // 60))
