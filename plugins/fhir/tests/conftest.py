"""Fixtures for the fhir plugin's tests: a real FHIR server (Medplum's router in tests/server/),
started once per session on a free 127.0.0.1 port and reset and reseeded for every test, the
signing keys the token endpoint trusts, and adapters built the way the portal builds them.

The seed: synthetic patients from carebundle (US Core Patients, deterministic for a seed) made into
families with MRNs, guarantor Accounts, Coverage and RelatedPersons here; billing (Invoice,
ChargeItem, Encounter, ExplanationOfBenefit, a prior payment) and scheduling (HealthcareService,
Location, Practitioner(Role), Schedule, Slot) fixtures are written out below.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from carebundle import generate_patient
from carefront_fhir import hooks
from carefront_fhir.ehr import FhirEHR
from carefront_sdk.adapters import AdapterContext, Port
from carefront_sdk.models import PatientQuery, SlotQuery
from carefront_sdk.testing import EHRSample, FakeClock, adapter_from_plugin, make_adapter_context
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SERVER_DIR = Path(__file__).parent / "server"
TIME_ZONE = "America/Chicago"
ZONE = ZoneInfo(TIME_ZONE)
CLIENT_ID = "carefront-portal"
KEY_ID = "carefront-test-key"
ES_CLIENT_ID = "carefront-portal-es"

MRN_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.1"
ACCOUNT_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.2"
STATEMENT_SYSTEM = "urn:oid:2.16.840.1.113883.3.9999.3"
NAIC = "urn:oid:2.16.840.1.113883.6.300"
CPT = "http://www.ama-assn.org/go/cpt"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
CARC = "https://x12.org/codes/claim-adjustment-reason-codes"
RARC = "https://x12.org/codes/remittance-advice-remark-codes"
GROUP = "https://x12.org/codes/claim-adjustment-group-codes"
ONLINE_VISIT_TYPES = ["hs-follow-up", "hs-new"]

SLOT_DAY = date(2025, 3, 5)
"""Two days after the contract kit's clock (Monday 3 March 2025, 15:00 UTC), in Chicago."""


# --- The server ------------------------------------------------------------------------------------


@dataclass
class FhirServer:
    """The Node process and its control endpoints."""

    url: str
    process: subprocess.Popen[str]
    http: httpx.Client

    @property
    def base_url(self) -> str:
        return f"{self.url}/fhir"

    def control(self, path: str, body: dict[str, Any] | None = None) -> None:
        response = self.http.post(f"{self.url}/_test/{path}", json=body or {})
        assert response.status_code == 204, response.text

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.get(f"{self.url}/_test/stats").json()
        return answer

    def resources(self, search: str) -> list[dict[str, Any]]:
        """What the server holds: the first page of a search, made without authorization."""
        bundle = self.http.get(f"{self.url}/_test/fhir/{search}").json()
        assert bundle.get("resourceType") == "Bundle", bundle
        return [entry["resource"] for entry in bundle.get("entry", [])]

    def requests(self, method: str, path: str) -> list[dict[str, Any]]:
        """The FHIR requests made so far with this method whose path starts with ``/fhir/<path>``."""
        return [
            item
            for item in self.stats()["requests"]
            if item["method"] == method and item["path"].startswith(f"/fhir/{path}")
        ]


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FhirServer]:
    node = shutil.which("node")
    assert node, "the fhir plugin's tests need Node.js 20 (see .ci/bootstrap)"
    assert (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir(), (
        f"run `npm ci` in {SERVER_DIR} first (.ci/bootstrap does)"
    )
    errors = tmp_path_factory.mktemp("fhir-server") / "stderr.log"
    with errors.open("w") as stderr:
        process = subprocess.Popen(
            [node, "server.js", "0"], cwd=SERVER_DIR, stdout=subprocess.PIPE, stderr=stderr, text=True
        )
    ready: list[str] = []
    reader = threading.Thread(target=lambda: ready.append(process.stdout.readline() if process.stdout else ""))
    reader.start()
    reader.join(timeout=60)
    try:
        assert ready, "the FHIR server said nothing within 60 s"
        assert ready[0].startswith("listening "), f"the FHIR server did not start: {errors.read_text()[-2000:]}"
        with httpx.Client(timeout=30) as http:
            yield FhirServer(ready[0].split()[1], process, http)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


# --- Keys --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    public_pem: str


def _pair(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> KeyPair:
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return KeyPair(private, public)


@pytest.fixture(scope="session")
def rsa_key() -> KeyPair:
    return _pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="session")
def ec_key() -> KeyPair:
    return _pair(ec.generate_private_key(ec.SECP384R1()))


# --- The seed ------------------------------------------------------------------------------------------


@dataclass
class Seed:
    resources: list[dict[str, Any]] = field(default_factory=list)
    patients: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, resource: dict[str, Any]) -> dict[str, Any]:
        self.resources.append(resource)
        if resource["resourceType"] == "Patient":
            self.patients[resource["id"]] = resource
        return resource

    def query(self, patient_id: str, **identifiers: str) -> PatientQuery:
        patient = self.patients[patient_id]
        name = patient["name"][0]
        return PatientQuery(name["given"][0], name["family"], date.fromisoformat(patient["birthDate"]), **identifiers)


