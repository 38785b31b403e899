"""Code lists of the 270/271 (005010X279A1) and 276/277 (005010X212) guides, with plain-language text.

Each table maps an X12 code to what it means. Where a patient may read the text (rejections, claim
status), the text says in everyday words what happened and what to do; the guide's own short name
is kept beside it for staff.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AAA_FOLLOW_UP",
    "AAA_REASONS",
    "ACTIVE_COVERAGE_CODES",
    "BENEFIT_CODES",
    "CLAIM_STATUS_CATEGORIES",
    "CLAIM_STATUS_CODES",
    "COVERAGE_LEVELS",
    "INACTIVE_COVERAGE_CODES",
    "SERVICE_TYPES",
    "TIME_PERIODS",
    "Meaning",
    "claim_status_message",
    "rejection_message",
]


@dataclass(frozen=True, slots=True)
class Meaning:
    """A code's name in the implementation guide, and what it means in plain words."""

    name: str
    plain: str


# AAA03 reject reasons of the 271 (X279 code list 901), with what the patient can fix.
AAA_REASONS: dict[str, Meaning] = {
    "04": Meaning("Authorized Quantity Exceeded", "The insurer has already answered as many questions as it allows."),
    "15": Meaning(
        "Required application data missing", "The insurer said some required details were missing from the check."
    ),
    "41": Meaning(
        "Authorization/Access Restrictions", "The insurer does not allow us to check this coverage electronically."
    ),
    "42": Meaning(
        "Unable to Respond at Current Time", "The insurer's system could not answer right now. Please try again later."
    ),
    "43": Meaning(
        "Invalid/Missing Provider Identification",
        "The insurer did not recognise our provider number. Our staff will look into it.",
    ),
    "44": Meaning("Invalid/Missing Provider Name", "The insurer did not recognise our provider name."),
    "45": Meaning("Invalid/Missing Provider Specialty", "The insurer did not recognise our provider's specialty."),
    "46": Meaning("Invalid/Missing Provider Phone Number", "The insurer needs our provider's phone number."),
    "47": Meaning("Invalid/Missing Provider State", "The insurer did not recognise our provider's state."),
    "48": Meaning(
        "Invalid/Missing Referring Provider Identification Number", "The insurer needs the referring doctor's number."
    ),
    "49": Meaning(
        "Provider is Not Primary Care Physician",
        "The insurer says this provider is not your primary care doctor on the plan.",
    ),
    "50": Meaning(
        "Provider Ineligible for Inquiries", "The insurer does not accept coverage checks from this provider."
    ),
    "51": Meaning(
        "Provider Not on File", "The insurer has no record of this provider. Our staff will contact the insurer."
    ),
    "52": Meaning(
        "Service Dates Not Within Provider Plan Enrollment",
        "The provider was not in your plan's network on that date.",
    ),
    "53": Meaning(
        "Inquired Benefit Inconsistent with Provider Type", "This provider cannot ask about that kind of benefit."
    ),
    "54": Meaning("Inappropriate Product/Service ID Qualifier", "The insurer did not accept the service code type."),
    "55": Meaning("Inappropriate Product/Service ID", "The insurer did not accept the service code."),
    "56": Meaning("Inappropriate Date", "The insurer did not accept the date we asked about."),
    "57": Meaning("Invalid/Missing Date(s) of Service", "The date of service is missing or not valid."),
    "58": Meaning(
        "Invalid/Missing Date-of-Birth", "The date of birth is missing or not valid. Check it and try again."
    ),
    "60": Meaning(
        "Date of Birth Follows Date(s) of Service", "The date of birth is after the date of service. Check both dates."
    ),
    "61": Meaning(
        "Date of Death Precedes Date(s) of Service", "The insurer's records show a date of death before the service."
    ),
    "62": Meaning(
        "Date of Service Not Within Allowable Inquiry Period",
        "The insurer cannot answer for a date that far in the past or future.",
    ),
    "63": Meaning("Date of Service in Future", "The insurer cannot answer for a future date yet."),
    "64": Meaning(
        "Invalid/Missing Patient ID", "The patient's ID is missing or not valid. Check the ID on the insurance card."
    ),
    "65": Meaning(
        "Invalid/Missing Patient Name", "The patient's name does not match. Enter it exactly as on the insurance card."
    ),
    "66": Meaning("Invalid/Missing Patient Gender Code", "The insurer needs the patient's sex as it has it on file."),
    "67": Meaning(
        "Patient Not Found", "The insurer could not find the patient. Check the name, birth date and member ID."
    ),
    "68": Meaning(
        "Duplicate Patient ID Number", "The insurer found more than one person with this ID. Add the patient's name."
    ),
    "69": Meaning("Inconsistent with Patient's Age", "The service does not fit the patient's age."),
    "70": Meaning("Inconsistent with Patient's Gender", "The service does not fit the patient's sex on file."),
    "71": Meaning(
        "Patient Birth Date Does Not Match That for the Patient on the Database",
        "The date of birth does not match the insurer's records. Check it against the insurance card.",
    ),
    "72": Meaning(
        "Invalid/Missing Subscriber/Insured ID",
        "The member ID does not match the insurer's records. Check the member ID on the insurance card.",
    ),
    "73": Meaning(
        "Invalid/Missing Subscriber/Insured Name",
        "The policyholder's name does not match. Enter it exactly as on the insurance card.",
    ),
    "74": Meaning(
        "Invalid/Missing Subscriber/Insured Gender Code",
        "The insurer needs the policyholder's sex as it has it on file.",
    ),
    "75": Meaning(
        "Subscriber/Insured Not Found",
        "The insurer could not find the policyholder. Check the member ID, name and birth date on the card.",
    ),
    "76": Meaning(
        "Duplicate Subscriber/Insured ID Number",
        "The insurer found more than one policyholder with this ID. Add the policyholder's name and birth date.",
    ),
    "77": Meaning(
        "Subscriber Found, Patient Not Found",
        "The insurer found the policyholder but not the patient. Check the patient's name and birth date.",
    ),
    "78": Meaning(
        "Subscriber/Insured Not in Group/Plan Identified",
        "The insurer says the policyholder is not in that group or plan. Check the group number on the card.",
    ),
    "79": Meaning(
        "Invalid Participant Identification", "The insurer could not identify the clearinghouse we sent the check to."
    ),
    "80": Meaning(
        "No Response received - Transaction Terminated", "The insurer did not answer in time. Please try again later."
    ),
    "97": Meaning("Invalid or Missing Provider Address", "The insurer did not recognise our provider's address."),
    "AA": Meaning("Authorization Number Not Found", "The insurer could not find that authorization number."),
    "AE": Meaning(
        "Requires Primary Care Physician Authorization", "The plan needs a referral from your primary care doctor."
    ),
    "AF": Meaning("Invalid/Missing Diagnosis Code(s)", "A diagnosis code was missing or not valid."),
    "AG": Meaning("Invalid/Missing Procedure Code(s)", "A procedure code was missing or not valid."),
    "AO": Meaning("Additional Patient Condition Information Required", "The insurer needs more about the condition."),
    "CI": Meaning("Certification Information Does Not Match Patient", "The authorization is for another patient."),
    "E8": Meaning("Requires Medical Review", "The insurer must review this before it answers."),
    "IA": Meaning("Invalid Authorization Number Format", "The authorization number is not in the right format."),
    "MA": Meaning("Missing Authorization", "The plan needs an authorization that we do not have on file."),
    "T4": Meaning(
        "Payer Name or Identifier Missing", "The insurance company was not recognised. Choose it again from the list."
    ),
}

