"""The sandbox clearinghouse's documented eligibility and claim status rules."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from carefront_sandbox.clearinghouse import SandboxClearinghouse
from carefront_sdk.errors import Unavailable
from carefront_sdk.models import (
    ClaimStatusRequest,
    Coverage,
    CoverageRank,
    EligibilityRequest,
    Money,
    Patient,
)

PATIENT = Patient("pt-1", "10000001", "Pat", "Example", date(1980, 5, 1), "1000000001")
AETNA = Coverage(
    id="cov-1",
    patient_id="pt-1",
    rank=CoverageRank.PRIMARY,
    payer_id="60054",
    payer_name="Aetna",
    plan_name="Aetna Choice POS II",
    member_id="W123456789",
    group_number="0123456",
    subscriber_name="Pat Example",
    subscriber_birth_date=date(1980, 5, 1),
    relationship="self",
    starts_on=date(2024, 1, 1),
)


def _request(**changes: str) -> EligibilityRequest:
    return EligibilityRequest(dataclasses.replace(AETNA, **changes), PATIENT, service_type="98")


async def test_a_well_formed_member_is_active_with_benefits(clearinghouse: SandboxClearinghouse) -> None:
    result = await clearinghouse.check_eligibility(_request())
    assert result.active
    assert result.rejection is None
    kinds = {benefit.kind: benefit for benefit in result.benefits}
    assert {"coinsurance", "deductible", "out_of_pocket"} <= set(kinds)
    deductible = kinds["deductible"]
    assert deductible.amount is not None
    assert deductible.remaining is not None
    assert 0 <= deductible.remaining.amount <= deductible.amount.amount
    assert all(benefit.service_type == "98" for benefit in result.benefits)
    assert result.trace_number
    assert await clearinghouse.check_eligibility(_request()) == result  # the same member, the same answer


async def test_benefits_depend_on_the_member_id(clearinghouse: SandboxClearinghouse) -> None:
    answers = {
        tuple(
            (benefit.kind, benefit.amount)
            for benefit in (await clearinghouse.check_eligibility(_request(member_id=f"W12345678{n}"))).benefits
        )
        for n in range(1, 9)
    }
    assert len(answers) > 1


async def test_a_member_id_of_the_wrong_shape_is_rejected_with_aaa_72(clearinghouse: SandboxClearinghouse) -> None:
    result = await clearinghouse.check_eligibility(_request(member_id="12345"))
    assert not result.active
    assert result.rejection is not None
    assert (result.rejection.code, result.rejection.message, result.rejection.follow_up) == (
        "72",
        "Invalid/Missing Subscriber/Insured ID",
        "C",
    )


async def test_member_ids_ending_000_are_inactive(clearinghouse: SandboxClearinghouse) -> None:
    result = await clearinghouse.check_eligibility(_request(member_id="W123456000"))
    assert not result.active
    assert result.rejection is None
    assert result.benefits == ()


async def test_member_ids_ending_999_are_not_found(clearinghouse: SandboxClearinghouse) -> None:
    result = await clearinghouse.check_eligibility(_request(member_id="W123456999"))
    assert result.rejection is not None
    assert result.rejection.code == "75"


async def test_medicare_has_the_part_b_deductible_and_no_out_of_pocket_cap(
    clearinghouse: SandboxClearinghouse,
) -> None:
    result = await clearinghouse.check_eligibility(
        _request(payer_id="", payer_name="medicare part b", member_id="1EG4TE5MK73", group_number="")
    )
    assert result.active
    kinds = {benefit.kind: benefit for benefit in result.benefits}
    assert kinds["deductible"].amount == Money(25_700)
    assert kinds["coinsurance"].percent == 20
    assert "out_of_pocket" not in kinds
    bad = await clearinghouse.check_eligibility(
        _request(payer_id="", payer_name="Medicare Part B", member_id="1SL4TE5MK73")
    )
    assert bad.rejection is not None  # S and L are never in a Medicare Beneficiary Identifier


async def test_an_unknown_payer_takes_any_plausible_member_id(clearinghouse: SandboxClearinghouse) -> None:
    assert (
        await clearinghouse.check_eligibility(
            _request(payer_id="", payer_name="Lakeshore Health Plan", member_id="LHP0012345")
        )
    ).active
    assert not (
        await clearinghouse.check_eligibility(_request(payer_id="", payer_name="Lakeshore Health Plan", member_id="x"))
    ).active


async def test_a_payer_named_unavailable_raises_unavailable(clearinghouse: SandboxClearinghouse) -> None:
    with pytest.raises(Unavailable):
        await clearinghouse.check_eligibility(_request(payer_id="", payer_name="Unavailable Health"))
    claim = ClaimStatusRequest(
        PATIENT, dataclasses.replace(AETNA, payer_name="Payer Unavailable"), "C1", date(2025, 1, 1), Money(100)
    )
    with pytest.raises(Unavailable):
        await clearinghouse.claim_status(claim)


@pytest.mark.parametrize(
    ("service_date", "category", "paid"),
    [(date(2025, 3, 1), "A1", None), (date(2025, 2, 10), "P1", None), (date(2025, 1, 2), "F1", Money(5_500))],
)
async def test_claim_status_by_the_age_of_the_service(
    clearinghouse: SandboxClearinghouse, service_date: date, category: str, paid: Money | None
) -> None:
    (status,) = await clearinghouse.claim_status(
        ClaimStatusRequest(PATIENT, AETNA, "CLM-9", service_date, Money(10_000))
    )
    assert (status.claim_id, status.category_code, status.paid) == ("CLM-9", category, paid)
