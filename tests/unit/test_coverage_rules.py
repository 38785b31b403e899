"""The insurance domain's pure rules: the payer list file, member ID shapes, the coverage form, and
eligibility answers in plain words (every AAA reject reason a patient can act on has a fix)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from carefront_sdk.models import (
    CoverageRank,
    EligibilityBenefit,
    EligibilityRejection,
    EligibilityResult,
    Money,
)

from portal.coverage import eligibility
from portal.coverage.coverage_form import CoverageForm, read_details
from portal.coverage.payers import DEFAULT_FILE, PayerListError, load, normal_member_id

TODAY = date(2026, 11, 22)
NOW = datetime(2026, 11, 22, 15, tzinfo=UTC)


def test_the_default_payer_list_loads_and_checks_member_ids():
    directory = load(DEFAULT_FILE)
    aetna = directory.find("60054")
    assert aetna is not None
    assert aetna.fits("W123456789")
    assert not aetna.fits("123456789")
    assert [payer.name for payer in directory.search("blue cross")] == ["Blue Cross Blue Shield of Illinois"]
    assert len(directory.search("")) == len(directory.payers)


def test_member_ids_are_compared_as_payers_do():
    assert normal_member_id(" w 1234-56789 ") == "W123456789"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('[[payer]]\npayer_id = "1"\n', "payer_id and name"),
        ('[[payer]]\npayer_id = "1"\nname = "A"\nmember_id_pattern = "["\n', "not a regular expression"),
        ('[[payer]]\npayer_id = "1"\nname = "A"\nmember_id_pattern = "X[0-9]"\nmember_id_example = "Y1"\n', "example"),
        ('[[payer]]\npayer_id = "1"\nname = "A"\ncolour = "red"\n', "unknown key 'colour'"),
        ('[[payer]]\npayer_id = "1"\nname = "A"\n[[payer]]\npayer_id = "1"\nname = "B"\n', "listed twice"),
    ],
)
def test_a_wrong_payer_file_is_refused_with_what_is_wrong(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "payers.toml"
    path.write_text(text)
    with pytest.raises(PayerListError, match=problem):
        load(path)


def form(**values: str) -> CoverageForm:
    defaults = {"rank": "secondary", "payer_id": "60054", "member_id": "W123456789", "relationship": "self"}
    return CoverageForm(**(defaults | values))


def test_a_well_filled_form_gives_the_details_to_send():
    details, errors = read_details(form(group_number=" 12 34 "), load(DEFAULT_FILE), TODAY)
    assert errors == {}
    assert details is not None
    assert (details.payer_name, details.member_id, details.group_number) == ("Aetna", "W123456789", "12 34")
    assert details.subscriber_name == ""
    assert details.subscriber_birth_date is None


def test_payers_without_groups_drop_a_group_number():
    details, _ = read_details(
        form(payer_id="MCD-IL", member_id="123456789", group_number="9"), load(DEFAULT_FILE), TODAY
    )
    assert details is not None
    assert details.group_number == ""


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"rank": "tertiary"}, "rank"),
        ({"payer_id": "nobody"}, "payer_id"),
        ({"payer_id": "other"}, "payer_name"),
        ({"member_id": ""}, "member_id"),
        ({"member_id": "W12*"}, "member_id"),
        ({"member_id": "X123"}, "member_id"),
        ({"group_number": "<b>"}, "group_number"),
        ({"relationship": "cousin"}, "relationship"),
        ({"relationship": "spouse"}, "subscriber_name"),
        (
            {"relationship": "spouse", "subscriber_name": "A B", "subscriber_birth_date": "2030-01-01"},
            "subscriber_birth_date",
        ),
        (
            {"relationship": "spouse", "subscriber_name": "A B", "subscriber_birth_date": "01/02/1980"},
            "subscriber_birth_date",
        ),
    ],
)
def test_what_is_wrong_is_said_beside_the_field(values: dict[str, str], field: str):
    details, errors = read_details(form(**values), load(DEFAULT_FILE), TODAY)
    assert details is None
    assert field in errors


def test_an_active_answer_names_the_office_visit_copay_and_what_remains():
    result = EligibilityResult(
        True,
        NOW,
        "Aetna",
        "Choice POS II",
        (
            EligibilityBenefit("copay", "30", True, Money(4000)),
            EligibilityBenefit("copay", "98", True, Money(2500)),
            EligibilityBenefit("copay", "98", False, Money(6000)),
            EligibilityBenefit("deductible", "30", True, Money(150_000), Money(40_000)),
            EligibilityBenefit("out_of_pocket", "30", True, Money(600_000), Money(320_000)),
            EligibilityBenefit("coinsurance", "30", True, percent=20),
        ),
    )
    answer = eligibility.answer_from(CoverageRank.PRIMARY, "cov-1", result)
    assert answer.outcome is eligibility.Outcome.ACTIVE
    assert answer.office_visit_copay == Money(2500)
    assert (answer.deductible, answer.deductible_remaining) == (Money(150_000), Money(40_000))
    assert (answer.out_of_pocket_max, answer.out_of_pocket_remaining) == (Money(600_000), Money(320_000))
    assert answer.coinsurance_percent == 20


def test_a_rejection_says_what_to_fix():
    result = EligibilityResult(False, NOW, "Aetna", rejection=EligibilityRejection("72", "Invalid Member ID", "C"))
    answer = eligibility.answer_from(CoverageRank.SECONDARY, None, result)
    assert answer.outcome is eligibility.Outcome.REJECTED
    assert answer.rejection is not None
    assert answer.rejection.fix == eligibility.CHECK_MEMBER_ID
    assert eligibility.rejection_for("ZZ").meaning == eligibility.UNKNOWN_REJECTION


def test_patient_fixable_reject_reasons_ask_the_patient_and_the_others_do_not():
    for code in ("58", "64", "65", "71", "72", "73"):
        assert eligibility.rejection_for(code).fix not in {eligibility.FOR_THE_HOSPITAL, eligibility.TRY_LATER}
    for code in ("15", "33", "41", "43", "51"):
        assert eligibility.rejection_for(code).fix == eligibility.FOR_THE_HOSPITAL


def test_an_inactive_answer_has_no_figures():
    answer = eligibility.answer_from(CoverageRank.PRIMARY, "cov-1", EligibilityResult(False, NOW, "Aetna"))
    assert answer.outcome is eligibility.Outcome.INACTIVE
    assert answer.deductible is None
