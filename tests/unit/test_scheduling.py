"""The parts of appointments that need no server: the cost estimate's arithmetic, the calendar file's
escaping and folding, and the ``[scheduling]`` settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from carefront_sdk.models import (
    Appointment,
    AppointmentStatus,
    EligibilityBenefit,
    EligibilityResult,
    Location,
    Money,
)

from portal.scheduling.calendar import escape_text, fold, ics
from portal.scheduling.estimates import Basis, patient_share
from portal.scheduling.records import Visit
from portal.settings import Settings, SettingsError

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
SECRET = {"CAREFRONT_SECRET_KEY": "x" * 40}


def answer(*benefits: EligibilityBenefit, active: bool = True) -> EligibilityResult:
    return EligibilityResult(active, NOW, "Acme Health", benefits=benefits)


def test_a_copay_is_what_the_patient_pays_at_most_the_charge():
    result = answer(EligibilityBenefit("copay", "98", True, Money(2500)))
    assert patient_share(Money(15500), result, "98").you_pay == Money(2500)
    assert patient_share(Money(1800), result, "98").you_pay == Money(1800)
    assert patient_share(Money(15500), result, "98").basis is Basis.COPAY


def test_the_deductible_comes_first_then_coinsurance_on_the_rest():
    result = answer(
        EligibilityBenefit("deductible", "30", True, Money(150000), Money(10000)),
        EligibilityBenefit("coinsurance", "30", True, percent=20),
    )
    estimate = patient_share(Money(24500), result, "98")
    assert (estimate.deductible, estimate.coinsurance, estimate.you_pay) == (Money(10000), Money(2900), Money(12900))


def test_the_out_of_pocket_maximum_left_caps_the_estimate_and_rounding_is_to_the_cent():
    result = answer(
        EligibilityBenefit("deductible", "98", True, Money(100000), Money(0)),
        EligibilityBenefit("coinsurance", "98", True, percent=15),
        EligibilityBenefit("out_of_pocket", "98", True, Money(500000), Money(1000)),
    )
    assert patient_share(Money(15503), result, "98").coinsurance == Money(2325)  # 2325.45 rounds down
    assert patient_share(Money(15503), result, "98").you_pay == Money(1000)


def test_a_benefit_for_the_visits_service_type_wins_over_a_general_one():
    result = answer(
        EligibilityBenefit("copay", "30", True, Money(5000)),
        EligibilityBenefit("copay", "98", True, Money(2000)),
        EligibilityBenefit("copay", "98", False, Money(9000)),
    )
    assert patient_share(Money(15500), result, "98").you_pay == Money(2000)


def test_inactive_coverage_leaves_the_whole_charge():
    estimate = patient_share(Money(15500), answer(active=False), "98")
    assert (estimate.basis, estimate.you_pay) == (Basis.INACTIVE, Money(15500))


def test_text_is_escaped_and_long_lines_fold_at_75_octets_without_splitting_a_character():
    assert escape_text("a\\b;c,d\ne\r\nf") == "a\\\\b\\;c\\,d\\ne\\nf"
    line = "DESCRIPTION:" + "ñ" * 100
    folded = fold(line)
    pieces = folded.split("\r\n ")
    assert "".join(pieces) == line
    assert all(len(piece.encode()) <= 75 for piece in pieces[:1])
    assert all(len(piece.encode()) <= 74 for piece in pieces[1:])


def test_a_cancelled_appointment_is_a_cancelled_event():
    appointment = Appointment(
        "ap-9", "pt-1", AppointmentStatus.CANCELLED, NOW, NOW + timedelta(minutes=20), "vt", "pr", "loc"
    )
    body = ics(
        Visit(appointment, None, Location("loc", "Clinic; North", "1 Main St, Town", "555"), None),
        summary="Visit",
        description="",
        public_url="https://portal.example.org",
        now=NOW,
    ).decode()
    assert "STATUS:CANCELLED\r\n" in body
    assert "UID:appointment-ap-9@portal.example.org\r\n" in body
    assert "LOCATION:Clinic\\; North\\, 1 Main St\\, Town\r\n" in body
    assert "DTSTART:20261120T150000Z\r\nDTEND:20261120T152000Z\r\n" in body


def test_scheduling_settings_are_read_and_checked():
    settings = Settings.from_document(
        {"scheduling": {"cancel_cutoff_hours": 12, "reminder_hours": [2, 48, 2], "phone": "(312) 555-0142"}}, SECRET
    )
    assert (settings.scheduling.cancel_cutoff_hours, settings.scheduling.reminder_hours) == (12, (48, 2))
    assert settings.scheduling.phone == "(312) 555-0142"
    assert Settings.from_document({}, SECRET).scheduling.reminder_hours == (24, 2)
    for bad in ({"cancel_cutoff_hours": -1}, {"reminder_hours": [0]}, {"reminder_hours": "24"}, {"cutoff": 3}):
        with pytest.raises(SettingsError, match="scheduling"):
            Settings.from_document({"scheduling": bad}, SECRET)
