"""Sign-up: finding the one patient in the EHR a person says they are, and opening that patient's account.

Matching answers only "this patient" or "no": no match, several matches and a patient who already
has an account look the same to the person asking (PROMISES.md 5).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carefront_sdk.adapters import EHR
from carefront_sdk.models import Patient, PatientQuery

from portal.identity import accounts
from portal.identity.passwords import hash_password
from portal.identity.sessions import Realm


class Identifier(enum.StrEnum):
    """Which number from a letter or bill the person gave."""

    MRN = "mrn"
    ACCOUNT_NUMBER = "account"
    STATEMENT_CODE = "statement"


def patient_query(given_name: str, family_name: str, birth_date: Any, kind: Identifier, number: str) -> PatientQuery:
    return PatientQuery(
        given_name=given_name,
        family_name=family_name,
        birth_date=birth_date,
        mrn=number if kind is Identifier.MRN else None,
        account_number=number if kind is Identifier.ACCOUNT_NUMBER else None,
        statement_code=number if kind is Identifier.STATEMENT_CODE else None,
    )


@dataclass(frozen=True, slots=True)
class Match:
    patient: Patient | None = None
    """The one patient found who has no account yet; None otherwise."""
    existing_account: dict[str, Any] | None = None
    """When the one patient found has an account already: that account, whose holder should hear of it."""


async def match(ehr: EHR, query: PatientQuery) -> Match:
    """The one patient matching ``query`` and without an account, or why not (never shown as such)."""
    found = await ehr.match_patient(query)
    if len(found) != 1:
        return Match()
    account = await accounts.find_by_patient(found[0].id)
    if account is not None:
        return Match(existing_account=account)
    return Match(patient=found[0])


async def email_taken(email: str) -> bool:
    """Whether a patient account (a patient's or a proxy's) uses ``email`` already."""
    return await accounts.find_by_email(Realm.PATIENT, email) is not None


async def open_account(
    patient: Patient,
    *,
    email: str,
    phone: str | None,
    phone_verified: bool,
    password: str,
    language: str,
    now: datetime,
) -> dict[str, Any] | None:
    """Create the patient's account with a verified email; None when the patient or the email has one."""
    if await accounts.find_by_patient(patient.id) is not None or await email_taken(email):
        return None
    return await accounts.create(
        now,
        realm=Realm.PATIENT,
        patient_id=patient.id,
        given_name=patient.given_name,
        family_name=patient.family_name,
        email=email,
        email_verified_at=now,
        phone=phone,
        phone_verified_at=now if phone and phone_verified else None,
        password_hash=hash_password(password),
        language=language,
    )