def ref(kind: str, ident: str, display: str | None = None) -> dict[str, str]:
    reference = {"reference": f"{kind}/{ident}"}
    if display:
        reference["display"] = display
    return reference


def concept(system: str, code: str, display: str | None = None, text: str | None = None) -> dict[str, Any]:
    coding: dict[str, str] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    value: dict[str, Any] = {"coding": [coding]}
    if text:
        value["text"] = text
    return value


def usd(cents: int) -> dict[str, Any]:
    return {"value": cents / 100, "currency": "USD"}


def local(day: date, hour: int, minute: int = 0) -> str:
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE).isoformat()


FAMILIES = 6
"""Adult patients generated; the first has a child, a balance and the contract's sample data."""
PAYERS = [("org-aetna", "Aetna", "60054"), ("org-bcbs", "Blue Cross Blue Shield of Illinois", "70670")]


def _synthetic_patient(index: int, *, child: bool = False) -> dict[str, Any]:
    generated = generate_patient(
        seed=20250303, index=index, sex="F" if index % 2 else "M", age_range=(6, 12) if child else (30, 60)
    )
    resource: dict[str, Any] = generated.model_dump(mode="json", exclude_none=True)
    return resource


def _people(seed: Seed) -> None:
    for n in range(1, FAMILIES + 1):
        patient = _synthetic_patient(n)
        given, family = patient["name"][0]["given"][0], patient["name"][0]["family"]
        patient |= {
            "id": f"pt-{n}",
            "identifier": [*patient.get("identifier", []), {"system": MRN_SYSTEM, "value": f"MRN{1000 + n}"}],
            "telecom": [
                {"system": "email", "value": f"{given}.{family}@example.org".lower()},
                {"system": "phone", "value": f"+1555555{n:04}", "use": "mobile"},
            ],
            "address": [
                {
                    "use": "home",
                    "line": [f"{10 + n} Elm Street"],
                    "city": "Springfield",
                    "state": "IL",
                    "postalCode": "62701",
                }
            ],
            "communication": [{"language": concept("urn:ietf:bcp:47", "es" if n == 3 else "en-US"), "preferred": True}],
        }
        seed.add(patient)
        members = [ref("Patient", f"pt-{n}")]
        if n == 1:
            kid = _synthetic_patient(100 + n, child=True)
            kid |= {
                "id": "pt-1-child",
                "name": [{"use": "official", "family": family, "given": kid["name"][0]["given"]}],
                "identifier": [*kid.get("identifier", []), {"system": MRN_SYSTEM, "value": "MRN2001"}],
                "address": patient["address"],
            }
            seed.add(kid)
            members.append(ref("Patient", "pt-1-child"))
            seed.add(
                {
                    "resourceType": "RelatedPerson",
                    "id": "rp-parent",
                    "active": True,
                    "patient": ref("Patient", "pt-1-child"),
                    "identifier": [{"system": MRN_SYSTEM, "value": "MRN1001"}],
                    "relationship": [concept("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "PRN", "parent")],
                    "name": [{"family": family, "given": [given]}],
                    "birthDate": patient["birthDate"],
                    "telecom": patient["telecom"][:1],
                }
            )
            seed.add(
                {
                    "resourceType": "RelatedPerson",
                    "id": "rp-billing",
                    "active": True,
                    "patient": ref("Patient", "pt-1"),
                    "relationship": [
                        concept("http://terminology.hl7.org/CodeSystem/v2-0131", "BP", "Billing contact person")
                    ],
                    "name": [{"family": "Okafor", "given": ["Dana"]}],
                    "telecom": [{"system": "email", "value": "dana.okafor@example.org"}],
                }
            )
            seed.add(
                {
                    "resourceType": "RelatedPerson",
                    "id": "rp-neighbour",
                    "active": True,
                    "patient": ref("Patient", "pt-1"),
                    "relationship": [
                        concept("http://terminology.hl7.org/CodeSystem/v2-0131", "C", "Emergency Contact")
                    ],
                    "name": [{"family": "Marsh", "given": ["Lee"]}],
                }
            )
        seed.add(
            {
                "resourceType": "Account",
                "id": f"acct-{n}",
                "status": "active",
                "identifier": [{"system": ACCOUNT_SYSTEM, "value": f"ACC{1000 + n}"}],
                "name": "Guarantor account",
                "subject": members,
                "owner": ref("Organization", "org-hospital", "Springfield General Hospital"),
                "guarantor": [{"party": ref("Patient", f"pt-{n}")}],
            }
        )
        payer_id, payer_name, naic = PAYERS[n % len(PAYERS)] if n != 1 else PAYERS[0]
        seed.add(
            {
                "resourceType": "Coverage",
                "id": f"cov-{n}",
                "status": "active",
                "identifier": [
                    {
                        "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MB"),
                        "value": f"W{100200300 + n}",
                    }
                ],
                "subscriberId": f"W{100200300 + n}",
                "beneficiary": ref("Patient", f"pt-{n}"),
                "subscriber": ref("Patient", f"pt-{n}"),
                "relationship": concept("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "self"),
                "period": {"start": "2024-01-01"},
                "payor": [ref("Organization", payer_id)],
                "class": [
                    {
                        "type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan"),
                        "value": "POS2",
                        "name": "Choice POS II",
                    },
                    {
                        "type": concept("http://terminology.hl7.org/CodeSystem/coverage-class", "group"),
                        "value": f"GRP-{4400 + n}",
                    },
                ],
                "order": 1,
            }
        )
        if n == 1:
            seed.add(
                {
                    "resourceType": "Coverage",
                    "id": "cov-1-child",
                    "status": "active",
                    "identifier": [
                        {
                            "type": concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MB"),
                            "value": "W100200301-02",
                        }
                    ],
                    "subscriberId": "W100200301",
                    "beneficiary": ref("Patient", "pt-1-child"),
                    "subscriber": ref("Patient", "pt-1"),
                    "relationship": concept("http://terminology.hl7.org/CodeSystem/subscriber-relationship", "child"),
                    "period": {"start": "2024-01-01"},
                    "payor": [{"identifier": {"system": NAIC, "value": naic}, "display": payer_name}],
                    "order": 1,
                }
            )


def _organizations(seed: Seed) -> None:
    seed.add(
        {"resourceType": "Organization", "id": "org-hospital", "name": "Springfield General Hospital", "active": True}
    )
    for payer_id, name, naic in PAYERS:
        seed.add(
            {
                "resourceType": "Organization",
                "id": payer_id,
                "active": True,
                "name": name,
                "identifier": [{"system": NAIC, "value": naic}],
                "type": [concept("http://terminology.hl7.org/CodeSystem/organization-type", "pay")],
            }
        )


def _scheduling(seed: Seed) -> None:
    seed.add(
        {
            "resourceType": "Practitioner",
            "id": "prac-lee",
            "active": True,
            "name": [{"family": "Lee", "given": ["Jordan"], "prefix": ["Dr."]}],
        }
    )
    seed.add(
        {
            "resourceType": "Practitioner",
            "id": "prac-shah",
            "active": True,
            "name": [{"family": "Shah", "given": ["Priya"], "prefix": ["Dr."]}],
        }
    )
    for ident, name, street, phone in (
        ("loc-main", "Main Street Clinic", "100 Main Street", "+15555550100"),
        ("loc-north", "North Campus", "9 College Avenue", "+15555550110"),
    ):
        seed.add(
            {
                "resourceType": "Location",
                "id": ident,
                "status": "active",
                "name": name,
                "address": {"line": [street], "city": "Springfield", "state": "IL", "postalCode": "62701"},
                "telecom": [{"system": "phone", "value": phone}],
            }
        )
    for ident, name, minutes, details in (
        ("hs-follow-up", "Follow-up visit", 20, "Bring your medication list."),
        ("hs-new", "New patient visit", 40, "Arrive 15 minutes early."),
        ("hs-mri", "MRI", 60, "Remove all metal before the scan."),
    ):
        seed.add(
            {
                "resourceType": "HealthcareService",
                "id": ident,
                "active": True,
                "name": name,
                "extraDetails": details,
                "telecom": [{"system": "phone", "value": "+15555550199"}],
                "extension": [
                    {
                        "url": "https://carefront.dev/fhir/StructureDefinition/visit-duration",
                        "valueDuration": {
                            "value": minutes,
                            "unit": "min",
                            "system": "http://unitsofmeasure.org",
                            "code": "min",
                        },
                    },
                    *(
                        [
                            {
                                "url": "https://carefront.dev/fhir/StructureDefinition/typical-charge",
                                "valueMoney": {"value": 155.5, "currency": "USD"},
                            }
                        ]
                        if ident == "hs-follow-up"
                        else []
                    ),
                ],
                **(
                    {"type": [{"coding": [{"system": "https://x12.org/codes/service-type-codes", "code": "98"}]}]}
                    if ident == "hs-follow-up"
                    else {}
                ),
            }
        )
    seed.add(
        {
            "resourceType": "PractitionerRole",
            "id": "role-lee",
            "active": True,
            "practitioner": ref("Practitioner", "prac-lee", "Dr. Jordan Lee"),
            "specialty": [concept("http://nucc.org/provider-taxonomy", "207Q00000X", "Family Medicine")],
            "location": [ref("Location", "loc-main")],
            "healthcareService": [ref("HealthcareService", "hs-follow-up"), ref("HealthcareService", "hs-new")],
        }
    )
    seed.add(
        {
            "resourceType": "PractitionerRole",
            "id": "role-shah",
            "active": True,
            "practitioner": ref("Practitioner", "prac-shah"),
            "specialty": [concept("http://nucc.org/provider-taxonomy", "207R00000X", "Internal Medicine")],
            "location": [ref("Location", "loc-north")],
            "healthcareService": [ref("HealthcareService", "hs-new"), ref("HealthcareService", "hs-mri")],
        }
    )
    schedules = {
        "sch-lee-follow-up": ("prac-lee", "loc-main", "hs-follow-up"),
        "sch-lee-new": ("prac-lee", "loc-main", "hs-new"),
        "sch-shah-new": ("prac-shah", "loc-north", "hs-new"),
    }
    for ident, (practitioner, place, service) in schedules.items():
        seed.add(
            {
                "resourceType": "Schedule",
                "id": ident,
                "active": True,
                "actor": [ref("Practitioner", practitioner), ref("Location", place), ref("HealthcareService", service)],
            }
        )

    def slot(ident: str, schedule: str, starts: str, minutes: int, status: str = "free") -> None:
        start = datetime.fromisoformat(starts)
        seed.add(
            {
                "resourceType": "Slot",
                "id": ident,
                "schedule": ref("Schedule", schedule),
                "status": status,
                "start": starts,
                "end": (start + timedelta(minutes=minutes)).isoformat(),
            }
        )

    for hour, minute in ((9, 0), (9, 30), (10, 0), (10, 30), (11, 0)):
        slot(f"slot-fu-{hour:02}{minute:02}", "sch-lee-follow-up", local(SLOT_DAY, hour, minute), 20)
    slot("slot-fu-busy", "sch-lee-follow-up", local(SLOT_DAY, 12), 20, status="busy")
    # Just outside the day in Chicago (but inside it in UTC, or the other way round).
    slot("slot-fu-day-before", "sch-lee-follow-up", local(SLOT_DAY - timedelta(days=1), 23, 30), 20)
    slot("slot-fu-day-after", "sch-lee-follow-up", local(SLOT_DAY + timedelta(days=1), 0, 0), 20)
    slot("slot-new-lee", "sch-lee-new", local(SLOT_DAY, 14), 40)
    slot("slot-new-shah", "sch-shah-new", local(SLOT_DAY, 8, 30), 40)


def _billing(seed: Seed) -> None:
    lee = ref("Practitioner", "prac-lee", "Dr. Jordan Lee")
    hospital = ref("Organization", "org-hospital", "Springfield General Hospital")
    for ident, day in (("enc-dec", date(2024, 12, 10)), ("enc-jan", date(2025, 1, 14))):
        seed.add(
            {
                "resourceType": "Encounter",
                "id": ident,
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                    "display": "ambulatory",
                },
                "type": [concept("http://snomed.info/sct", "185389009", "Follow-up visit", text="Office visit")],
                "subject": ref("Patient", "pt-1"),
                "participant": [{"individual": lee}],
                "period": {"start": local(day, 9), "end": local(day, 9, 30)},
                "serviceProvider": {"reference": "Organization/org-hospital", "display": "Family medicine"},
            }
        )

    def charge(ident: str, encounter: str, day: date, code: str, description: str) -> None:
        seed.add(
            {
                "resourceType": "ChargeItem",
                "id": ident,
                "status": "billable",
                "code": {"coding": [{"system": CPT, "code": code, "display": description}], "text": description},
                "subject": ref("Patient", "pt-1"),
                "context": ref("Encounter", encounter),
                "occurrenceDateTime": local(day, 9),
                "performer": [{"actor": lee}],
                "quantity": {"value": 1},
                "account": [ref("Account", "acct-1")],
            }
        )

    charge("ci-dec-visit", "enc-dec", date(2024, 12, 10), "99214", "Office visit, established patient")
    charge("ci-jan-visit", "enc-jan", date(2025, 1, 14), "99213", "Office visit, established patient")
    charge("ci-jan-panel", "enc-jan", date(2025, 1, 14), "80053", "Comprehensive metabolic panel")

    def invoice(ident: str, code: str, day: date, lines: list[tuple[str, int]], patient_share: int) -> None:
        seed.add(
            {
                "resourceType": "Invoice",
                "id": ident,
                "status": "issued",
                "identifier": [{"system": STATEMENT_SYSTEM, "value": code}],
                "subject": ref("Patient", "pt-1"),
                "recipient": ref("Patient", "pt-1"),
                "date": day.isoformat(),
                "issuer": hospital,
                "account": ref("Account", "acct-1"),
                "lineItem": [
                    {
                        "sequence": index,
                        "chargeItemReference": ref("ChargeItem", charge_id),
                        "priceComponent": [{"type": "base", "amount": usd(cents)}],
                    }
                    for index, (charge_id, cents) in enumerate(lines, start=1)
                ],
                "totalGross": usd(sum(cents for _, cents in lines)),
                "totalNet": usd(patient_share),
            }
        )

    invoice("inv-dec", "SC3K9P1", date(2025, 1, 2), [("ci-dec-visit", 12000)], 2000)
    invoice("inv-jan", "SC7Q4M2", date(2025, 2, 1), [("ci-jan-visit", 18000), ("ci-jan-panel", 6000)], 9500)
    seed.add(
        {
            "resourceType": "Invoice",
            "id": "inv-draft",
            "status": "draft",
            "identifier": [{"system": STATEMENT_SYSTEM, "value": "SCDRAFT"}],
            "subject": ref("Patient", "pt-1"),
            "date": "2025-03-01",
        }
    )

    def adjudication(category: str, cents: int, *reasons: tuple[str, str]) -> dict[str, Any]:
        entry: dict[str, Any] = {"category": concept(ADJUDICATION, category), "amount": usd(cents)}
        if reasons:
            entry["reason"] = {"coding": [{"system": system, "code": code} for system, code in reasons]}
        return entry

    def eob(ident: str, encounter: str, day: date, items: list[tuple[str, list[dict[str, Any]]]]) -> None:
        seed.add(
            {
                "resourceType": "ExplanationOfBenefit",
                "id": ident,
                "status": "active",
                "type": concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
                "use": "claim",
                "patient": ref("Patient", "pt-1"),
                "created": local(day + timedelta(days=10), 12),
                "insurer": ref("Organization", "org-aetna", "Aetna"),
                "provider": hospital,
                "outcome": "complete",
                "insurance": [{"focal": True, "coverage": ref("Coverage", "cov-1")}],
                "item": [
                    {
                        "sequence": index,
                        "productOrService": concept(CPT, code),
                        "servicedDate": day.isoformat(),
                        "encounter": [ref("Encounter", encounter)],
                        "adjudication": entries,
                    }
                    for index, (code, entries) in enumerate(items, start=1)
                ],
            }
        )

    eob(
        "eob-dec",
        "enc-dec",
        date(2024, 12, 10),
        [
            (
                "99214",
                [
                    adjudication("submitted", 12000),
                    adjudication("eligible", 10000),
                    adjudication("discount", 2000, (CARC, "45"), (GROUP, "CO")),
                    adjudication("copay", 2000, (CARC, "3")),
                    adjudication("benefit", 8000),
                ],
            )
        ],
    )
    eob(
        "eob-jan",
        "enc-jan",
        date(2025, 1, 14),
        [
            (
                "99213",
                [
                    adjudication("submitted", 18000),
                    adjudication("discount", 4000, (CARC, "45")),
                    adjudication("deductible", 5000, (CARC, "1"), (RARC, "N130")),
                    adjudication("benefit", 9000),
                ],
            ),
            (
                "80053",
                [
                    adjudication("discount", 1500, (CARC, "45")),
                    adjudication("deductible", 4500),
                    adjudication("benefit", 0),
                ],
            ),
        ],
    )
    # The patient paid the December copay at the front desk.
    seed.add(
        {
            "resourceType": "PaymentReconciliation",
            "id": "pay-desk",
            "status": "active",
            "created": local(date(2025, 1, 10), 10),
            "paymentDate": "2025-01-10",
            "paymentAmount": usd(2000),
        }
    )
    seed.add(
        {
            "resourceType": "PaymentNotice",
            "id": "notice-desk",
            "status": "active",
            "request": ref("Invoice", "inv-dec"),
            "created": local(date(2025, 1, 10), 10),
            "payment": ref("PaymentReconciliation", "pay-desk"),
            "recipient": hospital,
            "amount": usd(2000),
        }
    )


