"""Generates the sandbox hospital's database from a seed: patients, bills, coverage and schedules.

Everything comes from ``random.Random`` streams seeded by ``seed``, so one seed, size and day give
the same rows. Rows go to SQLite in bulk ``executemany`` batches with journaling
off and indexes built at the end: 100,000 patients and about five million charge lines take
minutes on two cores. The five demo patients come first, built from their own stream (so they do
not depend on ``size``) by fixed recipes that guarantee what each demonstrates.
"""

from __future__ import annotations

import os
import random
import secrets
import sqlite3
import time as timer
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from carefront_sandbox import codes, identifiers, names, schedule
from carefront_sandbox.codes import CODE_INDEX, PAYERS, SERVICE_CODES, Payer
from carefront_sandbox.schema import INDEXES, SCHEMA_VERSION, TABLES

__all__ = [
    "MINIMUM_SIZE",
    "PERSONA_PATIENTS",
    "PERSONA_STATEMENTS",
    "GenerationStats",
    "Person",
    "generate",
    "install_database",
    "persona_people",
    "plain_email",
]

MINIMUM_SIZE = 50
_BIRTH_ANCHOR = date(2025, 7, 1)
"""Birth dates count back from a fixed day, so a person's birth date never depends on the day the
file was generated (the demo personas are computed without the file)."""
_HISTORY_DAYS = 540
_BATCH_ROWS = 50_000
_UPCOMING_APPOINTMENTS_MAX = 400
_HOSPITAL = "Sandbox General Hospital"

PERSONA_PATIENTS = {"balance": 0, "plan": 1, "parent": 2, "child": 3, "inpatient": 4}
"""Patient index of each demo patient (the patient id is ``pt-<index + 1>``)."""
PERSONA_STATEMENTS = {"balance": 1, "plan": 3, "child": 6, "inpatient": 8}
"""Statement index of the statement each demo patient is about (its id is ``st-<index + 1>``)."""


@dataclass(frozen=True, slots=True)
class GenerationStats:
    patients: int
    statements: int
    visits: int
    charge_lines: int
    rows: int
    """Rows written to every table."""
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else float(self.rows)


@dataclass(frozen=True, slots=True)
class Person:
    given_name: str
    family_name: str
    birth_date: date
    language: str = "en"


def plain_email(given_name: str, family_name: str, domain: str, suffix: str = "") -> str:
    """An ASCII mailbox name for a person: ``maria.garcia@example.org``."""
    text = unicodedata.normalize("NFKD", f"{given_name}.{family_name}{suffix}").encode("ascii", "ignore").decode()
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == ".") + "@" + domain


def _birth_date(rng: random.Random, low_age: int, high_age: int) -> date:
    return _BIRTH_ANCHOR - timedelta(days=rng.randint(low_age * 365 + 1, high_age * 365 + 364))


def persona_people(seed: int) -> dict[str, Person]:
    """The people behind the demo personas: a pure function of ``seed``."""
    rng = random.Random(f"carefront-sandbox-personas:{seed}")
    female, male, family = names.GIVEN_NAMES_FEMALE, names.GIVEN_NAMES_MALE, names.FAMILY_NAMES
    parent_family = rng.choice(family)
    child_sex = rng.choice("FM")
    return {
        "balance": Person(rng.choice(female), rng.choice(family), _birth_date(rng, 34, 52)),
        "plan": Person(rng.choice(male), rng.choice(names.SPANISH_FAMILY_NAMES), _birth_date(rng, 41, 58), "es"),
        "parent": Person(rng.choice(female), parent_family, _birth_date(rng, 33, 44)),
        "child": Person(rng.choice(female if child_sex == "F" else male), parent_family, _birth_date(rng, 8, 11)),
        "inpatient": Person(rng.choice(male), rng.choice(family), _birth_date(rng, 56, 63)),
        "representative": Person(rng.choice(female), rng.choice(family), _birth_date(rng, 25, 50)),
        "supervisor": Person(rng.choice(male), rng.choice(family), _birth_date(rng, 35, 60)),
    }


# --- The hospital: departments, locations, visit types and clinicians -------------------------------

_DEPARTMENTS = (
    "Emergency Department",
    "Family Medicine",
    "Internal Medicine",
    "Pediatrics",
    "Dermatology",
    "Cardiology",
    "Orthopedics",
    "Physical Therapy",
    "Radiology",
    "Gastroenterology",
    "General Surgery",
    "Hospital Medicine",
    "Anesthesiology",
    "Laboratory",
    "Hospital Services",
)
_DEPARTMENT_ID = {name: position + 1 for position, name in enumerate(_DEPARTMENTS)}

_LOCATIONS = (
    ("loc-main", f"{_HOSPITAL}, Main Campus", "1200 Harbor Rd, Lakeshore, IL 60601", "(312) 555-0100"),
    ("loc-north", "Northside Family Clinic", "455 Prairie Ave, Northgate, IL 60659", "(312) 555-0110"),
    ("loc-west", "Westfield Pediatrics", "88 Willow Way, Westfield, IL 60651", "(312) 555-0120"),
    ("loc-ortho", "Lakeview Orthopedics and Therapy", "2301 Lakeview Dr, Lakeshore, IL 60601", "(312) 555-0130"),
    ("loc-imaging", "Riverside Imaging Center", "16 Riverbend Rd, Riverton, IL 60625", "(312) 555-0140"),
)

_CALL_SCHEDULING = "(312) 555-0142"
_VISIT_TYPES = (
    ("vt-follow-up", "Follow-up visit", 20, True, "Bring a list of the medicines you take.", None),
    ("vt-sick", "Sick visit", 20, True, "If you have a fever or a cough, please wear a mask when you arrive.", None),
    (
        "vt-new-patient",
        "New patient visit",
        40,
        True,
        "Arrive 15 minutes early to fill in forms. Bring your insurance card and a photo ID.",
        None,
    ),
    ("vt-physical", "Annual physical", 40, True, "You do not need to fast unless your clinician told you to.", None),
    ("vt-well-child", "Well-child visit", 40, True, "Bring your child's vaccination record.", None),
    ("vt-skin-check", "Skin check", 20, True, "Please come without makeup or nail polish.", None),
    ("vt-pt", "Physical therapy session", 60, True, "Wear comfortable clothes and shoes you can move in.", None),
    (
        "vt-mammogram",
        "Screening mammogram",
        20,
        True,
        "Do not wear deodorant, powder or lotion on the day of your exam.",
        None,
    ),
    (
        "vt-mri",
        "MRI",
        60,
        False,
        "An MRI needs an order from your clinician and often approval from your insurer first.",
        _CALL_SCHEDULING,
    ),
    ("vt-colonoscopy", "Colonoscopy", 60, False, "A colonoscopy needs a prep plan from our GI team.", "(312) 555-0144"),
    (
        "vt-surgery-consult",
        "Surgical consultation",
        40,
        False,
        "A surgical consultation needs a referral from your clinician.",
        "(312) 555-0146",
    ),
    (
        "vt-cardiology-new",
        "Cardiology new patient visit",
        40,
        False,
        "A first cardiology visit needs a referral from your primary care clinician.",
        "(312) 555-0148",
    ),
)
_VISIT_TYPE_MINUTES = {entry[0]: entry[2] for entry in _VISIT_TYPES}
_PRIMARY_CARE = ("vt-follow-up", "vt-sick", "vt-new-patient", "vt-physical")
_PEDIATRIC = ("vt-follow-up", "vt-sick", "vt-well-child", "vt-new-patient")