# AAA04 follow-up action codes (code list 889).
AAA_FOLLOW_UP: dict[str, Meaning] = {
    "C": Meaning("Please Correct and Resubmit", "Correct the details and check again."),
    "N": Meaning("Resubmission Not Allowed", "Checking again will not help; contact the insurer."),
    "P": Meaning("Please Resubmit Original Transaction", "Check again with the same details."),
    "R": Meaning("Resubmission Allowed", "You may check again."),
    "S": Meaning("Do Not Resubmit; Inquiry Initiated to a Third Party", "The insurer is asking someone else."),
    "W": Meaning("Please Wait 30 Days and Resubmit", "Check again in 30 days."),
    "X": Meaning("Please Wait 10 Days and Resubmit", "Check again in 10 days."),
    "Y": Meaning(
        "Do Not Resubmit; We Will Hold Your Request and Respond Again Shortly", "The insurer will answer later."
    ),
}


def rejection_message(reason: str, follow_up: str) -> str:
    """What a patient reads for a 271 AAA: what went wrong, then what to do about it."""
    meaning = AAA_REASONS.get(reason)
    text = meaning.plain if meaning else f"The insurer could not answer (reason {reason or 'not given'})."
    action = AAA_FOLLOW_UP.get(follow_up)
    return f"{text} {action.plain}" if action else text


