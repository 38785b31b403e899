"""The sandbox clearinghouse: eligibility (270/271) and claim status (276/277) by documented rules.

Eligibility, checked in this order:

1. A payer whose name contains "Unavailable" raises ``Unavailable`` (the payer is not answering).
2. A member id that does not fit the payer's format (any 6-20 letters and digits for a payer the
   sandbox does not know) is rejected: AAA 72 "Invalid/Missing Subscriber/Insured ID", follow-up C.
3. A member id ending in "999" is rejected: AAA 75 "Subscriber/Insured Not Found", follow-up N.
4. A member id ending in "000" is inactive: coverage terminated, no benefits.
5. Anything else is active, with copay, coinsurance, deductible and out-of-pocket figures derived
   from the member id alone (see ``codes.benefits_for``), so the same id always gives the same answer.

Claim status goes by the age of the service: under 7 days received (A1/19), under 30 days in
process (P1/20), older finalized and paid (F1/65) with what the payer allowed.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from carefront_sdk.adapters import AdapterContext
from carefront_sdk.errors import Unavailable
from carefront_sdk.models import (
    ClaimStatus,
    ClaimStatusRequest,
    EligibilityBenefit,
    EligibilityRejection,
    EligibilityRequest,
    EligibilityResult,
    Money,
)

from carefront_sandbox.base import SandboxAdapter
from carefront_sandbox.codes import Payer, benefits_for, find_payer, member_id_is_valid

__all__ = ["SandboxClearinghouse", "make_clearinghouse"]

_REJECT_INVALID_MEMBER = EligibilityRejection("72", "Invalid/Missing Subscriber/Insured ID", "C")
_REJECT_NOT_FOUND = EligibilityRejection("75", "Subscriber/Insured Not Found", "N")
_ALLOWED_PERCENT_OF_UNKNOWN_PAYER = 50


def _refuse_unavailable(payer_name: str) -> None:
    if "unavailable" in payer_name.casefold():
        raise Unavailable("sandbox clearinghouse: the payer did not answer (payer name says Unavailable)")


class SandboxClearinghouse(SandboxAdapter):
    """The clearinghouse port: answers from rules, storing nothing."""

    def __init__(self, context: AdapterContext) -> None:
        super().__init__(context, "clearinghouse")

    async def check_eligibility(self, request: EligibilityRequest) -> EligibilityResult:
        await self._pause()
        coverage = request.coverage
        _refuse_unavailable(coverage.payer_name)
        payer = find_payer(coverage.payer_id, coverage.payer_name)
        member_id = "".join(coverage.member_id.split()).upper()
        checked_at = self._now()
        trace = f"SBX{zlib.crc32(f'{member_id}:{checked_at.date()}'.encode()):010d}"
        payer_name = payer.name if payer else coverage.payer_name
        rejection = None
        if not member_id_is_valid(payer, member_id):
            rejection = _REJECT_INVALID_MEMBER
        elif member_id.endswith("999"):
            rejection = _REJECT_NOT_FOUND
        if rejection is not None or member_id.endswith("000"):
            return EligibilityResult(False, checked_at, payer_name, coverage.plan_name or None, (), rejection, trace)
        benefits = _benefits_for(payer, member_id, request.service_type)
        return EligibilityResult(True, checked_at, payer_name, coverage.plan_name or None, benefits, None, trace)

    async def claim_status(self, request: ClaimStatusRequest) -> Sequence[ClaimStatus]:
        await self._pause()
        _refuse_unavailable(request.coverage.payer_name)
        now = self._now()
        age = (now.astimezone(self._zone).date() - request.service_date).days
        if age < 7:
            return [ClaimStatus(request.claim_id, "A1", "19", "The payer has received the claim.", now)]
        if age < 30:
            return [
                ClaimStatus(request.claim_id, "P1", "20", "The payer accepted the claim and is processing it.", now)
            ]
        payer = find_payer(request.coverage.payer_id, request.coverage.payer_name)
        percent = payer.allowed_percent if payer else _ALLOWED_PERCENT_OF_UNKNOWN_PAYER
        paid = Money(request.charged.amount * percent // 100, request.charged.currency)
        return [ClaimStatus(request.claim_id, "F1", "65", "The payer has paid the claim.", now, paid)]


def _benefits_for(payer: Payer | None, member_id: str, service_type: str) -> tuple[EligibilityBenefit, ...]:
    """The 271 EB segments of an active member, in-network, as the portal reads them."""
    benefits = benefits_for(payer, member_id)
    rows = [
        EligibilityBenefit("coinsurance", service_type, True, percent=benefits.coinsurance_percent, period="visit"),
        EligibilityBenefit(
            "deductible",
            service_type,
            True,
            Money(benefits.deductible),
            Money(benefits.deductible - benefits.deductible_met),
            period="calendar_year",
        ),
    ]
    if benefits.copay:
        rows.insert(0, EligibilityBenefit("copay", service_type, True, Money(benefits.copay), period="visit"))
    if benefits.out_of_pocket_max is not None:
        rows.append(
            EligibilityBenefit(
                "out_of_pocket",
                service_type,
                True,
                Money(benefits.out_of_pocket_max),
                Money(benefits.out_of_pocket_max - benefits.out_of_pocket_met),
                period="calendar_year",
            )
        )
    return tuple(rows)


def make_clearinghouse(context: AdapterContext) -> SandboxClearinghouse:
    """The adapter factory registered as the ``sandbox`` clearinghouse."""
    return SandboxClearinghouse(context)
