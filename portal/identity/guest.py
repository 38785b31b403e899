"""Guest access for paying: the code printed on a statement and the patient's birth date open that one bill.

A service: it knows the throttles and asks the EHR, nothing of HTTP. Tries are limited per address
and per statement code (PROMISES.md 5), counted before the EHR is asked; a wrong code and a wrong
birth date get the same answer, so neither tells whether a bill exists.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from carefront_sdk.adapters import EHR
from carefront_sdk.errors import NotFound
from carefront_sdk.models import StatementSummary

from portal.identity import throttle

ADDRESS_LIMIT = throttle.Limit(attempts=20, window=timedelta(minutes=15))
STATEMENT_LIMIT = throttle.Limit(attempts=5, window=timedelta(minutes=15))


class Outcome(enum.StrEnum):
    FOUND = "found"
    NO_MATCH = "no_match"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class BillSearch:
    outcome: Outcome
    statement: StatementSummary | None = None
    retry_after: timedelta = timedelta(0)


def normal_code(statement_code: str) -> str:
    """The code as printed, whatever the case, spaces or dashes it was typed with."""
    return "".join(character for character in statement_code.upper() if character.isalnum())


def _statement_key(code: str) -> str:
    # The throttle table keeps a digest, not the code printed on someone's bill.
    return "guest:statement:" + hashlib.sha256(code.encode()).hexdigest()[:32]


async def find_bill(ehr: EHR, statement_code: str, birth_date: date, *, address: str, now: datetime) -> BillSearch:
    """The statement when the code exists and its patient was born on ``birth_date``."""
    code = normal_code(statement_code)
    by_address = await throttle.attempt(f"guest:address:{address}", ADDRESS_LIMIT, now)
    by_statement = await throttle.attempt(_statement_key(code), STATEMENT_LIMIT, now)
    if not (by_address.allowed and by_statement.allowed):
        return BillSearch(Outcome.THROTTLED, retry_after=max(by_address.retry_after, by_statement.retry_after))
    if not code:
        return BillSearch(Outcome.NO_MATCH)
    try:
        statement = await ehr.find_statement_by_code(code)
        patient = await ehr.read_patient(statement.patient_id)
    except NotFound:
        return BillSearch(Outcome.NO_MATCH)
    if patient.birth_date != birth_date:
        return BillSearch(Outcome.NO_MATCH)
    await throttle.clear(_statement_key(code))
    return BillSearch(Outcome.FOUND, statement)