# EB01 eligibility or benefit information (code list 1390), the ones the portal reads.
BENEFIT_CODES: dict[str, str] = {
    "1": "Active Coverage",
    "2": "Active - Full Risk Capitation",
    "3": "Active - Services Capitated",
    "4": "Active - Services Capitated to Primary Care Physician",
    "5": "Active - Pending Investigation",
    "6": "Inactive",
    "7": "Inactive - Pending Eligibility Update",
    "8": "Inactive - Pending Investigation",
    "A": "Co-Insurance",
    "B": "Co-Payment",
    "C": "Deductible",
    "CB": "Coverage Basis",
    "D": "Benefit Description",
    "E": "Exclusions",
    "F": "Limitations",
    "G": "Out of Pocket (Stop Loss)",
    "H": "Unlimited",
    "I": "Non-Covered",
    "J": "Cost Containment",
    "K": "Reserve",
    "L": "Primary Care Provider",
    "M": "Pre-existing Condition",
    "MC": "Managed Care Coordinator",
    "N": "Services Restricted to Following Provider",
    "O": "Not Deemed a Medical Necessity",
    "P": "Benefit Disclaimer",
    "Q": "Second Surgical Opinion Required",
    "R": "Other or Additional Payor",
    "S": "Prior Year(s) History",
    "T": "Card(s) Reported Lost/Stolen",
    "U": "Contact Following Entity for Eligibility or Benefit Information",
    "V": "Cannot Process",
    "W": "Other Source of Data",
    "X": "Health Care Facility",
    "Y": "Spend Down",
}
ACTIVE_COVERAGE_CODES = frozenset({"1", "2", "3", "4", "5"})
INACTIVE_COVERAGE_CODES = frozenset({"6", "7", "8"})

# EB02 coverage level (code list 1207).
COVERAGE_LEVELS: dict[str, str] = {
    "CHD": "Children Only",
    "DEP": "Dependents Only",
    "ECH": "Employee and Children",
    "EMP": "Employee Only",
    "ESP": "Employee and Spouse",
    "FAM": "Family",
    "IND": "Individual",
    "SPC": "Spouse and Children",
    "SPO": "Spouse Only",
}

# EB06 time period qualifier (code list 615), mapped to the SDK's period words where it has one.
TIME_PERIODS: dict[str, str] = {
    "6": "hour",
    "7": "day",
    "13": "24_hours",
    "21": "years",
    "22": "service_year",
    "23": "calendar_year",
    "24": "year_to_date",
    "25": "contract",
    "26": "episode",
    "27": "visit",
    "28": "outlier",
    "29": "remaining",
    "30": "exceeded",
    "31": "not_exceeded",
    "32": "lifetime",
    "33": "lifetime_remaining",
    "34": "month",
    "35": "week",
    "36": "admission",
}

# EB03/EQ01 service type codes (code list 1365): the common ones a portal shows.
SERVICE_TYPES: dict[str, str] = {
    "1": "Medical Care",
    "2": "Surgical",
    "4": "Diagnostic X-Ray",
    "5": "Diagnostic Lab",
    "30": "Health Benefit Plan Coverage",
    "33": "Chiropractic",
    "35": "Dental Care",
    "47": "Hospital",
    "48": "Hospital - Inpatient",
    "50": "Hospital - Outpatient",
    "86": "Emergency Services",
    "88": "Pharmacy",
    "98": "Professional (Physician) Visit - Office",
    "AL": "Vision (Optometry)",
    "MH": "Mental Health",
    "UC": "Urgent Care",
}

