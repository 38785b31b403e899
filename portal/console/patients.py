"""Finding a caller: what a representative types, read as an EHR search, and the results shown with
only the fields that matched — masked where a whole number would say more than needed.

A service: no HTTP. One box takes what the caller says ("Turner 12/01/1974", an MRN, an account
number, a phone number or the code on a bill); words are a name, a date is a birth date, and a
number's length says which number it is. Ten digits may be an account number or a phone number, so
both are asked.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from carefront_sdk.models import Patient, PatientSearch

from portal.i18n import N_
from portal.plugin_host import PluginHost

RESULTS = 20
FIELD_NAMES = {
    "name": N_("Name"),
    "birth_date": N_("Date of birth"),
    "mrn": N_("MRN"),
    "account_number": N_("Account number"),
    "phone": N_("Phone"),
    "statement_code": N_("Statement code"),
}
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y")
_CODE = re.compile(r"^[A-Z0-9]{6,12}$")
_PHONE_PUNCTUATION = re.compile(r"[\s().+-]")


@dataclass(frozen=True, slots=True)
class Found:
    """A result: the patient's id (to open the record) and the matching fields, ready to show."""

    patient_id: str
    fields: tuple[tuple[str, str], ...]
    """(field name, shown value) pairs, only of fields the search used."""


def _as_date(text: str) -> date | None:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


def read_query(text: str) -> list[PatientSearch]:
    """The searches what was typed stands for (none when it says nothing searchable).

    Words are a name, a date a birth date, digits a number (8: an MRN; 10: an account number or a
    phone; 11 starting with 1: a phone), and a word of letters and digits the code on a bill.
    """
    words: list[str] = []
    numbers: list[str] = []
    born: date | None = None
    code: str | None = None
    for token in text.replace(",", " ").split():
        bare = _PHONE_PUNCTUATION.sub("", token)
        if (day := _as_date(token)) is not None:
            born = day
        elif bare.isdigit():
            numbers.append(bare)
        elif _CODE.match(token.replace("-", "").upper()) and not token.replace("-", "").isalpha():
            code = token.replace("-", "").upper()
        elif token.replace("-", "").replace("'", "").isalpha():
            words.append(token)
    name = " ".join(words) or None
    number = "".join(numbers)
    if code:
        return [PatientSearch(statement_code=code, name=name, birth_date=born, limit=RESULTS)]
    if not number:
        return [PatientSearch(name=name, birth_date=born, limit=RESULTS)] if (name or born) else []
    if len(number) == 10:
        return [
            PatientSearch(account_number=number, name=name, birth_date=born, limit=RESULTS),
            PatientSearch(phone=number, name=name, birth_date=born, limit=RESULTS),
        ]
    if len(number) == 11 and number.startswith("1"):
        return [PatientSearch(phone=number, name=name, birth_date=born, limit=RESULTS)]
    return [PatientSearch(mrn=number, name=name, birth_date=born, limit=RESULTS)]


def mask_digits(value: str, shown: int = 4) -> str:
    """All but the last ``shown`` digits hidden: enough to confirm with the caller, not to copy."""
    digits = [ch for ch in value if ch.isdigit()]
    return "•" * max(0, len(digits) - shown) + "".join(digits[-shown:])


def shown(patient: Patient, search: PatientSearch) -> tuple[tuple[str, str], ...]:
    """The fields ``search`` matched on, as a result shows them."""
    fields: list[tuple[str, str]] = []
    if search.name:
        fields.append(("name", f"{patient.given_name} {patient.family_name}"))
    if search.birth_date:
        fields.append(("birth_date", patient.birth_date.isoformat()))
    if search.mrn:
        fields.append(("mrn", patient.mrn))
    if search.account_number:
        fields.append(("account_number", mask_digits(patient.account_number)))
    if search.phone:
        fields.append(("phone", mask_digits(patient.phone or "")))
    if search.statement_code:
        fields.append(("statement_code", search.statement_code))
    return tuple(fields)


async def find(host: PluginHost, text: str) -> list[Found]:
    """Every patient the typed text finds, each once, with the fields that found them."""
    searches = read_query(text)
    answers: Sequence[Sequence[Patient]] = await asyncio.gather(*(host.ehr.search_patients(s) for s in searches))
    results: dict[str, Found] = {}
    for search, patients in zip(searches, answers, strict=True):
        for patient in patients:
            results.setdefault(patient.id, Found(patient.id, shown(patient, search)))
    return list(results.values())[:RESULTS]
