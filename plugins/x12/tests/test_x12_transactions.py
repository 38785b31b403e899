"""The 270/271, 276/277 and 835 codecs against published sample transactions (see fixtures/SOURCES.md),
encoder output decoded back, and pyx12's validator over 835s. (pyx12 4.0 has no usable 5010 map for
270/271/276 and leaves its 277 X212 map unregistered and out of step with its 5010 control map.)"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from carefront_sdk.models import Adjustment, EligibilityBenefit, Money
from carefront_x12.adjustment_codes import CARC, RARC, explain_adjustment, explain_carc, explain_rarc
from carefront_x12.claim_status import ClaimStatusInquiry, claim_statuses, encode_276, parse_277
from carefront_x12.codes import AAA_REASONS, CLAIM_STATUS_CATEGORIES, claim_status_message
from carefront_x12.core import Composite, Envelope, X12Error, build_interchange, parse_interchange
from carefront_x12.eligibility import EligibilityInquiry, Person, eligibility_result, encode_270, parse_271
from carefront_x12.remittance import parse_835, parse_remittances

FIXTURES = Path(__file__).parent / "fixtures"
WHEN = datetime(2025, 3, 3, 15, 4, tzinfo=UTC)
ENVELOPE = Envelope("CAREFRONT", "CLEARINGHS")


def sample(name: str) -> str:
    return (FIXTURES / name).read_text()


def segment_ids(text: str, code: str) -> list[str]:
    (transaction,) = parse_interchange(text).transactions(code)
    return [segment.id for segment in transaction.segments]


# --- 270 / 271 ------------------------------------------------------------------------------------

SUBSCRIBER = Person("Robert", "Smith", date(1943, 5, 19), None, "11122333301")
INQUIRY = EligibilityInquiry(
    reference="10001234",
    payer_id="842610001",
    payer_name="ABC Company",
    provider_npi="1234567893",
    provider_name="Bone and Joint Clinic",
    subscriber=SUBSCRIBER,
    trace_number="93175-012547",
    trace_company_id="9877281234",
    service_date=date(2006, 5, 1),
)


def test_270_for_a_subscriber_has_the_guides_shape() -> None:
    text = encode_270(INQUIRY, envelope=ENVELOPE, control_number=907, when=WHEN)
    assert segment_ids(text, "270") == segment_ids(sample("lfh-270-subscriber.x12"), "270")
    (transaction,) = parse_interchange(text).transactions("270")
    assert transaction.implementation == "005010X279A1"
    assert parse_interchange(text).groups[0].functional_id == "HS"
    rows = {segment.id: segment.elements for segment in transaction.segments}
    assert rows["NM1"] == ("IL", "1", "SMITH", "ROBERT", "", "", "", "MI", "11122333301")
    assert rows["DMG"] == ("D8", "19430519")
    assert rows["TRN"] == ("1", "93175-012547", "9877281234")
    assert rows["EQ"] == ("30",)


def test_270_for_a_dependent_has_the_guides_shape() -> None:
    inquiry = dataclasses.replace(INQUIRY, dependent=Person("Mary", "Smith", date(1978, 10, 14)))
    text = encode_270(inquiry, envelope=ENVELOPE, control_number=907, when=WHEN)
    assert segment_ids(text, "270") == segment_ids(sample("lfh-270-dependent.x12"), "270")


def test_270_names_in_x12s_character_set() -> None:
    person = Person("José-María", "Núñez*O'Brien", date(1990, 1, 2), "F", "ABC123")
    text = encode_270(
        EligibilityInquiry(
            "R1", "P1", "Payer", "1234567893", "Clinic", person, "T1", "9123456789", service_types=("30", "98")
        ),
        envelope=ENVELOPE,
        control_number=1,
        when=WHEN,
    )
    (transaction,) = parse_interchange(text).transactions("270")
    nm1 = next(s for s in transaction.segments if s.id == "NM1" and s.element(1) == "IL")
    assert (nm1.element(3), nm1.element(4)) == ("NUNEZ O'BRIEN", "JOSE-MARIA")
    eq = next(s for s in transaction.segments if s.id == "EQ")
    assert eq.repeats(1) == ("30", "98")


def test_271_subscriber_sample() -> None:
    response = parse_271(sample("lfh-271-subscriber.x12"))
    assert (response.payer_name, response.payer_id, response.provider_id) == ("PAYER C", "12345", "1467857193")
    patient = response.patient
    assert patient is not None
    assert (patient.level, patient.member_id) == ("subscriber", "00000000001")
    assert patient.traces[0].number == "930000000000"
    assert [b.code for b in patient.benefits] == ["1", "L", "1", "B", "B"]
    copay = patient.benefits[3]
    assert (copay.amount, copay.time_period, copay.in_network, copay.insurance_type) == (1000, "27", "Y", "HM")
    assert copay.service_types == ("1", "33", "35", "47", "86", "88", "98", "AL", "MH", "UC")
    result = eligibility_result(response, checked_at=WHEN, payer_name="unused", trace_number="mine")
    assert result.active
    assert result.plan_name == "GOLD 123 PLAN"
    assert result.trace_number == "930000000000"
    assert EligibilityBenefit("copay", "98", True, amount=Money(1000), period="visit") in result.benefits
    assert EligibilityBenefit("copay", "98", False, amount=Money(3000), period="visit") in result.benefits


def test_271_dependent_sample_answers_for_the_dependent() -> None:
    response = parse_271(sample("lfh-271-dependent.x12"))
    assert [member.level for member in response.members] == ["subscriber", "dependent"]
    patient = response.patient
    assert patient is not None
    assert (patient.level, patient.relationship) == ("dependent", "19")
    assert patient.dates[0].start == date(2006, 1, 1)
    assert response.members[0].member_id == "123456789"
    assert eligibility_result(response, checked_at=WHEN, payer_name="", trace_number=None).active


def test_271_mock_payer_sample_deductible_and_out_of_pocket_remaining() -> None:
    response = parse_271(sample("pokitdok-271-mock-payer.x12"))
    result = eligibility_result(response, checked_at=WHEN, payer_name="", trace_number="T")
    assert (result.active, result.plan_name, result.payer_name) == (True, "Open Choice", "MOCK PAYER INC")
    by_key = {(b.kind, b.service_type, b.in_network): b for b in result.benefits}
    deductible = by_key["deductible", "30", True]
    assert (deductible.amount, deductible.remaining, deductible.period) == (
        Money(300000),
        Money(298357),
        "calendar_year",
    ), "the individual figure is preferred to the family one"
    assert by_key["out_of_pocket", "30", False].remaining == Money(1248357)
    assert by_key["copay", "98", True].amount == Money(2000)
    assert by_key["coinsurance", "98", False].percent == 50
    assert result.trace_number == "T", "TRN*1 is the payer's own trace, not an echo of ours"


def test_271_provider_rejection_sample_and_its_envelope_defect() -> None:
    text = sample("lfh-271-provider-rejected.x12")
    with pytest.raises(X12Error) as caught:
        parse_271(text)
    # The published sample closes ST*271*4321 with SE*8*4323: the checker finds it.
    assert (caught.value.segment_id, caught.value.segment_position, caught.value.element_position) == ("SE", 10, 2)
    response = parse_271(text, check_envelopes=False)
    (rejection,) = response.rejections
    assert (rejection.loop, rejection.reason, rejection.follow_up, rejection.valid_request) == (
        "2100B",
        "50",
        "N",
        True,
    )
    result = eligibility_result(response, checked_at=WHEN, payer_name="", trace_number=None)
    assert not result.active
    assert result.rejection is not None
    assert result.rejection.code == "50"
    assert result.rejection.message.startswith("The insurer does not accept coverage checks from this provider.")


def test_270_encoded_then_answered_then_decoded_round_trip() -> None:
    text = encode_270(INQUIRY, envelope=ENVELOPE, control_number=5, when=WHEN)
    (transaction,) = parse_interchange(text).transactions("270")
    trace = next(s for s in transaction.segments if s.id == "TRN").element(2)
    answer = build_interchange(
        [
            [
                ["BHT", "0022", "11", "10001234", "20250303", "1504"],
                ["HL", "1", "", "20", "1"],
                ["NM1", "PR", "2", "ABC COMPANY", "", "", "", "", "PI", "842610001"],
                ["HL", "2", "1", "21", "1"],
                ["NM1", "1P", "2", "CLINIC", "", "", "", "", "XX", "1234567893"],
                ["HL", "3", "2", "22", "0"],
                ["TRN", "2", trace, "9877281234"],
                ["NM1", "IL", "1", "SMITH", "ROBERT", "", "", "", "MI", "11122333301"],
                ["AAA", "Y", "", "71", "C"],
            ]
        ],
        functional_id="HB",
        version="005010X279A1",
        envelope=Envelope("CLEARINGHS", "CAREFRONT"),
        control_number=6,
        when=WHEN,
    )
    result = eligibility_result(parse_271(answer), checked_at=WHEN, payer_name="", trace_number=trace)
    assert result.rejection is not None
    assert (result.rejection.code, result.trace_number) == ("71", "93175-012547")
    assert "date of birth" in result.rejection.message


@pytest.mark.parametrize(
    "code",
    [
        "15",
        "41",
        "42",
        "43",
        "45",
        "47",
        "48",
        "49",
        "51",
        "52",
        "56",
        "57",
        "58",
        "60",
        "61",
        "62",
        "63",
        "64",
        "65",
        "67",
        "68",
        "71",
        "72",
        "73",
        "74",
        "75",
        "76",
        "78",
        "79",
        "80",
        "97",
        "T4",
    ],
)
def test_every_common_aaa_reason_has_plain_words(code: str) -> None:
    assert code in AAA_REASONS
    assert AAA_REASONS[code].plain.endswith(".")


# --- 276 / 277 ------------------------------------------------------------------------------------


def test_276_has_the_guides_shape_and_decodes_back() -> None:
    inquiry = ClaimStatusInquiry(
        reference="ABC276XXX",
        payer_id="12345",
        payer_name="ABC Insurance",
        submitter_id="X67E",
        submitter_name="XYZ Service",
        provider_npi="1666666661",
        provider_name="Home Hospital",
        subscriber=Person("Fred", "Smith", date(1930, 12, 10), "M", "123456789A"),
        claim_id="ABCXYZ1",
        charged_cents=851388,
        service_date=date(2005, 8, 31),
    )
    text = encode_276(inquiry, envelope=ENVELOPE, control_number=3, when=WHEN)
    sample_ids = segment_ids(sample("lfh-276-provider-level-status.x12"), "276")
    # The sample's first claim (up to its DTP) is the shape; it also sends REF*BLT, which we omit.
    first_claim = [segment for segment in sample_ids[: sample_ids.index("DTP") + 1] if segment != "REF"]
    assert segment_ids(text, "276") == [*first_claim[:-2], "REF", "AMT", "DTP"]
    (transaction,) = parse_interchange(text).transactions("276")
    rows = {segment.id: segment.elements for segment in transaction.segments}
    assert rows["AMT"] == ("T3", "8513.88")
    assert rows["DMG"] == ("D8", "19301210", "M")


def test_277_sample_claims_lines_and_its_count_defect() -> None:
    text = sample("lfh-277-claim-level-status.x12")
    with pytest.raises(X12Error) as caught:
        parse_277(text)
    # The published sample says SE*36 for 38 segments.
    assert (caught.value.segment_id, caught.value.element_position) == ("SE", 1)
    response = parse_277(text, check_envelopes=False)
    assert response.payer_name == "ABC INSURANCE"
    assert [claim.tracking_number for claim in response.claims] == ["ABCXYZ1", "ABCXYZ2", "ABCXYC3"]
    pending, finalized, denied = response.claims
    assert (pending.statuses[0].category, pending.statuses[0].status, pending.statuses[0].charged) == (
        "P3",
        "317",
        851388,
    )
    assert (finalized.payer_claim_number, finalized.patient_control_number) == ("0529675341", "J0234567")
    assert denied.statuses[0].codes == (("F2", "88", "QC"),)
    (line,) = denied.service_lines
    assert (line.procedure, line.charged, line.paid) == (("HC", "99203"), 15000, 0)
    (status,) = claim_statuses(response, claim_id="J0234567", as_of=WHEN)
    assert (status.category_code, status.paid) == ("F0", Money(759900))
    (denial,) = claim_statuses(response, claim_id="ABCXYC3", as_of=WHEN)
    assert (denial.message, denial.paid) == ("Finalized: the insurer denied the claim.", Money(0))
    (pend,) = claim_statuses(response, claim_id="ABCXYZ1", as_of=WHEN)
    assert pend.paid is None
    assert "waiting for information from the provider" in pend.message


@pytest.mark.parametrize(
    "category", [f"A{n}" for n in range(9)] + [f"P{n}" for n in range(6)] + [f"F{n}" for n in range(5)]
)
def test_claim_status_categories_have_plain_words(category: str) -> None:
    assert category in CLAIM_STATUS_CATEGORIES
    assert claim_status_message(category, "") == CLAIM_STATUS_CATEGORIES[category].plain


def test_unlisted_r_and_e_categories_fall_back_to_their_family() -> None:
    assert claim_status_message("R13", "") == "The insurer has asked for more information."
    assert claim_status_message("E9", "") == "The insurer could not answer the status question."


# --- 835 ------------------------------------------------------------------------------------------


def test_835_managed_care_sample() -> None:
    text = sample("lfh-835-managed-care.x12")
    with pytest.raises(X12Error) as caught:
        parse_835(text)
    # The guide's example dates the payment "20002316" (month 23); pyx12 flags it too (below).
    assert (caught.value.segment_id, caught.value.segment_position, caught.value.element_position) == ("BPR", 4, 16)
    remittance = parse_835(text.replace("*20002316~", "*20020316~"))
    assert remittance.payment_date == date(2002, 3, 16)
    assert (remittance.payer_name, remittance.payee_name, remittance.payee_id) == (
        "RUSHMORE LIFE",
        "ACME MEDICAL CENTER",
        "5544667733",
    )
    assert (remittance.total_paid, remittance.payment_method, remittance.trace_number) == (
        Money(94500),
        "ACH",
        "7170066655",
    )
    assert sum(claim.paid.amount for claim in remittance.claims) == remittance.total_paid.amount
    first, second = remittance.claims
    assert (first.patient_control_number, first.charged, first.paid, first.patient_responsibility) == (
        "5554555444",
        Money(80000),
        Money(45000),
        Money(30000),
    )
    assert first.status == "Processed as Primary"
    assert first.adjustments == (Adjustment(Money(5000), "CO", "A2"),)
    (line,) = second.services
    assert line.procedure == ("HC", "93555")
    assert (line.charged, line.paid) == (Money(120000), Money(55000))
    assert line.service_dates == (date(2002, 3, 10), date(2002, 3, 12))
    assert line.adjustments == (Adjustment(Money(60000), "PR", "1"), Adjustment(Money(5000), "CO", "45"))


def test_835_medicare_part_a_sample_remarks_and_provider_adjustments() -> None:
    remittance = parse_835(sample("lfh-835-medicare-part-a.x12"))
    assert (remittance.payer_id, remittance.credit_debit, remittance.payment_date) == ("999", "C", date(2002, 9, 13))
    inpatient, outpatient = remittance.claims
    assert inpatient.statement_dates == (date(2002, 8, 16), date(2002, 8, 24))
    assert outpatient.remark_codes == ("MA02",)
    assert outpatient.adjustments == (Adjustment(Money(301967), "CO", "45", ("MA02",)),)
    (plb,) = remittance.provider_adjustments
    assert (plb.reason, plb.reference, plb.amount) == ("CV", "CP", Money(-127))


def test_835_secondary_sample_negative_adjustment() -> None:
    remittance = parse_835(sample("lfh-835-cob-contractual-adjustment.x12"))
    (claim,) = remittance.claims
    assert claim.status == "Processed as Secondary"
    (line,) = claim.services
    # The sample writes SVC01 with ">" although its ISA16 declares ":"; it stays one component.
    assert line.procedure == ("HC>55669",)
    assert [adj.amount.amount for adj in line.adjustments] == [51600, -900]
    assert line.units == "1.00"


def _remit(*segments: list[str | Composite], sets: int = 1) -> str:
    body = [
        ["BPR", "I", "100", "C", "CHK", "", "", "", "", "", "", "", "", "", "", "", "20250301"],
        ["TRN", "1", "CHK100", "1512345678"],
        ["N1", "PR", "PAYER"],
        ["N1", "PE", "CLINIC", "XX", "1234567893"],
        ["LX", "1"],
        *segments,
    ]
    return build_interchange(
        [body] * sets, functional_id="HP", version="005010X221A1", envelope=ENVELOPE, control_number=9, when=WHEN
    )


def test_835_cas_with_six_reasons_and_lq_remarks() -> None:
    cas = ["CAS", "PR", "1", "10", "", "2", "20", "", "3", "30", "", "45", "1", "", "96", "2", "", "242", "3"]
    text = _remit(
        ["CLP", "C1", "1", "200", "100", "60", "12"],
        ["SVC", Composite("HC", "99213", "25"), "200", "100", "", "2"],
        ["DTM", "472", "20250214"],
        cas,
        ["REF", "6R", "LINE1"],
        ["LQ", "HE", "N130"],
        ["LQ", "HE", "M15"],
    )
    (claim,) = parse_835(text).claims
    (line,) = claim.services
    assert [(a.reason_code, a.amount.amount) for a in line.adjustments] == [
        ("1", 1000),
        ("2", 2000),
        ("3", 3000),
        ("45", 100),
        ("96", 200),
        ("242", 300),
    ]
    assert line.remark_codes == ("N130", "M15")
    assert line.adjustments[0].remark_codes == ("N130", "M15")
    assert (line.procedure, line.units, line.control_number) == (("HC", "99213", "25"), "2", "LINE1")


@pytest.mark.parametrize(
    ("segment", "element", "message"),
    [
        (["CAS", "PR", "1"], 3, "has no amount"),
        (["CAS", "PR", "", "10"], 2, "without its reason code"),
        (["CAS", "PR", "1", "1O.00"], 3, "is not a number"),
        (["CAS", "PR", "1", "10.005"], 3, "whole number of cents"),
        (["CLP", "C2", "1", "", "1"], 3, "CLP03"),
    ],
)
def test_835_malformed_amounts_are_named(segment: list[str], element: int, message: str) -> None:
    text = _remit(["CLP", "C1", "1", "200", "100"], segment)
    with pytest.raises(X12Error) as caught:
        parse_835(text)
    assert message in caught.value.message
    assert (caught.value.segment_id, caught.value.segment_position, caught.value.element_position) == (
        segment[0],
        10,
        element,
    )


def test_several_835s_in_one_file() -> None:
    text = _remit(["CLP", "C1", "1", "200", "100"], sets=2)
    assert [r.total_paid for r in parse_remittances(text)] == [Money(10000), Money(10000)]
    with pytest.raises(X12Error, match="expected one 835"):
        parse_835(text)


@pytest.mark.parametrize(
    "code",
    [
        "1",
        "2",
        "3",
        "4",
        "16",
        "18",
        "22",
        "23",
        "27",
        "29",
        "45",
        "50",
        "96",
        "97",
        "109",
        "119",
        "151",
        "167",
        "197",
        "204",
        "242",
        "253",
    ],
)
def test_common_carcs_are_explained(code: str) -> None:
    assert code in CARC
    assert explain_carc(code) == CARC[code].plain


@pytest.mark.parametrize("code", ["N130", "M15", "MA130", "N381", "N19"])
def test_common_rarcs_are_explained(code: str) -> None:
    assert code in RARC
    assert explain_rarc(code) == RARC[code].plain


def test_unknown_codes_fall_back_to_the_group() -> None:
    assert explain_carc("9999") is None
    assert explain_adjustment("CO", "9999").startswith("A reduction the provider agreed to")


# --- pyx12, where it has maps ---------------------------------------------------------------------


def _pyx12_errors(text: str) -> list[str]:
    """What pyx12's validator reports for ``text``: its "err_str"s, or the reason it gave up."""
    pyx12_document = pytest.importorskip("pyx12.x12n_document")
    params = pytest.importorskip("pyx12.params")
    report = io.StringIO()
    logging.getLogger("pyx12").disabled = True
    valid = pyx12_document.x12n_document(params.params(), io.StringIO(text), None, None, None, report)
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for error in node.get("errors", []):
                found.append(str(error.get("err_str", error)))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(report.getvalue()))
    if not valid and not found:
        found.append("pyx12 rejected the document without a located error")
    return found


def test_pyx12_finds_the_published_835_samples_defects() -> None:
    # The guide's examples omit ST03 and PER*BL and carry a 2002 date written "20002316": pyx12 says so.
    errors = _pyx12_errors(sample("lfh-835-managed-care.x12"))
    assert any("invalid date" in error for error in errors)
    assert any("PER" in error or "Payer Technical Contact" in error for error in errors)


def test_pyx12_accepts_an_835_our_decoder_reads() -> None:
    text = sample("carefront-835-clean.x12")
    assert _pyx12_errors(text) == []
    remittance = parse_835(text)
    assert remittance.total_paid == Money(8000)
    assert remittance.trace_number == "EFT0000001"
    (claim,) = remittance.claims
    (line,) = claim.services
    assert [(a.group_code, a.reason_code, a.amount.amount) for a in line.adjustments] == [
        ("CO", "45", 4500),
        ("PR", "3", 2500),
        ("PR", "1", 2500),
    ]
    assert line.remark_codes == ("N381",)