# (specialty, department, credential, locations, visit types, how many)
_CLINICIANS = (
    ("Family Medicine", "Family Medicine", "MD", ("loc-main", "loc-north"), _PRIMARY_CARE, 3),
    ("Internal Medicine", "Internal Medicine", "MD", ("loc-main",), _PRIMARY_CARE, 2),
    ("Family Medicine", "Family Medicine", "NP", ("loc-north",), ("vt-follow-up", "vt-sick"), 1),
    ("Pediatrics", "Pediatrics", "MD", ("loc-west", "loc-north"), _PEDIATRIC, 3),
    ("Dermatology", "Dermatology", "MD", ("loc-north",), ("vt-skin-check", "vt-new-patient"), 1),
    ("Cardiology", "Cardiology", "MD", ("loc-main",), ("vt-follow-up", "vt-cardiology-new"), 1),
    ("Orthopedic Surgery", "Orthopedics", "MD", ("loc-ortho", "loc-main"), ("vt-follow-up", "vt-surgery-consult"), 2),
    ("Physical Therapy", "Physical Therapy", "DPT", ("loc-ortho",), ("vt-pt",), 2),
    ("Radiology", "Radiology", "MD", ("loc-imaging",), ("vt-mammogram", "vt-mri"), 1),
    ("Gastroenterology", "Gastroenterology", "MD", ("loc-main",), ("vt-follow-up", "vt-colonoscopy"), 1),
    ("General Surgery", "General Surgery", "MD", ("loc-main",), ("vt-surgery-consult",), 1),
    ("Emergency Medicine", "Emergency Department", "MD", (), (), 3),
    ("Hospital Medicine", "Hospital Medicine", "MD", (), (), 2),
    ("Anesthesiology", "Anesthesiology", "MD", (), (), 2),
)


@dataclass(slots=True)
class _Clinician:
    key: int
    code: str
    specialty: str
    department: str
    locations: tuple[str, ...]
    visit_types: tuple[str, ...]
    day_off: int


@dataclass(slots=True)
class _Hospital:
    clinicians: list[_Clinician]
    by_department: dict[str, list[_Clinician]]
    facility: int
    laboratory: int

    def pick(self, rng: random.Random, department: str) -> _Clinician:
        return rng.choice(self.by_department[department])


def _hospital_rows(rng: random.Random) -> tuple[_Hospital, list[tuple[object, ...]]]:
    rows: list[tuple[object, ...]] = []
    clinicians: list[_Clinician] = []
    used: set[str] = set()
    for specialty, department, credential, locations, visit_types, count in _CLINICIANS:
        for _ in range(count):
            while True:
                given = rng.choice(names.GIVEN_NAMES_FEMALE + names.GIVEN_NAMES_MALE)
                full = f"{given} {rng.choice(names.FAMILY_NAMES + names.SPANISH_FAMILY_NAMES)}, {credential}"
                if full not in used:
                    used.add(full)
                    break
            key = len(rows) + 1
            clinician = _Clinician(key, f"pr{key:02d}", specialty, department, locations, visit_types, key % 5)
            clinicians.append(clinician)
            rows.append(
                (
                    key,
                    clinician.code,
                    full,
                    specialty,
                    _DEPARTMENT_ID[department],
                    int(bool(visit_types)),
                    ",".join(locations),
                    ",".join(visit_types),
                    clinician.day_off,
                )
            )
    facility, laboratory = len(rows) + 1, len(rows) + 2
    rows.append(
        (facility, f"pr{facility:02d}", _HOSPITAL, "Hospital", _DEPARTMENT_ID["Hospital Services"], 0, "", "", 7)
    )
    rows.append(
        (
            laboratory,
            f"pr{laboratory:02d}",
            f"{_HOSPITAL} Laboratory",
            "Laboratory",
            _DEPARTMENT_ID["Laboratory"],
            0,
            "",
            "",
            7,
        )
    )
    by_department: dict[str, list[_Clinician]] = {}
    for clinician in clinicians:
        by_department.setdefault(clinician.department, []).append(clinician)
    return _Hospital(clinicians, by_department, facility, laboratory), rows


# --- Charge recipes: what a visit of each kind bills ------------------------------------------------

_C = CODE_INDEX
_CHARGE = tuple(entry.charge for entry in SERVICE_CODES)
_LAB_CODES = frozenset(
    _C[c]
    for c in (
        "36415",
        "80048",
        "80053",
        "85025",
        "80061",
        "83036",
        "84443",
        "81001",
        "81002",
        "87086",
        "87880",
        "87804",
        "85610",
        "82947",
        "84484",
        "83690",
        "87040",
        "88305",
    )
)
_ANESTHESIA_CODES = frozenset(_C[c] for c in ("00790", "00840", "00811", "00731", "01400"))
_IMAGING_CODES = frozenset(
    position
    for position, entry in enumerate(SERVICE_CODES)
    if entry.code.startswith(("70", "71", "72", "73", "74", "76", "77"))
)
_FACILITY_CODES = frozenset(
    position
    for position, entry in enumerate(SERVICE_CODES)
    if entry.system == "REV" or (entry.system == "HCPCS" and entry.code[0] in "JAEQ")
)
_OFFICE_VISIT_CODES = frozenset(_C[c] for c in ("99202", "99203", "99204", "99212", "99213", "99214", "99215"))
_PREVENTIVE_CODES = frozenset(
    _C[c]
    for c in (
        "99391",
        "99392",
        "99393",
        "99394",
        "99395",
        "99396",
        "99397",
        "90471",
        "90686",
        "90715",
        "90707",
        "G0008",
        "77067",
    )
)
_DENIABLE_BELOW = 50_000
"""Only lines under $500 are ever denied: a denial leaves a plausible, not a ruinous, amount."""

_Line = tuple[int, int, int]
"""(code position, quantity, day of the visit)."""


def _codes(*items: str) -> list[int]:
    return [_C[item] for item in items]


_EM_CODES = _codes("99212", "99213", "99214", "99215", "99203", "99204")
_EM_WEIGHTS = (15, 45, 25, 5, 6, 4)
_OFFICE_TESTS = _codes("81002", "87880", "87804", "82947")
_LAB_PANEL = _codes("80053", "85025", "80061", "83036", "84443", "81001", "87086", "85610", "80048")
_IMAGING_STUDIES = _codes(
    "71046", "73610", "73030", "72100", "70450", "74177", "70551", "73721", "76700", "77067", "93306"
)
_IMAGING_WEIGHTS = (18, 10, 8, 10, 8, 8, 5, 6, 10, 12, 5)
_ED_DRUGS = ((_C["J1885"], 1), (_C["J2405"], 4), (_C["J1100"], 10), (_C["J0696"], 4), (_C["J2270"], 1))