def build_seed() -> Seed:
    seed = Seed()
    _organizations(seed)
    _people(seed)
    _scheduling(seed)
    _billing(seed)
    return seed


@pytest.fixture(scope="session")
def seed_data() -> Seed:
    return build_seed()


@pytest.fixture
def server(fhir_server: FhirServer, seed_data: Seed, rsa_key: KeyPair, ec_key: KeyPair) -> FhirServer:
    """The server, reset and loaded with the seed; it trusts the RSA key (kid given) and the EC key."""
    fhir_server.control("reset")
    fhir_server.control(
        "config",
        {
            "clients": [
                {"client_id": CLIENT_ID, "public_key_pem": rsa_key.public_pem, "kid": KEY_ID},
                {"client_id": ES_CLIENT_ID, "public_key_pem": ec_key.public_pem},
            ]
        },
    )
    fhir_server.control("load", {"resources": json.loads(json.dumps(seed_data.resources))})
    return fhir_server


# --- Adapters ------------------------------------------------------------------------------------------


def fhir_config(server: FhirServer, **overrides: Any) -> dict[str, Any]:
    """Settings as a hospital writes them (the private key by reference, given by the caller)."""
    config: dict[str, Any] = {
        "base_url": server.base_url,
        "client_id": CLIENT_ID,
        "key_id": KEY_ID,
        "mrn_system": MRN_SYSTEM,
        "account_system": ACCOUNT_SYSTEM,
        "statement_code_system": STATEMENT_SYSTEM,
        "online_visit_types": ONLINE_VISIT_TYPES,
        "timeout_seconds": 5.0,
    }
    return config | overrides


