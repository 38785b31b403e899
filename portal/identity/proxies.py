"""Proxies: who may act for a patient other than themselves, how that right begins, and how it ends.

A service: it knows the tables, the EHR's word on guardianship and the rules, nothing of HTTP.

- A **guardian** grant comes from the EHR. The account holder names a child (legal name, birth date
  and one identifier); the grant is made only when the EHR matches exactly one patient and that
  patient's related persons list the account holder as guardian (by their patient id, or else by
  name and birth date against the holder's own EHR record).
- A **caregiver** or **billing** grant comes from the patient's invitation: an email carrying a
  one-time invitation code (only its SHA-256 is stored) that works once, within 7 days.

A grant ends when the patient revokes it (invitations) or when the EHR stops listing the
guardianship (checked each time the proxy lists or chooses whom to act for). A parent's authority
ends at the child's 18th birthday: from then on only a relationship the EHR records as a legal
guardianship (relationship ``guardian``, FHIR's ``GUARD``) keeps a guardian grant alive, since an
EHR often keeps listing a mother or father as guardian long after their child came of age.
Revoked grants keep their row, for the record.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from carefront_sdk.adapters import EHR
from carefront_sdk.errors import NotFound
from carefront_sdk.models import Patient, PatientQuery, ProxyAccess, RelatedPerson

from portal.identity import accounts, throttle
from portal.identity.sessions import Access
from portal.identity.tables import ProxyGrant, ProxyInvitation

AGE_OF_MAJORITY = 18
LEGAL_GUARDIANSHIP = frozenset({"guardian", "legal guardian", "guard"})
"""Relationships (lower-cased) that stay a guardianship after the patient turns 18."""

INVITATION_LIFETIME = timedelta(days=7)
INVITED_ACCESS = (Access.CAREGIVER, Access.BILLING)

# Adding a child asks the EHR to match a person: limited like any identity matching (PROMISES.md 5).
ADD_MINOR_LIMIT = throttle.Limit(attempts=10, window=timedelta(hours=1))
# Each invitation sends an email: a patient's account must not become a way to spam.
INVITE_LIMIT = throttle.Limit(attempts=10, window=timedelta(days=1))
# An invitation code has 80 random bits, but guessing is still limited per address.
CODE_LIMIT = throttle.Limit(attempts=20, window=timedelta(minutes=15))

# Crockford's base32: no I, L, O or U, so a code read aloud or retyped survives.
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_LENGTH = 16
_LOOKALIKES = str.maketrans({"O": "0", "I": "1", "L": "1"})


@dataclass(frozen=True, slots=True)
class Person:
    """Someone the signed-in account may act for, with the name the EHR gives."""

    patient_id: str
    given_name: str
    family_name: str
    access: Access


def age_on(birth_date: date, today: date) -> int:
    return today.year - birth_date.year - ((today.month, today.day) < (birth_date.month, birth_date.day))


def names_the_holder(related: RelatedPerson, holder: Patient) -> bool:
    """Whether the EHR's related person is the account holder: by patient id, else name and birth date."""
    if related.patient_id_of_proxy is not None:
        return related.patient_id_of_proxy == holder.id
    return (
        related.birth_date == holder.birth_date
        and related.given_name.strip().casefold() == holder.given_name.strip().casefold()
        and related.family_name.strip().casefold() == holder.family_name.strip().casefold()
    )


def guardianship_listed(
    related_persons: Sequence[RelatedPerson], holder: Patient, patient: Patient, today: date
) -> bool:
    """Whether the EHR lists ``holder`` as ``patient``'s guardian today (see the module's note on age 18)."""
    adult = age_on(patient.birth_date, today) >= AGE_OF_MAJORITY
    return any(
        related.access is ProxyAccess.GUARDIAN
        and names_the_holder(related, holder)
        and (not adult or related.relationship.strip().casefold() in LEGAL_GUARDIANSHIP)
        for related in related_persons
    )


# --- Grants ---------------------------------------------------------------------------------------


async def _give(
    proxy_id: int, patient_id: str, access: Access, source: str, now: datetime, invitation_id: int | None = None
) -> dict[str, Any]:
    """The live grant for (proxy, patient), made or replaced so that it carries ``access``.

    Call inside a transaction: one live grant per proxy and patient is a unique index.
    """
    live = await _live(ProxyGrant.proxy == proxy_id, patient_id)
    if live is not None and live["access"] == access and live["source"] == source:
        return live
    if live is not None:
        await ProxyGrant.update({ProxyGrant.revoked_at: now}).where(ProxyGrant.id == live["id"]).run()
    (row,) = await (
        ProxyGrant.insert(
            ProxyGrant(
                proxy=proxy_id,
                patient_id=patient_id,
                access=access,
                source=source,
                invitation=invitation_id,
                created_at=now,
            )
        )
        .returning(*ProxyGrant.all_columns())
        .run()
    )
    return row


async def _live(proxy_condition: Any, patient_id: str) -> dict[str, Any] | None:
    return (
        await ProxyGrant.select()
        .where(proxy_condition & (ProxyGrant.patient_id == patient_id) & ProxyGrant.revoked_at.is_null())
        .first()
        .run()
    )