def _preventive_code(age: int) -> int:
    for limit, code in ((1, "99391"), (5, "99392"), (12, "99393"), (18, "99394"), (40, "99395"), (65, "99396")):
        if age < limit:
            return _C[code]
    return _C["99397"]


def _office_lines(rng: random.Random, age: int, medicare: bool) -> tuple[list[_Line], bool]:
    """An office visit's lines, and whether it was a preventive (annual or well-child) visit."""
    if rng.random() < 0.25:
        lines = [(_preventive_code(age), 1, 0)]
        if rng.random() < 0.4:
            lines += [(_C["G0008"] if medicare else _C["90471"], 1, 0), (_C["90686"], 1, 0)]
        if age >= 18 and rng.random() < 0.5:
            lines += [(_C["36415"], 1, 0), (_C["80061"], 1, 0), (_C["83036"], 1, 0)]
        return lines, True
    lines = [(rng.choices(_EM_CODES, _EM_WEIGHTS)[0], 1, 0)]
    roll = rng.random()
    if roll < 0.2:
        lines.append((rng.choice(_OFFICE_TESTS), 1, 0))
    elif roll < 0.27:
        lines += [(_C["96372"], 1, 0), (rng.choice((_C["J1100"], _C["J0696"])), 4, 0)]
    elif roll < 0.32:
        lines += [(_C["20610"], 1, 0), (_C["J1030"], 1, 0)]
    elif roll < 0.38:
        lines.append((rng.choice(_codes("12001", "10060", "11102", "17110")), 1, 0))
    elif roll < 0.45:
        lines.append((_C["93000"], 1, 0))
    return lines, False


def _lab_lines(rng: random.Random) -> list[_Line]:
    return [(_C["36415"], 1, 0)] + [(code, 1, 0) for code in rng.sample(_LAB_PANEL, rng.randint(2, 5))]


def _imaging_lines(rng: random.Random) -> list[_Line]:
    study = rng.choices(_IMAGING_STUDIES, _IMAGING_WEIGHTS)[0]
    lines = [(study, 1, 0)]
    if study == _C["74177"]:
        lines.append((_C["Q9967"], 100, 0))
    return lines


def _emergency_lines(rng: random.Random, *, broken_wrist: bool = False) -> list[_Line]:
    level = _C["99284"] if broken_wrist else rng.choices(_codes("99283", "99284", "99285"), (45, 40, 15))[0]
    lines = [(_C["0450"], 1, 0), (level, 1, 0), (_C["0270"], 1, 0)]
    if broken_wrist:
        return [
            *lines,
            (_C["73090"], 1, 0),
            (_C["25600"], 1, 0),
            (_C["29075"], 1, 0),
            (_C["A4565"], 1, 0),
            (_C["J1885"], 1, 0),
        ]
    if rng.random() < 0.1:
        lines += [(_C["A0427"], 1, 0), (_C["A0425"], rng.randint(4, 18), 0)]
    lines.append((_C["36415"], 1, 0))
    lines += [
        (code, 1, 0)
        for code in rng.sample(_codes("80053", "85025", "84484", "83690", "81001", "80048"), rng.randint(2, 4))
    ]
    if rng.random() < 0.55:
        lines += _imaging_lines(rng)
    for code, quantity in rng.sample(_ED_DRUGS, rng.randint(1, 3)):
        lines.append((code, quantity, 0))
    if rng.random() < 0.45:
        lines += [(_C["96360"], 1, 0), (_C["J7030"], 1, 0)]
    if rng.random() < 0.3:
        lines.append((_C["93000"], 1, 0))
    if rng.random() < 0.15:
        lines.append((_C["12001"], 1, 0))
    return lines


_PROCEDURES = {
    "colonoscopy": ("Gastroenterology", _codes("45380", "00811", "88305")),
    "endoscopy": ("Gastroenterology", _codes("43239", "00731", "88305")),
    "knee": ("Orthopedics", _codes("29881", "01400", "E0114")),
    "gallbladder": ("General Surgery", _codes("47562", "00790", "88305")),
}


def _procedure_lines(rng: random.Random, procedure: str) -> list[_Line]:
    lines: list[_Line] = [(code, 1, 0) for code in _PROCEDURES[procedure][1]]
    lines += [(code, 1, 0) for code in _codes("0360", "0370", "0710", "0272", "0258", "36415", "80048")]
    lines += [
        (_C["0250"], rng.randint(1, 4), 0),
        (_C["J2250"], 2, 0),
        (_C["J3010"], 1, 0),
        (_C["J0690"], 2, 0),
        (_C["J2405"], 4, 0),
        (_C["0270"], rng.randint(2, 6), 0),
    ]
    if procedure == "gallbladder":
        lines.append((_C["G0378"], rng.randint(8, 20), 0))
    if rng.random() < 0.3:
        lines.append((_C["93000"], 1, 0))
    return lines


def _therapy_lines(rng: random.Random, first: bool) -> list[_Line]:
    if first:
        return [(_C["97161"], 1, 0), (_C["97110"], 1, 0)]
    return [(_C["97110"], rng.randint(2, 3), 0), (_C["97140"], rng.randint(1, 2), 0)]


def _inpatient_lines(rng: random.Random, days: int, icu_days: int, surgery: bool) -> list[_Line]:
    """A hospital stay, day by day: admission through the emergency room, then daily room, physician,
    labs, medicines and supplies, then discharge. ``days`` nights; lines on days 0..days."""
    lines: list[_Line] = [
        (code, 1, 0)
        for code in _codes("0450", "99285", "99223", "36415", "80053", "85025", "84484", "83690", "71046", "93000")
    ]
    lines += [
        (_C["87040"], 2, 0),
        (_C["74177"], 1, 0),
        (_C["Q9967"], 100, 0),
        (_C["J7030"], 2, 0),
        (_C["J2405"], 4, 0),
        (_C["J2270"], 1, 0),
        (_C["J0696"], 8, 0),
    ]
    if surgery:
        lines += [(code, 1, 1) for code in _codes("44970", "00840", "0360", "0370", "0710", "0272", "88305")]
        lines += [(_C["J0690"], 2, 1), (_C["J3010"], 2, 1), (_C["J2250"], 2, 1)]
    for day in range(days):
        in_icu = day < icu_days
        lines.append((_C["0200"] if in_icu else _C["0121"], 1, day))
        if day:
            lines.append((_C["99291"] if in_icu else rng.choice(_codes("99232", "99232", "99233")), 1, day))
            lines += [(_C["36415"], 1, day), (_C["85025"], 1, day), (_C["80048"], 1, day)]
            if day % 3 == 0:
                lines.append((_C["80053"], 1, day))
        lines += [
            (_C["0250"], rng.randint(1, 6), day),
            (_C["0258"], rng.randint(1, 3), day),
            (_C["J1644"], 5, day),
            (rng.choice(_codes("J2270", "J1170", "J1885")), rng.randint(1, 3), day),
            (_C["0270"], rng.randint(1, 4), day),
        ]
        if day % 2 == 0:
            lines += [(_C["J2405"], 4, day), (_C["J0696"], 8, day)]
        if in_icu:
            lines += [(_C["0410"], 1, day), (_C["94640"], rng.randint(2, 4), day)]
            if day % 2:
                lines.append((_C["71045"], 1, day))
        elif surgery and day >= 3:
            lines += [(_C["0420"], 1, day), (_C["97110"], 2, day)]
    lines.append((_C["99238"], 1, days))
    return lines


