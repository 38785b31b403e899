"""Billing vocabulary of the sandbox hospital: service codes, adjustment reasons, payers, benefits.

Codes are real CPT, HCPCS Level II and UB-04 revenue codes, each with a plain-language description
a patient can read and a chargemaster price (the same code always bills the same amount, as in a
real hospital). CARC and RARC codes are the X12 ones the 835 remittance would carry.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

__all__ = [
    "CARC_BUNDLED",
    "CARC_COINSURANCE",
    "CARC_COPAY",
    "CARC_COVERAGE_ENDED",
    "CARC_DEDUCTIBLE",
    "CARC_FEE_SCHEDULE",
    "CARC_NOT_COVERED",
    "CARC_NOT_IN_PLAN",
    "CARC_SEQUESTRATION",
    "CODE_INDEX",
    "PAYERS",
    "RARC_BUNDLED",
    "RARC_CONTRACT",
    "RARC_INELIGIBLE",
    "RARC_PLAN_DOCUMENTS",
    "SERVICE_CODES",
    "Benefits",
    "Payer",
    "ServiceCode",
    "benefits_for",
    "find_payer",
    "member_id_is_valid",
]


@dataclass(frozen=True, slots=True)
class ServiceCode:
    code: str
    system: str
    """CPT, HCPCS or REV."""
    description: str
    charge: int
    """Chargemaster price per unit, in cents."""


SERVICE_CODES: tuple[ServiceCode, ...] = (
    # Office and preventive visits (CPT evaluation and management)
    ServiceCode("99202", "CPT", "Office visit, new patient (short)", 19_500),
    ServiceCode("99203", "CPT", "Office visit, new patient", 27_500),
    ServiceCode("99204", "CPT", "Office visit, new patient (detailed)", 41_000),
    ServiceCode("99212", "CPT", "Office visit (short)", 12_500),
    ServiceCode("99213", "CPT", "Office visit", 19_000),
    ServiceCode("99214", "CPT", "Office visit (detailed)", 28_000),
    ServiceCode("99215", "CPT", "Office visit (complex)", 38_000),
    ServiceCode("99391", "CPT", "Well-baby checkup, under 1 year", 24_000),
    ServiceCode("99392", "CPT", "Well-child checkup, ages 1 to 4", 25_000),
    ServiceCode("99393", "CPT", "Well-child checkup, ages 5 to 11", 25_500),
    ServiceCode("99394", "CPT", "Preventive checkup, ages 12 to 17", 26_500),
    ServiceCode("99395", "CPT", "Annual physical, ages 18 to 39", 29_000),
    ServiceCode("99396", "CPT", "Annual physical, ages 40 to 64", 31_000),
    ServiceCode("99397", "CPT", "Annual physical, 65 and over", 33_000),
    # Emergency and hospital physician care
    ServiceCode("99283", "CPT", "Emergency room physician visit (moderate)", 62_000),
    ServiceCode("99284", "CPT", "Emergency room physician visit (serious)", 98_000),
    ServiceCode("99285", "CPT", "Emergency room physician visit (severe)", 145_000),
    ServiceCode("99291", "CPT", "Critical care by a physician, first hour", 78_000),
    ServiceCode("99223", "CPT", "Hospital admission exam by a physician", 52_000),
    ServiceCode("99232", "CPT", "Daily hospital visit by a physician", 17_500),
    ServiceCode("99233", "CPT", "Daily hospital visit by a physician (complex)", 24_500),
    ServiceCode("99238", "CPT", "Discharge day care by a physician", 18_000),
    # Vaccines
    ServiceCode("90471", "CPT", "Giving a vaccine (first shot)", 4_500),
    ServiceCode("90686", "CPT", "Flu vaccine", 4_800),
    ServiceCode("90715", "CPT", "Tetanus, diphtheria and whooping cough vaccine (Tdap)", 8_200),
    ServiceCode("90707", "CPT", "Measles, mumps and rubella vaccine (MMR)", 11_500),
    ServiceCode("G0008", "HCPCS", "Giving a flu shot (Medicare)", 4_500),
    # Laboratory
    ServiceCode("36415", "CPT", "Blood draw", 2_500),
    ServiceCode("80048", "CPT", "Basic metabolic panel (blood chemistry)", 6_500),
    ServiceCode("80053", "CPT", "Comprehensive metabolic panel (blood chemistry)", 9_500),
    ServiceCode("85025", "CPT", "Complete blood count (CBC)", 5_200),
    ServiceCode("80061", "CPT", "Cholesterol panel", 8_500),
    ServiceCode("83036", "CPT", "Hemoglobin A1c (average blood sugar)", 6_000),
    ServiceCode("84443", "CPT", "Thyroid test (TSH)", 9_000),
    ServiceCode("81001", "CPT", "Urine test with microscope", 3_500),
    ServiceCode("81002", "CPT", "Urine dipstick test", 1_800),
    ServiceCode("87086", "CPT", "Urine culture", 5_500),
    ServiceCode("87880", "CPT", "Rapid strep test", 4_200),
    ServiceCode("87804", "CPT", "Rapid flu test", 4_500),
    ServiceCode("85610", "CPT", "Blood clotting test (PT/INR)", 3_800),
    ServiceCode("82947", "CPT", "Blood sugar (glucose) test", 2_400),
    ServiceCode("84484", "CPT", "Heart muscle test (troponin)", 11_000),
    ServiceCode("83690", "CPT", "Pancreas enzyme test (lipase)", 5_800),
    ServiceCode("87040", "CPT", "Blood culture", 8_500),
    ServiceCode("88305", "CPT", "Tissue examined by a pathologist", 21_000),
    # Imaging and heart tests
    ServiceCode("71045", "CPT", "Chest X-ray, one view", 16_500),
    ServiceCode("71046", "CPT", "Chest X-ray, two views", 22_000),
    ServiceCode("73610", "CPT", "Ankle X-ray", 21_000),
    ServiceCode("73030", "CPT", "Shoulder X-ray", 20_500),
    ServiceCode("73090", "CPT", "Forearm X-ray", 19_500),
    ServiceCode("72100", "CPT", "Lower back X-ray", 25_000),
    ServiceCode("70450", "CPT", "CT scan of the head", 185_000),
    ServiceCode("74177", "CPT", "CT scan of the abdomen and pelvis with contrast", 360_000),
    ServiceCode("70551", "CPT", "MRI of the brain", 310_000),
    ServiceCode("73721", "CPT", "MRI of the knee", 265_000),
    ServiceCode("76700", "CPT", "Ultrasound of the abdomen", 72_000),
    ServiceCode("77067", "CPT", "Screening mammogram", 34_000),
    ServiceCode("93000", "CPT", "Heart rhythm test (EKG)", 14_500),
    ServiceCode("93306", "CPT", "Heart ultrasound (echocardiogram)", 185_000),
    ServiceCode("Q9967", "HCPCS", "Contrast dye for imaging, per ml", 250),
    # Procedures and treatments
    ServiceCode("12001", "CPT", "Stitches for a small cut", 38_000),
    ServiceCode("10060", "CPT", "Draining a skin abscess", 42_000),
    ServiceCode("11102", "CPT", "Skin biopsy", 29_000),
    ServiceCode("17110", "CPT", "Wart removal", 21_000),
    ServiceCode("20610", "CPT", "Joint injection or fluid removal (large joint)", 34_000),
    ServiceCode("25600", "CPT", "Setting a broken wrist without surgery", 89_000),
    ServiceCode("29075", "CPT", "Forearm cast", 24_000),
    ServiceCode("96372", "CPT", "Injection into a muscle or under the skin", 6_500),
    ServiceCode("96360", "CPT", "IV fluids, first hour", 32_000),
    ServiceCode("96365", "CPT", "IV medicine infusion, first hour", 41_000),
    ServiceCode("94640", "CPT", "Breathing treatment (nebulizer)", 9_500),
    ServiceCode("45378", "CPT", "Colonoscopy", 210_000),
    ServiceCode("45380", "CPT", "Colonoscopy with biopsy", 245_000),
    ServiceCode("43239", "CPT", "Upper endoscopy with biopsy", 185_000),
    ServiceCode("29881", "CPT", "Knee arthroscopy to trim torn cartilage (meniscus)", 690_000),
    ServiceCode("47562", "CPT", "Gallbladder removal (laparoscopic)", 980_000),
    ServiceCode("44970", "CPT", "Appendix removal (laparoscopic)", 870_000),
    ServiceCode("00790", "CPT", "Anesthesia for upper abdominal surgery", 180_000),
    ServiceCode("00840", "CPT", "Anesthesia for lower abdominal surgery", 170_000),
    ServiceCode("00811", "CPT", "Anesthesia for colonoscopy", 90_000),
    ServiceCode("00731", "CPT", "Anesthesia for upper endoscopy", 85_000),
    ServiceCode("01400", "CPT", "Anesthesia for knee surgery", 150_000),
    # Therapy
    ServiceCode("97161", "CPT", "Physical therapy evaluation", 21_000),
    ServiceCode("97110", "CPT", "Therapeutic exercise, each 15 minutes", 6_500),
    ServiceCode("97140", "CPT", "Hands-on therapy, each 15 minutes", 6_000),
    # Drugs, supplies and transport (HCPCS Level II)
    ServiceCode("J1100", "HCPCS", "Dexamethasone (steroid) injection, per 1 mg", 800),
    ServiceCode("J2405", "HCPCS", "Ondansetron (anti-nausea) injection, per 1 mg", 1_200),
    ServiceCode("J1885", "HCPCS", "Ketorolac (pain reliever) injection, per 15 mg", 2_500),
    ServiceCode("J0696", "HCPCS", "Ceftriaxone (antibiotic) injection, per 250 mg", 3_000),
    ServiceCode("J0690", "HCPCS", "Cefazolin (antibiotic) injection, up to 500 mg", 2_800),
    ServiceCode("J7030", "HCPCS", "Saline IV fluid, 1,000 ml", 9_000),
    ServiceCode("J2270", "HCPCS", "Morphine (pain) injection, up to 10 mg", 3_500),
    ServiceCode("J1170", "HCPCS", "Hydromorphone (pain) injection, up to 4 mg", 4_200),
    ServiceCode("J3010", "HCPCS", "Fentanyl (pain) injection, 0.1 mg", 3_800),
    ServiceCode("J2250", "HCPCS", "Midazolam (sedative) injection, per 1 mg", 1_500),
    ServiceCode("J1644", "HCPCS", "Heparin (blood thinner) injection, per 1,000 units", 1_100),
    ServiceCode("J1030", "HCPCS", "Methylprednisolone (steroid) injection, 40 mg", 2_600),
    ServiceCode("E0114", "HCPCS", "Crutches, one pair", 9_500),
    ServiceCode("A4565", "HCPCS", "Arm sling", 3_200),
    ServiceCode("A0427", "HCPCS", "Emergency ambulance, advanced life support", 185_000),
    ServiceCode("A0425", "HCPCS", "Ambulance mileage, per mile", 2_800),
    ServiceCode("G0378", "HCPCS", "Hospital observation, per hour", 9_000),
    # Hospital facility charges (UB-04 revenue codes)
    ServiceCode("0121", "REV", "Semi-private hospital room, per day", 320_000),
    ServiceCode("0200", "REV", "Intensive care unit (ICU), per day", 780_000),
    ServiceCode("0250", "REV", "Pharmacy, other medicines", 4_500),
    ServiceCode("0258", "REV", "Pharmacy, IV solutions", 6_800),
    ServiceCode("0270", "REV", "Medical and surgical supplies", 3_500),
    ServiceCode("0272", "REV", "Sterile supplies", 9_000),
    ServiceCode("0360", "REV", "Operating room services", 650_000),
    ServiceCode("0370", "REV", "Anesthesia services (hospital)", 120_000),
    ServiceCode("0410", "REV", "Respiratory therapy", 11_000),
    ServiceCode("0420", "REV", "Physical therapy (hospital)", 18_000),
    ServiceCode("0450", "REV", "Emergency room services (hospital)", 145_000),
    ServiceCode("0710", "REV", "Recovery room", 185_000),
    ServiceCode("0762", "REV", "Observation room", 120_000),
)

CODE_INDEX: dict[str, int] = {entry.code: position for position, entry in enumerate(SERVICE_CODES)}
"""Code -> position in SERVICE_CODES (the ``service_codes`` table's key is position + 1)."""

# Claim adjustment reason codes (CARC) with their X12 meaning.
CARC_DEDUCTIBLE = "1"  # Deductible amount
CARC_COINSURANCE = "2"  # Coinsurance amount
CARC_COPAY = "3"  # Co-payment amount
CARC_COVERAGE_ENDED = "27"  # Expenses incurred after coverage terminated
CARC_FEE_SCHEDULE = "45"  # Charge exceeds fee schedule/maximum allowable or contracted fee arrangement
CARC_NOT_COVERED = "96"  # Non-covered charge(s)
CARC_BUNDLED = "97"  # Benefit included in the payment/allowance for another service already adjudicated
CARC_NOT_IN_PLAN = "204"  # Service not covered under the patient's current benefit plan
CARC_SEQUESTRATION = "253"  # Sequestration: reduction in federal payment

# Remittance advice remark codes (RARC) that explain a CARC further.
RARC_CONTRACT = "N381"  # Consult our contractual agreement for restrictions/billing/payment information
RARC_BUNDLED = "M15"  # Separately billed services/tests have been bundled as components of one procedure
RARC_PLAN_DOCUMENTS = "N130"  # Consult plan benefit documents/guidelines for restrictions for this service
RARC_INELIGIBLE = "N30"  # Patient ineligible for this service


@dataclass(frozen=True, slots=True)
class Payer:
    payer_id: str
    name: str
    kind: str
    """commercial, medicare or medicaid: decides allowed amounts and benefit shapes."""
    plans: tuple[str, ...]
    member_pattern: re.Pattern[str]
    """The shape of this payer's member ids; one that does not fit is rejected with AAA 72."""
    allowed_percent: int
    """What the payer allows, as a percent of billed charges (the rest is CO-45)."""
    has_groups: bool = True


_MBI_LETTER = "[AC-HJKMNP-RT-Y]"  # Medicare Beneficiary Identifier letters: no S, L, O, I, B or Z

PAYERS: tuple[Payer, ...] = (
    Payer(
        "00621",
        "Blue Cross Blue Shield of Illinois",
        "commercial",
        ("Blue Choice PPO", "BlueAdvantage HMO", "Blue Precision HMO"),
        re.compile(r"[A-Z]{3}\d{9}"),
        58,
    ),
    Payer(
        "60054",
        "Aetna",
        "commercial",
        ("Aetna Choice POS II", "Aetna Open Access Managed Choice"),
        re.compile(r"W\d{9}"),
        55,
    ),
    Payer(
        "87726",
        "UnitedHealthcare",
        "commercial",
        ("Choice Plus", "Navigate HMO", "Options PPO"),
        re.compile(r"\d{9}"),
        52,
    ),
    Payer("62308", "Cigna", "commercial", ("Open Access Plus", "LocalPlus"), re.compile(r"U\d{8}(\d{2})?"), 54),
    Payer("61101", "Humana", "commercial", ("Humana National POS",), re.compile(r"H\d{8}"), 50),
    Payer(
        "MCRB-IL",
        "Medicare Part B",
        "medicare",
        ("Original Medicare",),
        re.compile(
            rf"[1-9]{_MBI_LETTER}[0-9AC-HJKMNP-RT-Y]\d{_MBI_LETTER}[0-9AC-HJKMNP-RT-Y]\d{_MBI_LETTER}{{2}}\d{{2}}"
        ),
        31,
        has_groups=False,
    ),
    Payer(
        "MCD-IL",
        "Medicaid",
        "medicaid",
        ("Illinois Medicaid (HealthChoice Illinois)",),
        re.compile(r"\d{9}"),
        24,
        has_groups=False,
    ),
)

_GENERIC_MEMBER_ID = re.compile(r"[A-Z0-9]{6,20}")


def find_payer(payer_id: str, payer_name: str) -> Payer | None:
    """The sandbox payer named by id or (case-insensitively) by name, or None for any other payer."""
    wanted = " ".join(payer_name.split()).casefold()
    for payer in PAYERS:
        if payer.payer_id == payer_id.strip() or payer.name.casefold() == wanted:
            return payer
    return None


def member_id_is_valid(payer: Payer | None, member_id: str) -> bool:
    """Does the member id have the payer's shape (any 6-20 letters and digits for other payers)."""
    pattern = payer.member_pattern if payer else _GENERIC_MEMBER_ID
    return pattern.fullmatch(member_id) is not None


@dataclass(frozen=True, slots=True)
class Benefits:
    """What a member pays, in cents, for a calendar year of in-network care."""

    copay: int
    coinsurance_percent: int
    deductible: int
    deductible_met: int
    out_of_pocket_max: int | None
    out_of_pocket_met: int


_COPAYS = (2_000, 2_500, 3_000, 4_000, 5_000)
_DEDUCTIBLES = (50_000, 100_000, 150_000, 300_000, 500_000)
_OUT_OF_POCKET_MAXIMA = (300_000, 600_000, 815_000)
_MEDICARE_PART_B_DEDUCTIBLE = 25_700  # The 2025 Part B deductible: $257


def benefits_for(payer: Payer | None, member_id: str) -> Benefits:
    """The member's benefits, derived from the member id alone so every caller agrees on them.

    The generator adjudicates claims with these numbers and the clearinghouse answers eligibility
    with them: a patient's bill and their eligibility check tell one story.
    """
    digest = zlib.crc32(member_id.encode())
    if payer is not None and payer.kind == "medicare":
        # Original Medicare: Part B deductible, 20 % coinsurance, no copay and no out-of-pocket cap.
        return Benefits(0, 20, _MEDICARE_PART_B_DEDUCTIBLE, _MEDICARE_PART_B_DEDUCTIBLE * (digest % 2), None, 0)
    if payer is not None and payer.kind == "medicaid":
        return Benefits(0, 0, 0, 0, None, 0)
    deductible = _DEDUCTIBLES[digest % len(_DEDUCTIBLES)]
    out_of_pocket_max = max(_OUT_OF_POCKET_MAXIMA[(digest >> 8) % len(_OUT_OF_POCKET_MAXIMA)], deductible * 2)
    met_percent = (digest >> 16) % 101
    return Benefits(
        copay=0 if deductible >= 300_000 else _COPAYS[(digest >> 4) % len(_COPAYS)],
        coinsurance_percent=(10, 20, 20, 30)[(digest >> 12) % 4],
        deductible=deductible,
        deductible_met=deductible * met_percent // 100,
        out_of_pocket_max=out_of_pocket_max,
        out_of_pocket_met=out_of_pocket_max * met_percent // 200,
    )