async def acts_for_others(account_id: int) -> bool:
    """Whether the account holds any live grant, so its pages offer to switch whom they show."""
    return await ProxyGrant.exists().where((ProxyGrant.proxy == account_id) & ProxyGrant.revoked_at.is_null()).run()


async def grant_is_live(account_public_id: str, patient_id: str, access: Access) -> bool:
    """Whether the account may still act for the patient with this access (checked on every request)."""
    live = await _live(ProxyGrant.proxy.public_id == account_public_id, patient_id)
    return live is not None and live["access"] == access


async def add_minor(
    account: dict[str, Any], ehr: EHR, query: PatientQuery, now: datetime, today: date
) -> dict[str, Any] | None:
    """The guardian grant for the child ``query`` names, made when the EHR says the holder is their guardian.

    None for no match, several matches, or no guardianship listed: callers answer all three alike.
    """
    if account["patient_id"] is None:
        return None
    matches = await ehr.match_patient(query)
    if len(matches) != 1 or matches[0].id == account["patient_id"]:
        return None
    child = matches[0]
    try:
        holder, related = await asyncio.gather(
            ehr.read_patient(account["patient_id"]), ehr.list_related_persons(child.id)
        )
    except NotFound:
        return None
    if not guardianship_listed(related, holder, child, today):
        return None
    async with ProxyGrant._meta.db.transaction():
        return await _give(account["id"], child.id, Access.GUARDIAN, "ehr", now)


async def _holder(ehr: EHR, account: dict[str, Any]) -> Patient | None:
    """The account holder's own EHR record, when they are a patient the EHR still knows."""
    if account["patient_id"] is None:
        return None
    try:
        return await ehr.read_patient(account["patient_id"])
    except NotFound:
        return None


async def people_for(account: dict[str, Any], ehr: EHR, now: datetime, today: date) -> list[Person]:
    """Whom the account may act for: its holder (when a patient), then every live grant, names from the EHR.

    Guardian grants are checked against the EHR again here; one it no longer lists ends now.
    """
    holder = await _holder(ehr, account)
    people = [Person(holder.id, holder.given_name, holder.family_name, Access.SELF)] if holder else []
    grants = (
        await ProxyGrant.select()
        .where((ProxyGrant.proxy == account["id"]) & ProxyGrant.revoked_at.is_null())
        .order_by(ProxyGrant.created_at)
        .run()
    )

    async def check(grant: dict[str, Any]) -> Person | None:
        try:
            patient = await ehr.read_patient(grant["patient_id"])
            related = await ehr.list_related_persons(patient.id) if grant["access"] == Access.GUARDIAN else ()
        except NotFound:
            return None
        if grant["access"] == Access.GUARDIAN and (
            holder is None or not guardianship_listed(related, holder, patient, today)
        ):
            await ProxyGrant.update({ProxyGrant.revoked_at: now}).where(ProxyGrant.id == grant["id"]).run()
            return None
        return Person(patient.id, patient.given_name, patient.family_name, Access(grant["access"]))

    checked = await asyncio.gather(*(check(grant) for grant in grants))
    return people + [person for person in checked if person is not None]


async def proxies_of(patient_id: str) -> list[dict[str, Any]]:
    """The live grants others hold for the patient, with each proxy's name and email, oldest first."""
    return (
        await ProxyGrant.select(
            ProxyGrant.id,
            ProxyGrant.access,
            ProxyGrant.source,
            ProxyGrant.created_at,
            ProxyGrant.proxy.given_name.as_alias("given_name"),
            ProxyGrant.proxy.family_name.as_alias("family_name"),
            ProxyGrant.proxy.email.as_alias("email"),
        )
        .where((ProxyGrant.patient_id == patient_id) & ProxyGrant.revoked_at.is_null())
        .order_by(ProxyGrant.created_at)
        .run()
    )


_LARGEST_ID = 2**31 - 1
"""A Serial id's range on PostgreSQL: a larger id from a URL names no row, and asyncpg would refuse it."""


async def revoke_grant(grant_id: int, patient_id: str, now: datetime) -> bool:
    """End a grant the patient gave by invitation; False when it is not theirs, not live, or the EHR's."""
    if not 0 < grant_id <= _LARGEST_ID:
        return False
    ended = await (
        ProxyGrant.update({ProxyGrant.revoked_at: now})
        .where(
            (ProxyGrant.id == grant_id)
            & (ProxyGrant.patient_id == patient_id)
            & (ProxyGrant.source == "invitation")
            & ProxyGrant.revoked_at.is_null()
        )
        .returning(ProxyGrant.id)
        .run()
    )
    return bool(ended)


# --- Invitations ----------------------------------------------------------------------------------


def new_code() -> str:
    """A fresh invitation code, e.g. ``7KQ2-M9XP-4RTD-W8HN`` (80 random bits)."""
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))
    return "-".join(raw[start : start + 4] for start in range(0, _CODE_LENGTH, 4))