# STC01-1 claim status category codes (code source 507), with plain words for a patient.
CLAIM_STATUS_CATEGORIES: dict[str, Meaning] = {
    "A0": Meaning("Acknowledgement/Forwarded", "The claim was passed on to another insurer or processor."),
    "A1": Meaning("Acknowledgement/Receipt", "The insurer has received the claim but not yet accepted it."),
    "A2": Meaning(
        "Acknowledgement/Acceptance into adjudication system", "The insurer accepted the claim and will process it."
    ),
    "A3": Meaning(
        "Acknowledgement/Returned as unprocessable claim", "The insurer returned the claim: it could not process it."
    ),
    "A4": Meaning("Acknowledgement/Not Found", "The insurer has no record of this claim yet."),
    "A5": Meaning("Acknowledgement/Split Claim", "The insurer split the claim into more than one claim."),
    "A6": Meaning(
        "Acknowledgement/Rejected for Missing Information", "The claim was rejected because information was missing."
    ),
    "A7": Meaning(
        "Acknowledgement/Rejected for Invalid Information", "The claim was rejected because some information was wrong."
    ),
    "A8": Meaning(
        "Acknowledgement/Rejected for relational field in error",
        "The claim was rejected because some details did not agree with each other.",
    ),
    "P0": Meaning("Pending: Adjudication/Details", "The claim is waiting to be processed."),
    "P1": Meaning("Pending/In Process", "The insurer is processing the claim."),
    "P2": Meaning("Pending/Payer Review", "The insurer is reviewing the claim."),
    "P3": Meaning(
        "Pending/Provider Requested Information", "The insurer is waiting for information from the provider."
    ),
    "P4": Meaning("Pending/Patient Requested Information", "The insurer is waiting for information from you."),
    "P5": Meaning("Pending/Payer Administrative/System hold", "The claim is on hold at the insurer."),
    "F0": Meaning("Finalized", "The insurer has finished processing the claim."),
    "F1": Meaning("Finalized/Payment", "Finalized: the claim has been paid."),
    "F2": Meaning("Finalized/Denial", "Finalized: the insurer denied the claim."),
    "F3": Meaning("Finalized/Revised", "Finalized: the insurer changed how it processed the claim."),
    "F3F": Meaning("Finalized/Forwarded", "Finalized and passed on to another insurer."),
    "F3N": Meaning("Finalized/Not Forwarded", "Finalized and not passed on to another insurer."),
    "F4": Meaning("Finalized/Adjudication Complete - No payment forthcoming", "Finalized: no payment will be made."),
    "R0": Meaning(
        "Requests for additional Information/General Requests", "The insurer has asked for more information."
    ),
    "R1": Meaning("Requests for additional Information/Entity Requests", "The insurer has asked for more information."),
    "R3": Meaning("Requests for additional Information/Claim/Line", "The insurer has asked for more claim details."),
    "R4": Meaning("Requests for additional Information/Documentation", "The insurer has asked for documents."),
    "R5": Meaning("Request for additional information/more specific detail", "The insurer has asked for more detail."),
    "E0": Meaning(
        "Response not possible - error on submitted request data",
        "The insurer could not answer because the question had an error.",
    ),
    "E1": Meaning("Response not possible - System Status", "The insurer's system could not answer right now."),
    "E2": Meaning(
        "Information Holder is not responding; resubmit at a later time.",
        "The insurer did not answer. Please try again later.",
    ),
    "E3": Meaning("Correction required - relational fields in error.", "The question had details that did not agree."),
    "E4": Meaning(
        "Trading partner agreement specific requirement not met", "The question did not meet the insurer's rules."
    ),
    "D0": Meaning("Data Search Unsuccessful", "The insurer could not find the claim."),
}

# STC01-2 claim status codes (code source 508): the common ones.
CLAIM_STATUS_CODES: dict[str, str] = {
    "0": "Cannot provide further status electronically.",
    "1": "For more detailed information, see remittance advice.",
    "2": "More detailed information in letter.",
    "3": "Claim has been adjudicated and is awaiting payment cycle.",
    "6": "Balance due from the subscriber.",
    "15": "One or more originally submitted procedure codes have been modified.",
    "16": "Claim/encounter has been forwarded to entity.",
    "19": "Entity acknowledges receipt of claim/encounter.",
    "20": "Accepted for processing.",
    "21": "Missing or invalid information.",
    "23": "Returned to Entity.",
    "35": "Claim/encounter not found.",
    "41": "Special handling required at payer site.",
    "65": "Claim/line has been paid.",
    "88": "Entity not eligible for benefits for submitted dates of service.",
    "107": "Processed according to contract provisions.",
}


def claim_status_message(category: str, status: str) -> str:
    """Plain words for an STC01 pair; unknown categories fall back to their family (A, P, F, R, E)."""
    meaning = CLAIM_STATUS_CATEGORIES.get(category)
    if meaning is not None:
        return meaning.plain
    family = {
        "A": "The insurer has acknowledged the claim.",
        "P": "The claim is pending with the insurer.",
        "F": "The insurer has finished processing the claim.",
        "R": "The insurer has asked for more information.",
        "E": "The insurer could not answer the status question.",
    }
    return family.get(category[:1], f"The insurer reported status {category or 'unknown'}/{status or '-'}.")
