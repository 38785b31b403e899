"""Eligibility: ask the clearinghouse whether a coverage is active and what the patient pays, keep the
answer as the coverage's "last check", and put it in plain words — a rejection (a 271 AAA) with what
the patient can do about it.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from carefront_sdk import codec
from carefront_sdk.models import (
    Coverage,
    CoverageRank,
    EligibilityBenefit,
    EligibilityRequest,
    EligibilityResult,
    Money,
    Patient,
)

from portal.coverage.tables import EligibilityCheck
from portal.i18n import N_
from portal.identity import throttle
from portal.plugin_host import PluginHost

HEALTH_BENEFIT_PLAN = "30"
OFFICE_VISIT = "98"
"""X12 service type of a professional (physician) office visit."""
ON_DEMAND_LIMIT = throttle.Limit(5, timedelta(hours=1))
""""Check my coverage now", per patient: each check is a paid transaction with the clearinghouse."""


class Outcome(enum.StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Rejection:
    code: str
    meaning: str
    fix: str


@dataclass(frozen=True, slots=True)
class Answer:
    """One check, as the insurance page says it."""

    rank: CoverageRank
    coverage_id: str | None
    checked_at: datetime
    outcome: Outcome
    plan_name: str | None
    office_visit_copay: Money | None = None
    coinsurance_percent: int | None = None
    deductible: Money | None = None
    deductible_remaining: Money | None = None
    out_of_pocket_max: Money | None = None
    out_of_pocket_remaining: Money | None = None
    rejection: Rejection | None = None


# What the patient can do about a rejection, by AAA03 reject reason code (X12 005010X279A1).
CHECK_MEMBER_ID = N_("Check the member ID on your card and correct it here. Type it exactly as printed.")
CHECK_NAME = N_("Check that the subscriber's name is exactly as printed on the card, then correct it here.")
CHECK_BIRTH_DATE = N_("Check the subscriber's date of birth and correct it here.")
CHECK_MEMBER = N_(
    "Check the member ID, the group number and the subscriber against your card. If they are right, call the "
    "member services number on the back of your card: your plan may have ended or changed."
)
CHECK_PAYER = N_("Check that you chose the insurance company printed on your card.")
TRY_LATER = N_("Nothing is wrong with what you entered. Try again in a few hours.")
FOR_THE_HOSPITAL = N_(
    "Nothing is wrong with what you entered: this is for the hospital to fix. The billing office will look into it."
)
REJECTIONS: dict[str, tuple[str, str]] = {
    "15": (N_("Some required information was missing."), FOR_THE_HOSPITAL),
    "33": (N_("The insurance company could not read the request."), FOR_THE_HOSPITAL),
    "41": (N_("The hospital is not allowed to check this plan online."), FOR_THE_HOSPITAL),
    "42": (N_("The insurance company could not answer at that time."), TRY_LATER),
    "43": (N_("The insurance company does not recognise the hospital's provider number."), FOR_THE_HOSPITAL),
    "51": (N_("The hospital is not on file with this insurance company."), FOR_THE_HOSPITAL),
    "58": (N_("The date of birth is missing or not valid."), CHECK_BIRTH_DATE),
    "64": (N_("The patient's ID is missing or not valid."), CHECK_MEMBER_ID),
    "65": (N_("The patient's name is missing or not valid."), CHECK_NAME),
    "67": (N_("The insurance company could not find the patient."), CHECK_MEMBER),
    "71": (N_("The date of birth does not match the insurance company's records."), CHECK_BIRTH_DATE),
    "72": (N_("The member ID was not recognised."), CHECK_MEMBER_ID),
    "73": (N_("The subscriber's name is missing or not valid."), CHECK_NAME),
    "75": (N_("The insurance company could not find the subscriber."), CHECK_MEMBER),
    "76": (N_("The member ID belongs to more than one person."), CHECK_MEMBER),
    "78": (N_("The subscriber is not in the group or plan given."), CHECK_MEMBER),
    "79": (N_("The insurance company was not recognised."), CHECK_PAYER),
    "80": (N_("The insurance company did not answer."), TRY_LATER),
    "T4": (N_("The insurance company was not recognised."), CHECK_PAYER),
}
UNKNOWN_REJECTION = N_("The insurance company could not confirm this coverage.")


def rejection_for(code: str) -> Rejection:
    meaning, fix = REJECTIONS.get(code, (UNKNOWN_REJECTION, CHECK_MEMBER))
    return Rejection(code, meaning, fix)


async def may_check_now(patient_id: str, now: datetime) -> throttle.Verdict:
    return await throttle.attempt(f"eligibility:patient:{patient_id}", ON_DEMAND_LIMIT, now)


async def check(plugin_host: PluginHost, patient_id: str, patient: Patient, coverage: Coverage) -> Answer:
    """Ask the clearinghouse about ``coverage`` of ``patient`` (whom the portal knows as ``patient_id``)
    and keep its answer; ``Unavailable`` when it cannot be asked."""
    request = EligibilityRequest(coverage, patient, HEALTH_BENEFIT_PLAN)
    result = await plugin_host.clearinghouse.check_eligibility(request)
    answer = answer_from(coverage.rank, coverage.id or None, result)
    await EligibilityCheck.insert(
        EligibilityCheck(
            patient_id=patient_id,
            rank=coverage.rank.value,
            coverage_id=answer.coverage_id,
            checked_at=result.checked_at,
            outcome=answer.outcome.value,
            rejection_code=answer.rejection.code[:4] if answer.rejection else None,
            result=codec.dumps(result),
        )
    ).run()
    return answer


async def last_checks(patient_id: str) -> dict[CoverageRank, Answer]:
    """The newest answer for each rank of the patient's coverage."""
    rows = (
        await EligibilityCheck.select(EligibilityCheck.rank, EligibilityCheck.coverage_id, EligibilityCheck.result)
        .where(EligibilityCheck.patient_id == patient_id)
        .order_by(EligibilityCheck.checked_at, ascending=False)
        .order_by(EligibilityCheck.id, ascending=False)
        .limit(20)
        .run()
    )
    answers: dict[CoverageRank, Answer] = {}
    for row in rows:
        rank = CoverageRank(row["rank"])
        if rank not in answers:
            result = codec.from_plain(EligibilityResult, json.loads(row["result"]))
            answers[rank] = answer_from(rank, row["coverage_id"], result)
    return answers