# --- Adjudication: what insurance paid and why the patient owes the rest ----------------------------


@dataclass(slots=True)
class _Insurance:
    payer: Payer | None
    """None: self-pay."""
    benefits: codes.Benefits
    ended_on: date | None
    """Coverage terminated: services after it are the patient's (PR-27)."""
    deductible_used: dict[int, int] = field(default_factory=dict)
    out_of_pocket_used: dict[int, int] = field(default_factory=dict)


_SELF_PAY = codes.Benefits(0, 0, 0, 0, None, 0)


def _adjudicate(
    rng: random.Random, insurance: _Insurance, code: int, quantity: int, day: date, allow_denial: bool
) -> tuple[int, int, int, str]:
    """(charged, insurance_paid, patient_owes, packed adjustments) of one line.

    patient_owes = charged - insurance_paid - every non-PR adjustment, and the PR adjustments add
    up to patient_owes, exactly as an 835 remittance balances.
    """
    charged = _CHARGE[code] * quantity
    payer = insurance.payer
    if payer is None:
        return charged, 0, charged, ""
    if insurance.ended_on is not None and day > insurance.ended_on:
        return charged, 0, charged, f"PR|{codes.CARC_COVERAGE_ENDED}|{charged}|{codes.RARC_INELIGIBLE}"
    if allow_denial and charged < _DENIABLE_BELOW and rng.random() < 0.025:
        denial = rng.randrange(3)
        if denial == 0:
            return charged, 0, 0, f"CO|{codes.CARC_BUNDLED}|{charged}|{codes.RARC_BUNDLED}"
        if denial == 1:
            return charged, 0, charged, f"PR|{codes.CARC_NOT_IN_PLAN}|{charged}|{codes.RARC_PLAN_DOCUMENTS}"
        return charged, 0, 0, f"CO|{codes.CARC_NOT_COVERED}|{charged}|"
    allowed = charged * payer.allowed_percent // 100
    benefits = insurance.benefits
    copay = deductible = coinsurance = 0
    if code not in _PREVENTIVE_CODES:
        if code in _OFFICE_VISIT_CODES:
            copay = min(benefits.copay, allowed)
        year = day.year
        deductible = min(benefits.deductible - insurance.deductible_used.get(year, 0), allowed - copay)
        coinsurance = (allowed - copay - deductible) * benefits.coinsurance_percent // 100
        if benefits.out_of_pocket_max is not None:
            room = benefits.out_of_pocket_max - insurance.out_of_pocket_used.get(year, 0)
            over = copay + deductible + coinsurance - room
            if over > 0:
                # The out-of-pocket maximum is reached: the payer covers the rest in full.
                cut = min(coinsurance, over)
                coinsurance, over = coinsurance - cut, over - cut
                cut = min(deductible, over)
                deductible, over = deductible - cut, over - cut
                copay -= over
        insurance.deductible_used[year] = insurance.deductible_used.get(year, 0) + deductible
        insurance.out_of_pocket_used[year] = (
            insurance.out_of_pocket_used.get(year, 0) + copay + deductible + coinsurance
        )
    owes = copay + deductible + coinsurance
    paid = allowed - owes
    parts = []
    if charged > allowed:
        parts.append(f"CO|{codes.CARC_FEE_SCHEDULE}|{charged - allowed}|{codes.RARC_CONTRACT}")
    if payer.kind == "medicare" and paid > 0:
        sequestration = paid * 2 // 100
        paid -= sequestration
        parts.append(f"CO|{codes.CARC_SEQUESTRATION}|{sequestration}|")
    if copay:
        parts.append(f"PR|{codes.CARC_COPAY}|{copay}|")
    if deductible:
        parts.append(f"PR|{codes.CARC_DEDUCTIBLE}|{deductible}|")
    if coinsurance:
        parts.append(f"PR|{codes.CARC_COINSURANCE}|{coinsurance}|")
    return charged, paid, owes, ";".join(parts)


# --- Writing rows -------------------------------------------------------------------------------------


