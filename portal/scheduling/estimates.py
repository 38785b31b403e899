"""The pre-visit cost estimate: the hospital's usual charge for the visit type, and what the payer's
latest eligibility answer says the patient pays of it.

The charge is ``VisitType.typical_charge`` (the hospital's fee schedule, from the EHR adapter). The
payer is asked about the visit type's X12 service type through the clearinghouse, and its answer
is kept for a day, as eligibility answers cost the hospital per transaction. In-network benefits:

- a copay: the patient pays the copay (at most the charge);
- otherwise the remaining deductible first, then the coinsurance percent of the rest;
- never more than the out-of-pocket maximum left for the year.

No coverage on file, or coverage the payer says is not active: the patient pays the charge. It is an
estimate, and the page says so: the payer's contracted rate is often lower than the usual charge.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from carefront_sdk.adapters import EHR, Clearinghouse
from carefront_sdk.errors import Unavailable
from carefront_sdk.models import (
    Coverage,
    CoverageRank,
    EligibilityBenefit,
    EligibilityRequest,
    EligibilityResult,
    Money,
    Patient,
    VisitType,
)

from portal.snapshots.service import read_through

ELIGIBILITY_FRESH_FOR = timedelta(days=1)


class Basis(enum.StrEnum):
    COPAY = "copay"
    DEDUCTIBLE_AND_COINSURANCE = "deductible_and_coinsurance"
    NO_COVERAGE = "no_coverage"
    INACTIVE = "inactive"
    INSURER_NOT_ANSWERING = "insurer_not_answering"
    """The payer could not be asked: only the usual charge is shown."""


@dataclass(frozen=True, slots=True)
class Estimate:
    charge: Money
    """The hospital's usual charge for the visit."""
    basis: Basis
    you_pay: Money | None
    """None when the payer could not be asked."""
    payer_name: str | None = None
    copay: Money | None = None
    deductible: Money | None = None
    """The part of the deductible this visit would use."""
    coinsurance_percent: int | None = None
    coinsurance: Money | None = None
    checked_at: datetime | None = None


def _benefit(benefits: tuple[EligibilityBenefit, ...], kind: str, service_type: str) -> EligibilityBenefit | None:
    """The in-network benefit of ``kind``, for the service type when the payer stated one for it."""
    matching = [benefit for benefit in benefits if benefit.kind == kind and benefit.in_network]
    return next((benefit for benefit in matching if benefit.service_type == service_type), None) or next(
        iter(matching), None
    )


def patient_share(charge: Money, result: EligibilityResult, service_type: str) -> Estimate:
    """What the patient pays of ``charge`` by the payer's answer."""
    if not result.active:
        return Estimate(charge, Basis.INACTIVE, charge, result.payer_name, checked_at=result.checked_at)
    copay = _benefit(result.benefits, "copay", service_type)
    if copay is not None and copay.amount is not None:
        owed = Money(min(copay.amount.amount, charge.amount), charge.currency)
        return Estimate(charge, Basis.COPAY, owed, result.payer_name, copay=owed, checked_at=result.checked_at)
    deductible = _benefit(result.benefits, "deductible", service_type)
    left = deductible.remaining if deductible is not None and deductible.remaining is not None else None
    towards_deductible = min(max(left.amount, 0), charge.amount) if left is not None else 0
    coinsurance = _benefit(result.benefits, "coinsurance", service_type)
    percent = coinsurance.percent if coinsurance is not None and coinsurance.percent is not None else 0
    rest = charge.amount - towards_deductible
    # Round half up to the cent, as a person working it out by hand would.
    share = (rest * percent + 50) // 100
    owed = towards_deductible + share
    out_of_pocket = _benefit(result.benefits, "out_of_pocket", service_type)
    if out_of_pocket is not None and out_of_pocket.remaining is not None:
        owed = min(owed, max(out_of_pocket.remaining.amount, 0))
    return Estimate(
        charge,
        Basis.DEDUCTIBLE_AND_COINSURANCE,
        Money(owed, charge.currency),
        result.payer_name,
        deductible=Money(towards_deductible, charge.currency),
        coinsurance_percent=percent,
        coinsurance=Money(share, charge.currency),
        checked_at=result.checked_at,
    )


async def estimate(
    visit_type: VisitType,
    patient_id: str,
    day: date,
    *,
    ehr: EHR,
    clearinghouse: Clearinghouse,
    now: datetime,
) -> Estimate | None:
    """The estimate for a visit on ``day``; None when the hospital publishes no charge for the visit type."""
    charge = visit_type.typical_charge
    if charge is None:
        return None
    try:
        coverages = await read_through(
            f"scheduling-coverages:{patient_id}",
            tuple[Coverage, ...],
            lambda: _coverages(ehr, patient_id),
            now=now,
        )
        primary = next((coverage for coverage in coverages.value if coverage.rank is CoverageRank.PRIMARY), None)
        if primary is None:
            return Estimate(charge, Basis.NO_COVERAGE, charge)
        patient = await read_through(
            f"scheduling-patient:{patient_id}", Patient, lambda: ehr.read_patient(patient_id), now=now
        )
        request = EligibilityRequest(primary, patient.value, visit_type.service_type, day)
        result = await read_through(
            f"scheduling-eligibility:{primary.id}:{visit_type.service_type}",
            EligibilityResult,
            lambda: clearinghouse.check_eligibility(request),
            now=now,
            max_age=ELIGIBILITY_FRESH_FOR,
        )
    except Unavailable:
        return Estimate(charge, Basis.INSURER_NOT_ANSWERING, None)
    return patient_share(charge, result.value, visit_type.service_type)


async def _coverages(ehr: EHR, patient_id: str) -> tuple[Coverage, ...]:
    return tuple(await ehr.list_coverages(patient_id))