def answer_from(rank: CoverageRank, coverage_id: str | None, result: EligibilityResult) -> Answer:
    if result.rejection is not None:
        return Answer(
            rank,
            coverage_id,
            result.checked_at,
            Outcome.REJECTED,
            result.plan_name,
            rejection=rejection_for(result.rejection.code),
        )
    if not result.active:
        return Answer(rank, coverage_id, result.checked_at, Outcome.INACTIVE, result.plan_name)
    in_network = [benefit for benefit in result.benefits if benefit.in_network]
    copay = _office_visit_copay(in_network)
    coinsurance = _first(in_network, "coinsurance")
    deductible = _first(in_network, "deductible")
    out_of_pocket = _first(in_network, "out_of_pocket")
    return Answer(
        rank,
        coverage_id,
        result.checked_at,
        Outcome.ACTIVE,
        result.plan_name,
        office_visit_copay=copay.amount if copay else None,
        coinsurance_percent=coinsurance.percent if coinsurance else None,
        deductible=deductible.amount if deductible else None,
        deductible_remaining=deductible.remaining if deductible else None,
        out_of_pocket_max=out_of_pocket.amount if out_of_pocket else None,
        out_of_pocket_remaining=out_of_pocket.remaining if out_of_pocket else None,
    )


def _office_visit_copay(benefits: list[EligibilityBenefit]) -> EligibilityBenefit | None:
    copays = [benefit for benefit in benefits if benefit.kind == "copay" and benefit.amount is not None]
    # A copay listed for office visits wins over the plan's general one.
    return next((copay for copay in copays if copay.service_type == OFFICE_VISIT), copays[0] if copays else None)


def _first(benefits: list[EligibilityBenefit], kind: str) -> EligibilityBenefit | None:
    return next((benefit for benefit in benefits if benefit.kind == kind), None)