@pytest.fixture
def private_key_file(tmp_path: Path, rsa_key: KeyPair) -> Path:
    path = tmp_path / "fhir-client-key.pem"
    path.write_text(rsa_key.private_pem)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeEHR = Callable[..., FhirEHR]


@pytest.fixture
async def make_ehr(
    server: FhirServer, private_key_file: Path, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[MakeEHR]:
    """Builds adapters through the plugin's registration hook, as the portal does; closes them after."""
    made: list[FhirEHR] = []

    def make(**overrides: Any) -> FhirEHR:
        config = fhir_config(server, private_key={"$file": str(private_key_file)}) | overrides
        context: AdapterContext = make_adapter_context(
            tmp_path / f"adapter-{len(made)}", name="fhir", config=config, clock=clock, time_zone=TIME_ZONE
        )
        ehr = adapter_from_plugin(hooks, Port.EHR, "fhir", context)
        assert isinstance(ehr, FhirEHR)
        made.append(ehr)
        return ehr

    yield make
    for ehr in made:
        await ehr.aclose()


@pytest.fixture
def sample(seed_data: Seed) -> EHRSample:
    return EHRSample(
        match=seed_data.query("pt-1", mrn="MRN1001"),
        patient_id="pt-1",
        statement_id="inv-jan",
        slot_query=SlotQuery("hs-follow-up", SLOT_DAY),
    )