def code_digest(code: str) -> str:
    """What is stored of a code: the SHA-256 of its normal form (any case, dashes or spaces, O for 0)."""
    normal = "".join(character for character in code.upper() if character.isalnum()).translate(_LOOKALIKES)
    return hashlib.sha256(normal.encode()).hexdigest()


async def invite(inviter: dict[str, Any], email: str, access: Access, now: datetime) -> tuple[dict[str, Any], str]:
    """Record an invitation from the patient ``inviter`` to ``email``; returns it and the code to send."""
    if access not in INVITED_ACCESS or inviter["patient_id"] is None:
        raise ValueError("only a patient invites, and only a caregiver or a billing delegate")
    code = new_code()
    (row,) = await (
        ProxyInvitation.insert(
            ProxyInvitation(
                patient_id=inviter["patient_id"],
                invited_by=inviter["id"],
                email=email,
                access=access,
                token_hash=code_digest(code),
                expires_at=now + INVITATION_LIFETIME,
                created_at=now,
            )
        )
        .returning(*ProxyInvitation.all_columns())
        .run()
    )
    return row, code


async def withdraw_unsent(invitation_id: int) -> None:
    """Forget an invitation whose email could not be sent: nobody ever held its code."""
    await ProxyInvitation.delete().where(ProxyInvitation.id == invitation_id).run()


def _pending(now: datetime) -> Any:
    return (
        ProxyInvitation.accepted_at.is_null()
        & ProxyInvitation.revoked_at.is_null()
        & (ProxyInvitation.expires_at > now)
    )


async def pending_invitation(code: str, now: datetime) -> dict[str, Any] | None:
    """The unused, unexpired, unrevoked invitation this code opens, with the inviter's name; else None."""
    return (
        await ProxyInvitation.select(
            *ProxyInvitation.all_columns(),
            ProxyInvitation.invited_by.given_name.as_alias("inviter_given_name"),
            ProxyInvitation.invited_by.family_name.as_alias("inviter_family_name"),
        )
        .where((ProxyInvitation.token_hash == code_digest(code)) & _pending(now))
        .first()
        .run()
    )


async def invitations_of(patient_id: str, now: datetime) -> list[dict[str, Any]]:
    """The patient's invitations still waiting for an answer, oldest first."""
    return (
        await ProxyInvitation.select(
            ProxyInvitation.id, ProxyInvitation.email, ProxyInvitation.access, ProxyInvitation.expires_at
        )
        .where((ProxyInvitation.patient_id == patient_id) & _pending(now))
        .order_by(ProxyInvitation.created_at)
        .run()
    )


async def revoke_invitation(invitation_id: int, patient_id: str, now: datetime) -> bool:
    """Cancel a waiting invitation of the patient's; False when it is not theirs or no longer waiting."""
    if not 0 < invitation_id <= _LARGEST_ID:
        return False
    cancelled = await (
        ProxyInvitation.update({ProxyInvitation.revoked_at: now})
        .where((ProxyInvitation.id == invitation_id) & (ProxyInvitation.patient_id == patient_id) & _pending(now))
        .returning(ProxyInvitation.id)
        .run()
    )
    return bool(cancelled)


async def _claim(invitation: dict[str, Any], proxy_id: int, now: datetime) -> dict[str, Any] | None:
    # Only one of two simultaneous acceptances of the same code gets the row.
    claimed = await (
        ProxyInvitation.update({ProxyInvitation.accepted_at: now})
        .where((ProxyInvitation.id == invitation["id"]) & _pending(now))
        .returning(ProxyInvitation.id)
        .run()
    )
    if not claimed:
        return None
    return await _give(
        proxy_id, invitation["patient_id"], Access(invitation["access"]), "invitation", now, invitation["id"]
    )


async def accept(invitation: dict[str, Any], proxy: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """Give the signed-in account ``proxy`` the invitation's grant; None when the code was used meanwhile
    or the account is the invited patient's own."""
    if proxy["patient_id"] == invitation["patient_id"]:
        return None
    async with ProxyGrant._meta.db.transaction():
        return await _claim(invitation, proxy["id"], now)


class _CodeUsedMeanwhile(Exception):
    """Rolls back the account made for an invitation that another request accepted first."""


async def join(
    invitation: dict[str, Any], now: datetime, *, given_name: str, family_name: str, password_hash: str, language: str
) -> dict[str, Any] | None:
    """Open a patient-realm account with no patient of its own for the invitee, and accept for it.

    The invitation's email counts as verified: its code reached that mailbox. None when the code was
    used meanwhile (and then no account is made).
    """
    try:
        async with ProxyGrant._meta.db.transaction():
            account = await accounts.create(
                now,
                realm="patient",
                email=invitation["email"],
                email_verified_at=now,
                password_hash=password_hash,
                given_name=given_name,
                family_name=family_name,
                language=language,
            )
            # No account when the address was taken meanwhile; the invitation stays unused then.
            if account is None or await _claim(invitation, account["id"], now) is None:
                raise _CodeUsedMeanwhile
            return account
    except _CodeUsedMeanwhile:
        return None
