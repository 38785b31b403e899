"""Claim adjustment reason codes (CARC), remark codes (RARC) and group codes, explained for patients.

The billing pages show why a charge was reduced or left to the patient; an 835's CAS and LQ
segments (and :class:`carefront_sdk.models.Adjustment`) carry the codes. Each entry keeps the code
list's own description for staff and a plain-language explanation for the patient. Codes not listed
here are real but rare: :func:`explain_carc` and :func:`explain_rarc` answer None for them, and a
page should then show the code itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from carefront_sdk.models import CodeSystem

from carefront_x12.codes import Meaning

__all__ = [
    "CARC",
    "GROUP_CODES",
    "RARC",
    "describe_codes",
    "explain_adjustment",
    "explain_carc",
    "explain_rarc",
]

# CAS01 claim adjustment group codes.
GROUP_CODES: dict[str, Meaning] = {
    "CO": Meaning(
        "Contractual Obligations", "A reduction the provider agreed to with your insurer; you do not owe it."
    ),
    "PR": Meaning("Patient Responsibility", "Your share under your plan."),
    "OA": Meaning("Other Adjustments", "An adjustment that is neither your share nor the provider's contract."),
    "PI": Meaning("Payor Initiated Reductions", "A reduction your insurer made; you do not owe it."),
    "CR": Meaning("Corrections and Reversals", "A correction of an earlier payment."),
}

CARC: dict[str, Meaning] = {
    "1": Meaning("Deductible Amount", "This amount went toward your deductible, so you pay it."),
    "2": Meaning("Coinsurance Amount", "Your coinsurance: the percentage of the cost your plan asks you to pay."),
    "3": Meaning("Co-payment Amount", "Your copay: the fixed amount your plan asks you to pay for this service."),
    "4": Meaning(
        "The procedure code is inconsistent with the modifier used.",
        "The insurer did not accept how the service was coded. The provider may correct and resend the claim.",
    ),
    "16": Meaning(
        "Claim/service lacks information or has submission/billing error(s).",
        "The claim was missing information. The provider needs to fix and resend it.",
    ),
    "18": Meaning(
        "Exact duplicate claim/service",
        "The insurer already received this same claim, so it did not pay it twice.",
    ),
    "22": Meaning(
        "This care may be covered by another payer per coordination of benefits.",
        "Another insurance plan you have may need to pay first.",
    ),
    "23": Meaning(
        "The impact of prior payer(s) adjudication including payments and/or adjustments.",
        "Your other insurer already paid or adjusted part of this.",
    ),
    "24": Meaning(
        "Charges are covered under a capitation agreement/managed care plan.",
        "Your plan pays the provider a set amount for your care, which covers this charge.",
    ),
    "26": Meaning("Expenses incurred prior to coverage.", "The service was before your coverage started."),
    "27": Meaning("Expenses incurred after coverage terminated.", "The service was after your coverage ended."),
    "29": Meaning(
        "The time limit for filing has expired.",
        "The claim reached the insurer too late. You usually do not owe this.",
    ),
    "31": Meaning(
        "Patient cannot be identified as our insured.",
        "The insurer could not match you to a policy. Check the insurance details on file.",
    ),
    "45": Meaning(
        "Charge exceeds fee schedule/maximum allowable or contracted/legislated fee arrangement.",
        "The charge is more than your insurer's agreed price. The provider writes off the difference.",
    ),
    "50": Meaning(
        "These are non-covered services because this is not deemed a 'medical necessity' by the payer.",
        "Your insurer decided this service was not medically necessary.",
    ),
    "94": Meaning("Processed in Excess of charges.", "The insurer processed more than the amount charged."),
    "96": Meaning("Non-covered charge(s).", "Your plan does not cover this charge."),
    "97": Meaning(
        "The benefit for this service is included in the payment/allowance for another service/procedure"
        " that has already been adjudicated.",
        "This service is paid as part of another service on the same claim, so there is no separate payment.",
    ),
    "109": Meaning(
        "Claim/service not covered by this payer/contractor. You must send the claim/service to the correct"
        " payer/contractor.",
        "This insurer is not the one that covers this service. The claim must go to another insurer.",
    ),
    "119": Meaning(
        "Benefit maximum for this time period or occurrence has been reached.",
        "You have used the most your plan pays for this kind of care in this period.",
    ),
    "151": Meaning(
        "Payment adjusted because the payer deems the information submitted does not support this many/frequency"
        " of services.",
        "Your insurer limits how often this service is covered.",
    ),
    "167": Meaning(
        "This (these) diagnosis(es) is (are) not covered.",
        "Your plan does not cover care for this diagnosis.",
    ),
    "197": Meaning(
        "Precertification/notification/authorization/pre-treatment absent.",
        "Your plan needed approval before this service, and there was none on file.",
    ),
    "204": Meaning(
        "This service/equipment/drug is not covered under the patient's current benefit plan.",
        "Your current plan does not cover this service.",
    ),
    "242": Meaning(
        "Services not provided by network/primary care providers.",
        "The provider is not in your plan's network, so your plan covers less or nothing.",
    ),
    "253": Meaning(
        "Sequestration - reduction in federal payment",
        "A required federal reduction in Medicare payments. You do not owe it.",
    ),
    "A2": Meaning(
        "Contractual adjustment (a retired code some payers still send)",
        "A reduction the provider agreed to with your insurer; you do not owe it.",
    ),
}

RARC: dict[str, Meaning] = {
    "M15": Meaning(
        "Separately billed services/tests have been bundled as they are considered components of the same"
        " procedure. Separate payment is not allowed.",
        "These services count as parts of one procedure and are paid together.",
    ),
    "M80": Meaning(
        "Not covered when performed during the same session/date as a previously processed service for the patient.",
        "This is not covered when done on the same day as another service you had.",
    ),
    "MA01": Meaning(
        "Alert: If you do not agree with what we approved for these services, you may appeal our decision.",
        "You may appeal if you disagree with the insurer's decision.",
    ),
    "MA130": Meaning(
        "Your claim contains incomplete and/or invalid information, and no appeal rights are afforded because the"
        " claim is unprocessable. Submit a new claim with the complete/correct information.",
        "The claim could not be processed. The provider needs to send a corrected claim.",
    ),
    "N19": Meaning(
        "Procedure code incidental to primary procedure.",
        "This service is part of the main procedure and is not paid on its own.",
    ),
    "N30": Meaning("Patient ineligible for this service.", "Your plan says you are not eligible for this service."),
    "N130": Meaning(
        "Consult plan benefit documents/guidelines for information about restrictions for this service.",
        "Your plan's benefit documents explain the limits on this service.",
    ),
    "N381": Meaning(
        "Alert: Consult our contractual agreement for restrictions/billing/payment information related to these"
        " charges.",
        "The provider's contract with your insurer sets how this charge is paid.",
    ),
}


def explain_carc(code: str) -> str | None:
    """The plain-language explanation of a CARC, or None for a code not listed."""
    meaning = CARC.get(code.strip())
    return meaning.plain if meaning else None


def explain_rarc(code: str) -> str | None:
    """The plain-language explanation of a RARC, or None for a code not listed."""
    meaning = RARC.get(code.strip())
    return meaning.plain if meaning else None


def explain_adjustment(group_code: str, reason_code: str) -> str:
    """A sentence for one CAS adjustment: the reason's explanation, else the group's."""
    reason = explain_carc(reason_code)
    if reason is not None:
        return reason
    group = GROUP_CODES.get(group_code)
    return group.plain if group else f"Adjustment {group_code}-{reason_code}."


_BY_SYSTEM: dict[str, dict[str, Meaning]] = {
    CodeSystem.CAGC: GROUP_CODES,
    CodeSystem.CARC: CARC,
    CodeSystem.RARC: RARC,
}


def describe_codes(code_system: str, codes: Sequence[str], language: str) -> Mapping[str, str] | None:
    """The plain-language explanations of the adjustment codes asked for, in English only.

    The code lists are published in English; for another language the portal's own translated
    baseline (and the code itself) is a better answer than English text on a Spanish page.
    """
    meanings = _BY_SYSTEM.get(code_system)
    if meanings is None or language != "en":
        return None
    return {code: meanings[code.strip()].plain for code in codes if code.strip() in meanings}
