"""The REST layer against the real server: Bundle paging, retries honouring Retry-After, and
OperationOutcome errors as the SDK's tiers (the server's fault injection plays the failures)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from carefront_fhir.client import Conflict, Rejected
from carefront_fhir.ehr import FhirEHR
from carefront_sdk.errors import NotFound, Refused, Unavailable
from carefront_sdk.models import CoverageChange, CoverageRank
from carefront_sdk.testing import EHRSample

MakeEHR = Callable[..., FhirEHR]

PHI_CANARY = "Canary Fixtureby born 1961-02-03, member W999"


def _appointments(count: int) -> list[dict[str, Any]]:
    return [
        {
            "resourceType": "Appointment",
            "id": f"appt-history-{n}",
            "status": "fulfilled",
            "start": f"2024-{n % 12 + 1:02}-10T09:00:00-06:00",
            "end": f"2024-{n % 12 + 1:02}-10T09:20:00-06:00",
            "participant": [{"actor": {"reference": "Patient/pt-2"}, "status": "accepted"}],
        }
        for n in range(count)
    ]


async def test_a_search_spanning_three_pages_follows_next_links(make_ehr: MakeEHR, server: Any) -> None:
    server.control("config", {"page_size": 5})
    server.control("load", {"resources": _appointments(12)})
    appointments = await make_ehr().list_appointments("pt-2")
    assert len(appointments) == 12
    assert [appointment.starts_at for appointment in appointments] == sorted(a.starts_at for a in appointments)
    assert len(server.requests("POST", "Appointment/_search")) == 1
    assert len(server.requests("GET", "Appointment")) == 2, "pages two and three come from the next links"


async def test_paging_is_bounded(make_ehr: MakeEHR, server: Any) -> None:
    server.control("config", {"page_size": 5})
    server.control("load", {"resources": _appointments(12)})
    with pytest.raises(Unavailable, match="more than 2 pages"):
        await make_ehr(max_pages=2).list_appointments("pt-2")


async def test_429_is_retried_after_retry_after_seconds(make_ehr: MakeEHR, server: Any) -> None:
    ehr = make_ehr()
    await ehr.read_patient("pt-1")  # the token is bought before the clock starts
    server.control(
        "faults",
        {"faults": [{"method": "GET", "path": "/fhir/Patient/pt-1", "status": 429, "headers": {"Retry-After": "1"}}]},
    )
    started = time.monotonic()
    patient = await ehr.read_patient("pt-1")
    elapsed = time.monotonic() - started
    assert patient.id == "pt-1"
    assert 1.0 <= elapsed < 3.0, elapsed
    assert [item["status"] for item in server.requests("GET", "Patient/pt-1")] == [200, 429, 200]


async def test_retry_after_as_an_http_date(make_ehr: MakeEHR, server: Any) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.control(
        "faults",
        {"faults": [{"method": "GET", "path": "/fhir/Patient/pt-1", "status": 503, "headers": {"Retry-After": when}}]},
    )
    started = time.monotonic()
    assert (await make_ehr().read_patient("pt-1")).id == "pt-1"
    assert time.monotonic() - started >= 0.9


async def test_503_after_the_last_retry_is_unavailable(make_ehr: MakeEHR, server: Any) -> None:
    server.control(
        "faults",
        {
            "faults": [
                {
                    "method": "GET",
                    "path": "/fhir/Patient/pt-1",
                    "status": 503,
                    "headers": {"Retry-After": "0"},
                    "times": 3,
                }
            ]
        },
    )
    with pytest.raises(Unavailable) as failure:
        await make_ehr(max_retries=2).read_patient("pt-1")
    assert failure.value.retry_after == 0
    assert len([item for item in server.requests("GET", "Patient/pt-1") if item["status"] == 503]) == 3


async def test_a_retry_after_longer_than_the_adapter_waits_is_handed_to_the_portal(
    make_ehr: MakeEHR, server: Any
) -> None:
    server.control(
        "faults",
        {"faults": [{"method": "GET", "path": "/fhir/Patient/pt-1", "status": 429, "headers": {"Retry-After": "120"}}]},
    )
    started = time.monotonic()
    with pytest.raises(Unavailable) as failure:
        await make_ehr().read_patient("pt-1")
    assert time.monotonic() - started < 1
    assert failure.value.retry_after == 120


def _outcome(code: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": PHI_CANARY, "expression": ["Patient.name"]}],
    }


@pytest.mark.parametrize(
    ("status", "tier"),
    [
        (404, NotFound),
        (410, NotFound),
        (409, Conflict),
        (412, Conflict),
        (400, Rejected),
        (422, Rejected),
        (403, Rejected),
        (500, Unavailable),
        (502, Unavailable),
    ],
)
async def test_operation_outcomes_become_sdk_tiers(
    make_ehr: MakeEHR, server: Any, status: int, tier: type[Exception]
) -> None:
    ehr = make_ehr()
    server.control(
        "faults",
        {"faults": [{"method": "GET", "path": "/fhir/Patient/pt-1", "status": status, "body": _outcome("invalid")}]},
    )
    with pytest.raises(tier) as failure:
        await ehr._fhir.read("Patient", "pt-1")
    assert PHI_CANARY not in str(failure.value), "an OperationOutcome's text may carry PHI and must not be repeated"
    if isinstance(failure.value, Unavailable):
        assert f"answered {status}" in failure.value.detail
    if status < 500 and isinstance(failure.value, Rejected):
        assert failure.value.issue_codes == ("invalid",)
        assert "invalid at Patient.name" in failure.value.detail


async def test_not_found_and_conflict_reach_the_portal_as_refusals(make_ehr: MakeEHR, server: Any) -> None:
    ehr = make_ehr()
    server.control(
        "faults",
        {"faults": [{"method": "GET", "path": "/fhir/Patient/pt-1", "status": 410, "body": _outcome("deleted")}]},
    )
    with pytest.raises(NotFound):
        await ehr.read_patient("pt-1")
    with pytest.raises(NotFound):
        await ehr.read_patient("no-such-patient")


async def test_a_coverage_the_ehr_rejects_is_refused_for_the_patient_to_fix(
    make_ehr: MakeEHR, server: Any, sample: EHRSample
) -> None:
    server.control(
        "faults",
        {"faults": [{"method": "POST", "path": "/fhir/Coverage", "status": 422, "body": _outcome("business-rule")}]},
    )
    change = CoverageChange(
        patient_id="pt-1",
        rank=CoverageRank.SECONDARY,
        payer_id="70670",
        payer_name="Blue Cross Blue Shield of Illinois",
        member_id="XOF123",
        subscriber_name="Someone Else",
        subscriber_birth_date=sample.match.birth_date,
        relationship="spouse",
    )
    with pytest.raises(Refused) as refusal:
        await make_ehr().write_coverage(change, "rejected-coverage")
    assert refusal.value.code == "invalid_coverage"


async def test_a_server_that_does_not_answer_in_time_is_unavailable(make_ehr: MakeEHR, server: Any) -> None:
    ehr = make_ehr(timeout_seconds=0.3, max_retries=1)
    await ehr.read_patient("pt-1")
    server.control(
        "faults", {"faults": [{"method": "GET", "path": "/fhir/Patient/pt-1", "delay_ms": 1000, "times": 2}]}
    )
    started = time.monotonic()
    with pytest.raises(Unavailable, match="Timeout"):
        await ehr.read_patient("pt-1")
    assert time.monotonic() - started < 2