class _Sink:
    """Buffers rows per table and writes them with one ``executemany`` per batch."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.buffers: dict[str, list[tuple[object, ...]]] = {}
        self.counts: dict[str, int] = {}
        self.pending = 0

    def add(self, table: str, row: tuple[object, ...]) -> None:
        self.buffers.setdefault(table, []).append(row)
        self.pending += 1
        if self.pending >= _BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        for table, rows in self.buffers.items():
            if rows:
                marks = ",".join("?" * len(rows[0]))
                self.connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)  # noqa: S608
                self.counts[table] = self.counts.get(table, 0) + len(rows)
                rows.clear()
        self.pending = 0


@dataclass(slots=True)
class _Visit:
    kind: str
    department: str
    clinician: int
    lines: list[_Line]
    days: int = 0
    appointment_type: str | None = None
    """The visit type of the appointment this visit was, when it was a scheduled one."""
    clinician_record: _Clinician | None = None


class _Generator:
    def __init__(self, sink: _Sink, seed: int, today: date, zone: ZoneInfo, hospital: _Hospital) -> None:
        self.sink = sink
        self.seed = seed
        self.today = today
        self.zone = zone
        self.hospital = hospital
        self.statement_index = 0
        self.visit_key = 0
        self.line_key = 0
        self.payment_key = 0
        self.coverage_key = 0
        self.related_key = 0
        self.appointment_key = 0
        self.upcoming = 0
        self.holds: set[tuple[int, str]] = set()
        self._iso: dict[date, str] = {}
        self.radiologist = hospital.by_department["Radiology"][0].key
        self.anesthesiologists = [c.key for c in hospital.by_department["Anesthesiology"]]

    def iso(self, day: date) -> str:
        text = self._iso.get(day)
        if text is None:
            text = self._iso[day] = day.isoformat()
        return text

    # People -----------------------------------------------------------------------------------------

    def patient(
        self,
        index: int,
        person: Person,
        rng: random.Random,
        *,
        contact: bool,
        email: str | None,
        account: str | None = None,
    ) -> str:
        """Write the patient at ``index``; ``account`` is the household's when a guarantor holds one."""
        town, zip_code = rng.choice(names.TOWNS)
        address = f"{rng.randint(100, 9899)} {rng.choice(names.STREETS)}, {town}, IL {zip_code}"
        phone = f"+1{rng.choice(('312', '773', '630', '847', '708'))}55501{rng.randint(0, 99):02d}" if contact else None
        account = account or identifiers.account_number(self.seed, index)
        self.sink.add(
            "patients",
            (
                index + 1,
                identifiers.mrn(self.seed, index),
                person.given_name,
                person.family_name,
                identifiers.name_key(person.given_name, person.family_name),
                person.birth_date.isoformat(),
                account,
                email,
                phone,
                person.language,
                address,
            ),
        )
        return account

    def related(
        self,
        patient_key: int,
        person: Person,
        relationship: str,
        access: str,
        email: str | None,
        proxy_patient_key: int | None = None,
    ) -> None:
        self.related_key += 1
        self.sink.add(
            "related_persons",
            (
                self.related_key,
                patient_key,
                person.given_name,
                person.family_name,
                relationship,
                access,
                person.birth_date.isoformat(),
                email,
                proxy_patient_key,
            ),
        )

    def coverage(
        self,
        patient_key: int,
        payer: Payer,
        member_id: str,
        plan: str,
        group: str | None,
        subscriber: Person,
        relationship: str,
        rank: str,
        starts_on: date,
    ) -> None:
        self.coverage_key += 1
        self.sink.add(
            "coverages",
            (
                self.coverage_key,
                patient_key,
                rank,
                payer.payer_id,
                payer.name,
                plan,
                member_id,
                group,
                f"{subscriber.given_name} {subscriber.family_name}",
                subscriber.birth_date.isoformat(),
                relationship,
                starts_on.isoformat(),
                None,
                0,
            ),
        )

    # Bills ------------------------------------------------------------------------------------------

    def statement(
        self,
        rng: random.Random,
        patient_key: int,
        account: str,
        insurance: _Insurance,
        visits: list[tuple[date, _Visit]],
        payment: str | None,
        *,
        allow_denial: bool = True,
    ) -> int:
        """Write a statement for ``visits``; ``payment`` is "full", "partial", None (by age) or "none"."""
        self.statement_index += 1
        statement_key = self.statement_index
        totals = [0, 0, 0, 0]  # charged, insurance paid, adjustments, patient owes
        last_day = visits[0][0]
        for visit_day, visit in visits:
            # Scheduled visits happen on weekdays, when the clinics are open.
            started_on = (
                visit_day - timedelta(days=max(visit_day.weekday() - 4, 0)) if visit.appointment_type else visit_day
            )
            self.visit_key += 1
            ended_on = started_on + timedelta(days=visit.days) if visit.days else None
            self.sink.add(
                "visits",
                (
                    self.visit_key,
                    statement_key,
                    self.iso(started_on),
                    self.iso(ended_on) if ended_on else None,
                    visit.kind,
                    _DEPARTMENT_ID[visit.department],
                    visit.clinician,
                ),
            )
            for code, quantity, day_offset in visit.lines:
                service_day = started_on + timedelta(days=day_offset)
                last_day = max(last_day, service_day)
                charged, paid, owes, adjustments = _adjudicate(
                    rng, insurance, code, quantity, service_day, allow_denial
                )
                totals[0] += charged
                totals[1] += paid
                totals[2] += charged - paid - owes
                totals[3] += owes
                self.line_key += 1
                self.sink.add(
                    "charge_lines",
                    (
                        self.line_key,
                        statement_key,
                        self.visit_key,
                        self.iso(service_day),
                        code + 1,
                        self._billed_by(code, visit),
                        quantity,
                        charged,
                        paid,
                        owes,
                        adjustments,
                    ),
                )
            if visit.appointment_type and visit.clinician_record:
                self.past_appointment(
                    rng, patient_key, started_on, visit.appointment_type, visit.clinician_record, "fulfilled"
                )
        issued_on = min(last_day + timedelta(days=rng.randint(21, 40)), self.today - timedelta(days=1))
        paid_by_patient = self.patient_payments(rng, statement_key, totals[3], issued_on, payment)
        self.sink.add(
            "statements",
            (
                statement_key,
                patient_key,
                account,
                identifiers.statement_code(self.seed, statement_key - 1),
                issued_on.isoformat(),
                (issued_on + timedelta(days=30)).isoformat(),
                totals[0],
                totals[1],
                totals[2],
                totals[3],
                paid_by_patient,
                "USD",
            ),
        )
        return statement_key

    def _billed_by(self, code: int, visit: _Visit) -> int:
        if code in _LAB_CODES:
            return self.hospital.laboratory
        if code in _FACILITY_CODES:
            return self.hospital.facility
        if code in _ANESTHESIA_CODES:
            return self.anesthesiologists[code % len(self.anesthesiologists)]
        if code in _IMAGING_CODES:
            return self.radiologist
        return visit.clinician

    def patient_payments(
        self, rng: random.Random, statement_key: int, owes: int, issued_on: date, payment: str | None
    ) -> int:
        if owes <= 0 or payment == "none":
            return 0
        if payment is None:
            age = (self.today - issued_on).days
            full, partial = (0.65, 0.15) if age > 75 else (0.3, 0.15) if age > 30 else (0.05, 0.05)
            roll = rng.random()
            payment = "full" if roll < full else "partial" if roll < full + partial else "none"
            if payment == "none":
                return 0
        amount = owes if payment == "full" else max(owes * rng.randint(25, 70) // 100, 1)
        latest = max((self.today - issued_on).days - 1, 1)
        paid_on = issued_on + timedelta(days=rng.randint(1, min(60, latest)))
        self.payment_key += 1
        method = rng.choices(("card", "check", "ach"), (70, 15, 15))[0]
        self.sink.add(
            "patient_payments",
            (
                self.payment_key,
                statement_key,
                amount,
                f"{paid_on.isoformat()}T15:00:00+00:00",
                method,
                None,
            ),
        )
        return amount

    # Appointments ------------------------------------------------------------------------------------

    def _appointment(
        self,
        patient_key: int,
        status: str,
        start: datetime,
        visit_type: str,
        clinician: _Clinician,
        slot: str | None,
        reason: str | None,
    ) -> int:
        end = start + timedelta(minutes=_VISIT_TYPE_MINUTES[visit_type])
        self.appointment_key += 1
        self.sink.add(
            "appointments",
            (
                self.appointment_key,
                patient_key,
                status,
                _utc(start, self.zone),
                _utc(end, self.zone),
                visit_type,
                clinician.key,
                schedule.location_on(clinician.locations, start.date()),
                slot,
                reason,
            ),
        )
        return self.appointment_key

    def past_appointment(
        self, rng: random.Random, patient_key: int, day: date, visit_type: str, clinician: _Clinician, status: str
    ) -> None:
        start = rng.choice(schedule.slot_starts(day, _VISIT_TYPE_MINUTES[visit_type]))
        reason = "Patient asked to reschedule" if status == "cancelled" else None
        self._appointment(patient_key, status, start, visit_type, clinician, None, reason)

    def upcoming_appointment(
        self, rng: random.Random, patient_key: int, visit_type: str, clinician: _Clinician, earliest: int
    ) -> None:
        """Book a free slot ``earliest``-40 days ahead, as a patient booking by phone would (if one is found
        in a few tries, and while the generator's cap on upcoming appointments allows)."""
        if self.upcoming >= _UPCOMING_APPOINTMENTS_MAX:
            return
        minutes = _VISIT_TYPE_MINUTES[visit_type]
        for _ in range(20):
            day = self.today + timedelta(days=rng.randint(earliest, 40))
            if not schedule.works_on(clinician.day_off, day):
                continue
            start = rng.choice(schedule.slot_starts(day, minutes))
            cells = schedule.cells_of(start, minutes) or []
            keys = [(clinician.key, schedule.cell_key(cell)) for cell in cells]
            if any(
                key in self.holds or schedule.is_taken_outside(self.seed, clinician.code, cell)
                for key, cell in zip(keys, cells, strict=True)
            ):
                continue
            slot = schedule.slot_id(clinician.code, visit_type, start)
            appointment = self._appointment(patient_key, "booked", start, visit_type, clinician, slot, None)
            for key in keys:
                self.holds.add(key)
                self.sink.add("slot_holds", (*key, appointment))
            self.upcoming += 1
            return

    # Visits -----------------------------------------------------------------------------------------

    def office_visit(self, rng: random.Random, age: int, medicare: bool, department: str | None = None) -> _Visit:
        if department is None:
            department = (
                "Pediatrics"
                if age < 18
                else rng.choices(
                    ("Family Medicine", "Internal Medicine", "Dermatology", "Cardiology", "Orthopedics"),
                    (50, 30, 7, 7, 6),
                )[0]
            )
        clinician = self.hospital.pick(rng, department)
        lines, preventive = _office_lines(rng, age, medicare)
        wanted = ("vt-well-child", "vt-physical") if preventive else ("vt-follow-up",)
        visit_type = next((kind for kind in wanted if kind in clinician.visit_types), clinician.visit_types[0])
        return _Visit("Office visit", department, clinician.key, lines, 0, visit_type, clinician)

    def random_visit(self, rng: random.Random, age: int, medicare: bool, first_therapy: bool) -> _Visit:
        kind = rng.choices(_VISIT_KINDS, _VISIT_WEIGHTS_SENIOR if age >= 65 else _VISIT_WEIGHTS)[0]
        if kind == "office":
            return self.office_visit(rng, age, medicare)
        if kind == "lab":
            return _Visit("Lab", "Laboratory", self.hospital.laboratory, _lab_lines(rng))
        if kind == "imaging":
            lines = _imaging_lines(rng)
            is_mammogram = lines[0][0] == _C["77067"]
            radiologist = self.hospital.by_department["Radiology"][0]
            return _Visit(
                "Imaging",
                "Radiology",
                self.radiologist,
                lines,
                0,
                "vt-mammogram" if is_mammogram else None,
                radiologist if is_mammogram else None,
            )
        if kind == "emergency":
            return _Visit(
                "Emergency",
                "Emergency Department",
                self.hospital.pick(rng, "Emergency Department").key,
                _emergency_lines(rng),
            )
        if kind == "procedure":
            procedure = rng.choice(tuple(_PROCEDURES))
            department = _PROCEDURES[procedure][0]
            return _Visit(
                "Outpatient procedure",
                department,
                self.hospital.pick(rng, department).key,
                _procedure_lines(rng, procedure),
            )
        if kind == "therapy":
            therapist = self.hospital.pick(rng, "Physical Therapy")
            return _Visit(
                "Physical therapy",
                "Physical Therapy",
                therapist.key,
                _therapy_lines(rng, first_therapy),
                0,
                "vt-pt",
                therapist,
            )
        days = rng.randint(2, 7)
        return _Visit(
            "Inpatient stay",
            "Hospital Medicine",
            self.hospital.pick(rng, "Hospital Medicine").key,
            _inpatient_lines(rng, days, rng.choice((0, 0, 0, 1)), rng.random() < 0.2),
            days,
        )


_VISIT_KINDS = ("office", "lab", "imaging", "emergency", "procedure", "therapy", "inpatient")
_VISIT_WEIGHTS = (40, 16, 10, 12, 9, 8, 5)
_VISIT_WEIGHTS_SENIOR = (36, 18, 12, 11, 9, 6, 8)
_STATEMENT_COUNTS = tuple(range(10))
_STATEMENT_COUNT_WEIGHTS = (3, 6, 9, 11, 13, 13, 12, 12, 11, 10)


def _utc(local: datetime, zone: ZoneInfo) -> str:
    return local.replace(tzinfo=zone).astimezone(UTC).isoformat()


def _age(birth_date: date, on: date) -> int:
    return on.year - birth_date.year - ((on.month, on.day) < (birth_date.month, birth_date.day))


# --- Coverage ----------------------------------------------------------------------------------------

_PAYER = {payer.name: payer for payer in PAYERS}
_COMMERCIAL = [payer for payer in PAYERS if payer.kind == "commercial"]
_COMMERCIAL_WEIGHTS = (34, 22, 24, 12, 8)
_MBI_LETTERS = "ACDEFGHJKMNPQRTUVWXY"
_BCBS_PREFIXES = ("XOF", "XOD", "YUB", "XOJ", "ZGP")


def _member_id(rng: random.Random, payer: Payer, *, inactive: bool = False) -> str:
    """A member id in the payer's shape; ending "000" (inactive) only when asked, never "999"."""
    while True:
        digits = f"{rng.randrange(10**9):09d}"
        if payer.payer_id == "00621":
            member = rng.choice(_BCBS_PREFIXES) + digits
        elif payer.payer_id == "60054":
            member = "W" + digits
        elif payer.payer_id == "62308":
            member = "U" + digits[:8] + "01"
        elif payer.payer_id == "61101":
            member = "H" + digits[:8]
        elif payer.kind == "medicare":
            letter, mixed = _MBI_LETTERS, _MBI_LETTERS + "0123456789"
            member = "".join(
                (
                    str(rng.randint(1, 9)),
                    rng.choice(letter),
                    rng.choice(mixed),
                    str(rng.randint(0, 9)),
                    rng.choice(letter),
                    rng.choice(mixed),
                    str(rng.randint(0, 9)),
                    rng.choice(letter),
                    rng.choice(letter),
                    f"{rng.randint(0, 99):02d}",
                )
            )
        else:
            member = digits
        if inactive:
            return member[:-3] + "000"
        if not member.endswith(("000", "999")):
            return member


def _group_number(rng: random.Random, payer: Payer) -> str | None:
    if not payer.has_groups:
        return None
    prefix = "P" if payer.payer_id == "00621" else ""
    return f"{prefix}{rng.randrange(100_000, 9_999_999)}"


# --- The demo patients -----------------------------------------------------------------------------


def _persona_insurance(rng: random.Random, payer: Payer, lowest: int, highest: int) -> tuple[str, _Insurance]:
    """A member id whose deductible is between ``lowest`` and ``highest``: what the persona shows."""
    while True:
        member = _member_id(rng, payer)
        benefits = codes.benefits_for(payer, member)
        if lowest <= benefits.deductible <= highest:
            return member, _Insurance(payer, benefits, None)


def _write_personas(gen: _Generator, seed: int) -> None:
    rng = random.Random(f"carefront-sandbox-persona-bills:{seed}")
    people = persona_people(seed)
    today = gen.today
    hospital = gen.hospital
    coverage_start = date(today.year - 3, 1, 1)

    def enrol(who: str, payer: Payer, member_id: str, subscriber: Person, relationship: str) -> None:
        gen.coverage(
            PERSONA_PATIENTS[who] + 1,
            payer,
            member_id,
            payer.plans[0],
            _group_number(rng, payer),
            subscriber,
            relationship,
            "primary",
            coverage_start,
        )

    def register(who: str, payer: Payer, lowest: int, highest: int) -> tuple[int, str, str, _Insurance]:
        """Write the persona's patient and coverage (deductible in range): key, account, member id, insurance."""
        person = people[who]
        email = plain_email(person.given_name, person.family_name, "example.org")
        account = gen.patient(PERSONA_PATIENTS[who], person, rng, contact=True, email=email)
        member_id, insurance = _persona_insurance(rng, payer, lowest, highest)
        enrol(who, payer, member_id, person, "self")
        return PERSONA_PATIENTS[who] + 1, account, member_id, insurance

    def age(who: str) -> int:
        return _age(people[who].birth_date, today)

    # A patient with a balance: an emergency visit last month, nothing paid yet.
    key, account, _, insurance = register("balance", _PAYER["Blue Cross Blue Shield of Illinois"], 50_000, 100_000)
    office = gen.office_visit(rng, age("balance"), False, "Family Medicine")
    gen.statement(rng, key, account, insurance, [(today - timedelta(days=300), office)], "full")
    emergency = _Visit(
        "Emergency", "Emergency Department", hospital.pick(rng, "Emergency Department").key, _emergency_lines(rng)
    )
    gen.statement(rng, key, account, insurance, [(today - timedelta(days=45), emergency)], "none", allow_denial=False)
    gen.upcoming_appointment(rng, key, "vt-follow-up", office.clinician_record or hospital.clinicians[0], 5)

    # A patient with a large balance, for a payment plan: high deductible, knee MRI then arthroscopy.
    key, account, _, insurance = register("plan", _PAYER["Aetna"], 300_000, 500_000)
    orthopedist = hospital.pick(rng, "Orthopedics").key
    mri = _Visit("Imaging", "Radiology", gen.radiologist, [(_C["73721"], 1, 0)])
    gen.statement(rng, key, account, insurance, [(today - timedelta(days=110), mri)], "none", allow_denial=False)
    surgery = _Visit("Outpatient procedure", "Orthopedics", orthopedist, _procedure_lines(rng, "knee"))
    gen.statement(rng, key, account, insurance, [(today - timedelta(days=70), surgery)], "none", allow_denial=False)

    # A parent who is the guarantor of a minor: both patients, one household account, one family plan.
    parent, family_plan = people["parent"], _PAYER["Blue Cross Blue Shield of Illinois"]
    key, account, member_id, insurance = register("parent", family_plan, 50_000, 150_000)
    physical = gen.office_visit(rng, age("parent"), False, "Family Medicine")
    gen.statement(rng, key, account, insurance, [(today - timedelta(days=240), physical)], "full")
    child_key = PERSONA_PATIENTS["child"] + 1
    gen.patient(PERSONA_PATIENTS["child"], people["child"], rng, contact=False, email=None, account=account)
    enrol("child", family_plan, member_id, parent, "child")
    # Each family member has their own deductible to meet.
    child_insurance = _Insurance(family_plan, insurance.benefits, None)
    parent_email = plain_email(parent.given_name, parent.family_name, "example.org")
    gen.related(child_key, parent, "mother", "guardian", parent_email, key)
    well_child = gen.office_visit(rng, age("child"), False, "Pediatrics")
    gen.statement(rng, child_key, account, child_insurance, [(today - timedelta(days=330), well_child)], "full")
    wrist = _Visit(
        "Emergency",
        "Emergency Department",
        hospital.pick(rng, "Emergency Department").key,
        _emergency_lines(rng, broken_wrist=True),
    )
    wrist_bill = [(today - timedelta(days=28), wrist)]
    gen.statement(rng, child_key, account, child_insurance, wrist_bill, "none", allow_denial=False)

    # The long inpatient stay: 16 nights, three in intensive care, surgery on day one.
    key, account, _, insurance = register("inpatient", _PAYER["UnitedHealthcare"], 100_000, 150_000)
    office = gen.office_visit(rng, age("inpatient"), False, "Internal Medicine")
    gen.statement(rng, key, account, insurance, [(today - timedelta(days=200), office)], "full")
    stay = _Visit(
        "Inpatient stay",
        "Hospital Medicine",
        hospital.pick(rng, "Hospital Medicine").key,
        _inpatient_lines(rng, 16, 3, True),
        16,
    )
    gen.statement(rng, key, account, insurance, [(today - timedelta(days=50), stay)], "none", allow_denial=False)
    if gen.statement_index != PERSONA_STATEMENTS["inpatient"] + 1:
        raise AssertionError("the demo patients' statements are out of their documented order")


# --- Everyone else -----------------------------------------------------------------------------------


def _write_patient(gen: _Generator, rng: random.Random, index: int) -> None:
    today = gen.today
    sex = rng.choice("FM")
    spanish = rng.random() < 0.2
    family = rng.choice(names.SPANISH_FAMILY_NAMES if spanish else names.FAMILY_NAMES)
    given = rng.choice(names.GIVEN_NAMES_FEMALE if sex == "F" else names.GIVEN_NAMES_MALE)
    band = rng.random()
    low, high = (0, 17) if band < 0.18 else (18, 39) if band < 0.46 else (40, 64) if band < 0.78 else (65, 90)
    person = Person(given, family, _birth_date(rng, low, high), "es" if spanish and rng.random() < 0.45 else "en")
    age = _age(person.birth_date, today)
    minor = age < 18
    email = None if minor or rng.random() < 0.15 else plain_email(given, family, "example.org", str(index))
    account = gen.patient(index, person, rng, contact=not minor and rng.random() < 0.8, email=email)
    patient_key = index + 1

    subscriber, relationship = person, "self"
    if minor:
        parent_sex = rng.choice("FM")
        parent = Person(
            rng.choice(names.GIVEN_NAMES_FEMALE if parent_sex == "F" else names.GIVEN_NAMES_MALE),
            family,
            person.birth_date - timedelta(days=rng.randint(22 * 365, 40 * 365)),
        )
        gen.related(
            patient_key,
            parent,
            "mother" if parent_sex == "F" else "father",
            "guardian",
            plain_email(parent.given_name, family, "example.org", f"{index}p"),
        )
        subscriber, relationship = parent, "child"
    elif age >= 70 and rng.random() < 0.15:
        helper = Person(rng.choice(names.GIVEN_NAMES_FEMALE), family, _birth_date(rng, 35, 55))
        gen.related(
            patient_key,
            helper,
            "daughter",
            "caregiver",
            plain_email(helper.given_name, family, "example.org", f"{index}c"),
        )
    elif rng.random() < 0.05:
        spouse = Person(
            rng.choice(names.GIVEN_NAMES_MALE if sex == "F" else names.GIVEN_NAMES_FEMALE),
            family,
            person.birth_date + timedelta(days=rng.randint(-1500, 1500)),
        )
        gen.related(
            patient_key, spouse, "spouse", "billing", plain_email(spouse.given_name, family, "example.org", f"{index}s")
        )

    roll = rng.random()
    if age >= 65:
        payer: Payer | None = _PAYER["Medicare Part B"]
    elif roll < (0.22 if minor else 0.12):
        payer = _PAYER["Medicaid"]
    elif roll < (0.97 if minor else 0.9):
        payer = rng.choices(_COMMERCIAL, _COMMERCIAL_WEIGHTS)[0]
    else:
        payer = None
    insurance = _Insurance(None, _SELF_PAY, None)
    if payer is not None:
        inactive = payer.kind != "medicare" and rng.random() < 0.03
        member = _member_id(rng, payer, inactive=inactive)
        started = date(today.year - rng.randint(0, 6), 1, 1)
        ended = today - timedelta(days=rng.randint(60, 150)) if inactive else None
        # The hospital has not heard that an inactive coverage ended: its file still shows it open, and
        # only the bills since (PR-27) and an eligibility check tell the truth.
        gen.coverage(
            patient_key,
            payer,
            member,
            rng.choice(payer.plans),
            _group_number(rng, payer),
            subscriber,
            relationship,
            "primary",
            started,
        )
        insurance = _Insurance(payer, codes.benefits_for(payer, member), ended)
        if payer.kind == "medicare" and rng.random() < 0.12:
            gen.coverage(
                patient_key,
                _PAYER["Medicaid"],
                _member_id(rng, _PAYER["Medicaid"]),
                _PAYER["Medicaid"].plans[0],
                None,
                person,
                "self",
                "secondary",
                started,
            )

    medicare = payer is not None and payer.kind == "medicare"
    count = rng.choices(_STATEMENT_COUNTS, _STATEMENT_COUNT_WEIGHTS)[0]
    days_ago = sorted((rng.randint(25, _HISTORY_DAYS) for _ in range(count)), reverse=True)
    had_therapy = False
    for ago in days_ago:
        visits = [(today - timedelta(days=ago), gen.random_visit(rng, age, medicare, not had_therapy))]
        had_therapy = had_therapy or visits[0][1].kind == "Physical therapy"
        if rng.random() < 0.3:
            follow_up = _Visit("Lab", "Laboratory", gen.hospital.laboratory, _lab_lines(rng))
            visits.append((today - timedelta(days=max(ago - rng.randint(1, 10), 21)), follow_up))
        gen.statement(rng, patient_key, account, insurance, visits, None)
    if rng.random() < 0.05:
        clinician = gen.hospital.pick(rng, "Pediatrics" if minor else "Family Medicine")
        gen.past_appointment(
            rng,
            patient_key,
            today - timedelta(days=rng.randint(10, 200)),
            "vt-follow-up",
            clinician,
            rng.choice(("cancelled", "noshow")),
        )
    if rng.random() < 0.15:
        clinician = gen.hospital.pick(
            rng, "Pediatrics" if minor else rng.choice(("Family Medicine", "Internal Medicine"))
        )
        gen.upcoming_appointment(
            rng,
            patient_key,
            rng.choice(("vt-follow-up", "vt-physical", "vt-sick")) if not minor else "vt-well-child",
            clinician,
            3,
        )


# --- The file ------------------------------------------------------------------------------------------


def generate(path: Path, *, seed: int, size: int, today: date, time_zone: str) -> GenerationStats:
    """Write a new sandbox database of ``size`` patients to ``path``, which must not exist yet."""
    if size < MINIMUM_SIZE:
        raise ValueError(f"size must be at least {MINIMUM_SIZE}, got {size}")
    started = timer.perf_counter()
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        # Journaling and syncing are pointless for a file nobody sees until it is complete.
        connection.executescript(
            "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;"
            "PRAGMA temp_store = MEMORY; PRAGMA cache_size = -200000;"
        )
        connection.executescript(TABLES)
        connection.execute("BEGIN")
        sink = _Sink(connection)
        rng = random.Random(seed)
        hospital, provider_rows = _hospital_rows(random.Random(f"carefront-sandbox-hospital:{seed}"))
        for position, entry in enumerate(SERVICE_CODES):
            sink.add("service_codes", (position + 1, entry.code, entry.system, entry.description))
        for department, department_key in _DEPARTMENT_ID.items():
            sink.add("departments", (department_key, department))
        for location in _LOCATIONS:
            sink.add("locations", location)
        for position, (key, name, minutes, online, instructions, phone) in enumerate(_VISIT_TYPES):
            sink.add("visit_types", (key, position, name, minutes, int(online), instructions, phone))
        for provider in provider_rows:
            sink.add("providers", provider)
        for meta_key, value in (
            ("schema_version", SCHEMA_VERSION),
            ("seed", str(seed)),
            ("size", str(size)),
            ("today", today.isoformat()),
            ("time_zone", time_zone),
        ):
            sink.add("meta", (meta_key, value))
        gen = _Generator(sink, seed, today, ZoneInfo(time_zone), hospital)
        _write_personas(gen, seed)
        for index in range(len(PERSONA_PATIENTS), size):
            _write_patient(gen, rng, index)
        sink.flush()
        connection.execute("COMMIT")
        connection.executescript(INDEXES)
        connection.execute("PRAGMA journal_mode = WAL")
    finally:
        connection.close()
    counts = sink.counts
    return GenerationStats(
        patients=counts.get("patients", 0),
        statements=counts.get("statements", 0),
        visits=counts.get("visits", 0),
        charge_lines=counts.get("charge_lines", 0),
        rows=sum(counts.values()),
        seconds=timer.perf_counter() - started,
    )


def install_database(path: Path, *, seed: int, size: int, today: date, time_zone: str) -> GenerationStats | None:
    """Generate the database at ``path`` unless it exists; None when another process got there first.

    The file is built under a temporary name and hard-linked into place: linking fails when the
    name exists, so two processes starting at once never replace a file the other already uses.
    """
    if path.exists():
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        stats = generate(temporary, seed=seed, size=size, today=today, time_zone=time_zone)
        try:
            os.link(temporary, path)
        except FileExistsError:
            return None
        return stats
    finally:
        temporary.unlink(missing_ok=True)
