"""The sandbox EHR beyond the contract: matching, coverage, scheduling rules, payments, latency."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from carefront_sandbox.ehr import SandboxEHR, make_ehr
from carefront_sandbox.personas import demo_personas
from carefront_sdk.adapters import AdapterContext
from carefront_sdk.errors import ConfigError, NotFound, Refused
from carefront_sdk.models import (
    Appointment,
    AppointmentStatus,
    CoverageChange,
    CoverageRank,
    Money,
    PatientQuery,
    PaymentPosting,
    ProxyAccess,
    SlotQuery,
)
from carefront_sdk.testing import FakeClock

CHICAGO = ZoneInfo("America/Chicago")
TUESDAY = date(2025, 3, 4)


async def test_matching_ignores_case_and_spacing_but_not_the_birth_date(ehr: SandboxEHR) -> None:
    patient = await ehr.read_patient("pt-1")
    query = PatientQuery(
        f"  {patient.given_name.upper()} ", patient.family_name.lower(), patient.birth_date, mrn=patient.mrn
    )
    assert [found.id for found in await ehr.match_patient(query)] == ["pt-1"]
    assert await ehr.match_patient(dataclasses.replace(query, birth_date=date(1990, 1, 1))) == []
    assert await ehr.match_patient(dataclasses.replace(query, mrn="00000000")) == []


async def test_matching_by_account_number_or_statement_code(ehr: SandboxEHR) -> None:
    patient = await ehr.read_patient("pt-1")
    by_account = PatientQuery(
        patient.given_name, patient.family_name, patient.birth_date, account_number=patient.account_number
    )
    assert [found.id for found in await ehr.match_patient(by_account)] == ["pt-1"]
    code = (await ehr.list_statements("pt-1"))[0].statement_code
    typed = f"{code[:4].lower()}-{code[4:].lower()}"
    by_code = PatientQuery(patient.given_name, patient.family_name, patient.birth_date, statement_code=typed)
    assert [found.id for found in await ehr.match_patient(by_code)] == ["pt-1"]
    someone_elses = (await ehr.list_statements("pt-2"))[0].statement_code
    assert await ehr.match_patient(dataclasses.replace(by_code, statement_code=someone_elses)) == []


async def test_the_guarantor_persona_is_the_childs_guardian(ehr: SandboxEHR) -> None:
    guarantor = next(persona for persona in demo_personas(7) if persona.role == "guarantor")
    assert guarantor.patient_id is not None
    child = await ehr.read_patient(guarantor.patient_id)
    (parent,) = await ehr.list_related_persons(child.id)
    assert (parent.given_name, parent.family_name, parent.email) == (
        guarantor.given_name,
        guarantor.family_name,
        guarantor.email,
    )
    assert parent.access is ProxyAccess.GUARDIAN
    assert parent.patient_id_of_proxy is not None
    assert (await ehr.read_patient(parent.patient_id_of_proxy)).account_number == child.account_number
    assert (await ehr.find_statement_by_code(guarantor.statement_code or "")).patient_id == child.id


async def test_unknown_ids_of_every_kind_are_not_found(ehr: SandboxEHR) -> None:
    for call in (
        ehr.read_patient("pt-99999"),
        ehr.list_statements("pt-0"),
        ehr.read_statement("st-99999999"),
        ehr.list_coverages("nope"),
        ehr.list_related_persons("pt-x"),
        ehr.list_appointments("pt-99999"),
        ehr.cancel("ap-99999", "", "k"),
        ehr.find_slots(SlotQuery("vt-unknown", TUESDAY)),
        ehr.book("pt-1", "pr01.vt-follow-up.20250304T0810", "k"),  # off the 20-minute grid
    ):
        with pytest.raises(NotFound):
            await call


async def test_payment_plan_persona_owes_enough_for_a_plan(ehr: SandboxEHR) -> None:
    plan = demo_personas(7)[1]
    assert plan.patient_id is not None
    owed = sum(summary.balance.amount for summary in await ehr.list_statements(plan.patient_id))
    assert owed >= 150_000
    assert (await ehr.read_patient(plan.patient_id)).language == "es"


# --- Coverage ---------------------------------------------------------------------------------------


def _change(**overrides: object) -> CoverageChange:
    values: dict[str, object] = {
        "patient_id": "pt-1",
        "rank": CoverageRank.PRIMARY,
        "payer_name": "aetna ",
        "plan_name": "Aetna Choice POS II",
        "member_id": "w 123 456 789",
        "subscriber_name": "Pat Example",
        "subscriber_birth_date": date(1980, 5, 1),
    }
    return CoverageChange(**{**values, **overrides})  # type: ignore[arg-type]


async def test_adding_a_primary_coverage_replaces_the_old_one(ehr: SandboxEHR) -> None:
    (old,) = await ehr.list_coverages("pt-1")
    added = await ehr.write_coverage(_change(), "add-1")
    assert added is not None
    assert (added.payer_id, added.payer_name, added.member_id) == ("60054", "Aetna", "W123456789")
    assert added.starts_on == date(2025, 3, 3)
    assert await ehr.write_coverage(_change(), "add-1") == added
    assert [coverage.id for coverage in await ehr.list_coverages("pt-1")] == [added.id]
    assert old.id != added.id


async def test_replacing_and_removing_a_coverage(ehr: SandboxEHR) -> None:
    (old,) = await ehr.list_coverages("pt-1")
    replaced = await ehr.write_coverage(_change(coverage_id=old.id, group_number="G-1"), "replace-1")
    assert replaced is not None
    assert (replaced.id, replaced.group_number) == (old.id, "G-1")
    secondary = await ehr.write_coverage(
        _change(rank=CoverageRank.SECONDARY, payer_name="Medicaid", member_id="123456789"), "add-2"
    )
    assert secondary is not None
    assert [coverage.rank for coverage in await ehr.list_coverages("pt-1")] == [
        CoverageRank.PRIMARY,
        CoverageRank.SECONDARY,
    ]
    removal = CoverageChange("pt-1", CoverageRank.SECONDARY, coverage_id=secondary.id, remove=True)
    assert await ehr.write_coverage(removal, "remove-1") is None
    assert await ehr.write_coverage(removal, "remove-1") is None
    with pytest.raises(NotFound):
        await ehr.write_coverage(removal, "remove-2")
    with pytest.raises(NotFound):
        await ehr.write_coverage(_change(patient_id="pt-2", coverage_id=old.id), "not-theirs")


async def test_a_coverage_needs_its_essentials(ehr: SandboxEHR) -> None:
    with pytest.raises(Refused) as refusal:
        await ehr.write_coverage(_change(member_id="  "), "blank")
    assert refusal.value.code == "invalid_coverage"
    with pytest.raises(Refused):
        await ehr.write_coverage(_change(relationship="cousin"), "cousin")


async def test_reusing_a_key_for_another_request_is_refused(ehr: SandboxEHR) -> None:
    await ehr.write_coverage(_change(), "same-key")
    with pytest.raises(Refused) as refusal:
        await ehr.write_coverage(_change(member_id="W999888777"), "same-key")
    assert refusal.value.code == "idempotency_key_reused"


# --- Scheduling -------------------------------------------------------------------------------------


async def test_catalog_has_visit_types_to_call_about(ehr: SandboxEHR) -> None:
    catalog = await ehr.read_scheduling_catalog()
    by_phone = [visit_type for visit_type in catalog.visit_types if not visit_type.bookable_online]
    assert by_phone
    assert all(visit_type.call_phone for visit_type in by_phone)
    assert await ehr.find_slots(SlotQuery(by_phone[0].id, TUESDAY)) == []


async def test_slots_are_weekday_business_hours_in_the_hospital_zone(ehr: SandboxEHR) -> None:
    slots = await ehr.find_slots(SlotQuery("vt-follow-up", TUESDAY))
    assert slots
    for slot in slots:
        local = slot.starts_at.astimezone(CHICAGO)
        assert local.date() == TUESDAY
        assert 8 <= local.hour < 17
        assert local.hour != 12
        assert slot.ends_at - slot.starts_at == timedelta(minutes=20)
    assert await ehr.find_slots(SlotQuery("vt-follow-up", date(2025, 3, 8))) == []  # a Saturday
    assert await ehr.find_slots(SlotQuery("vt-follow-up", date(2025, 3, 2))) == []  # yesterday
    assert await ehr.find_slots(SlotQuery("vt-follow-up", TUESDAY + timedelta(weeks=9))) == []


async def test_slots_filter_by_location_and_provider(ehr: SandboxEHR) -> None:
    slots = await ehr.find_slots(SlotQuery("vt-follow-up", TUESDAY))
    first = slots[0]
    by_provider = await ehr.find_slots(SlotQuery("vt-follow-up", TUESDAY, provider_id=first.provider_id))
    assert by_provider
    assert {slot.provider_id for slot in by_provider} == {first.provider_id}
    by_location = await ehr.find_slots(SlotQuery("vt-follow-up", TUESDAY, location_id=first.location_id))
    assert {slot.location_id for slot in by_location} == {first.location_id}


async def test_todays_slots_start_at_least_an_hour_from_now(ehr: SandboxEHR, clock: FakeClock) -> None:
    slots = await ehr.find_slots(SlotQuery("vt-sick", date(2025, 3, 3)))
    assert slots
    assert min(slot.starts_at for slot in slots) >= clock() + timedelta(hours=1)


async def test_twenty_concurrent_bookings_of_one_slot_give_one(ehr: SandboxEHR) -> None:
    slot = (await ehr.find_slots(SlotQuery("vt-physical", TUESDAY)))[0]
    outcomes = await asyncio.gather(
        *(ehr.book(f"pt-{n % 5 + 1}", slot.id, f"race-{n}") for n in range(20)), return_exceptions=True
    )
    booked = [outcome for outcome in outcomes if isinstance(outcome, Appointment)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, Refused)]
    assert len(booked) == 1
    assert len(refused) == 19
    assert {refusal.code for refusal in refused} == {"slot_taken"}


async def test_a_40_minute_visit_holds_two_cells(ehr: SandboxEHR) -> None:
    physical = (await ehr.find_slots(SlotQuery("vt-physical", TUESDAY)))[0]
    await ehr.book("pt-1", physical.id, "physical")
    follow_ups = await ehr.find_slots(SlotQuery("vt-follow-up", TUESDAY, provider_id=physical.provider_id))
    held = {physical.starts_at, physical.starts_at + timedelta(minutes=20)}
    assert held.isdisjoint(slot.starts_at for slot in follow_ups)


async def test_booking_repeats_by_key_and_cancelling_frees_the_slot(ehr: SandboxEHR) -> None:
    slot = (await ehr.find_slots(SlotQuery("vt-follow-up", TUESDAY)))[0]
    booked = await ehr.book("pt-1", slot.id, "book-1")
    assert booked.starts_at.tzinfo is not None
    assert booked.instructions
    cancelled = await ehr.cancel(booked.id, "Feeling better", "cancel-1")
    assert cancelled.status is AppointmentStatus.CANCELLED
    assert await ehr.cancel(booked.id, "Feeling better", "cancel-1") == cancelled
    with pytest.raises(Refused) as refusal:
        await ehr.cancel(booked.id, "again", "cancel-2")
    assert refusal.value.code == "already_cancelled"
    assert await ehr.book("pt-1", slot.id, "book-1") == booked  # the key still answers with the first booking
    rebooked = await ehr.book("pt-2", slot.id, "book-2")
    assert rebooked.patient_id == "pt-2"


async def test_past_appointments_cannot_be_cancelled(ehr: SandboxEHR) -> None:
    past = [
        appointment
        for appointment in await ehr.list_appointments("pt-1")
        if appointment.status is AppointmentStatus.FULFILLED
    ]
    assert past
    with pytest.raises(Refused) as refusal:
        await ehr.cancel(past[0].id, "", "late")
    assert refusal.value.code == "not_cancellable"


async def test_a_slot_in_the_past_or_by_phone_cannot_be_booked(ehr: SandboxEHR, clock: FakeClock) -> None:
    slot = (await ehr.find_slots(SlotQuery("vt-follow-up", TUESDAY)))[0]
    clock.advance(timedelta(days=2))
    with pytest.raises(Refused) as refusal:
        await ehr.book("pt-1", slot.id, "too-late")
    assert refusal.value.code == "slot_unavailable"
    with pytest.raises(Refused) as refusal:
        await ehr.book("pt-1", slot.id.replace("vt-follow-up", "vt-mri").replace("pr01", "pr17"), "mri")
    assert refusal.value.code in ("not_bookable_online", "not_found")


async def test_an_mri_slot_is_refused_with_the_phone_to_call(ehr: SandboxEHR) -> None:
    catalog = await ehr.read_scheduling_catalog()
    radiologist = next(provider for provider in catalog.providers if "vt-mri" in provider.visit_type_ids)
    with pytest.raises(Refused) as refusal:
        await ehr.book("pt-1", f"{radiologist.id}.vt-mri.20250311T0900", "mri")
    assert refusal.value.code == "not_bookable_online"
    assert "555-01" in refusal.value.message


# --- Payments ---------------------------------------------------------------------------------------


def _posting(amount: int, reference: str, account: str, statement_id: str | None = None) -> PaymentPosting:
    return PaymentPosting(
        "pt-2", account, Money(amount), reference, datetime(2025, 3, 3, 15, tzinfo=UTC), "card", statement_id
    )


async def test_a_payment_goes_to_the_oldest_balance_first(ehr: SandboxEHR) -> None:
    patient = await ehr.read_patient("pt-2")
    before = {summary.id: summary.balance.amount for summary in await ehr.list_statements("pt-2")}
    oldest_first = [summary for summary in reversed(await ehr.list_statements("pt-2")) if summary.balance.amount]
    amount = oldest_first[0].balance.amount + 100
    receipt = await ehr.post_payment(_posting(amount, "pi_1", patient.account_number), "post-1")
    assert await ehr.post_payment(_posting(amount, "pi_1", patient.account_number), "post-1") == receipt
    assert await ehr.post_payment(_posting(amount, "pi_1", patient.account_number), "post-other-key") == receipt
    after = {summary.id: summary.balance.amount for summary in await ehr.list_statements("pt-2")}
    assert after[oldest_first[0].id] == 0
    assert after[oldest_first[1].id] == before[oldest_first[1].id] - 100
    assert sum(before.values()) - sum(after.values()) == amount


async def test_overpaying_is_refused_and_nothing_goes_below_zero(ehr: SandboxEHR) -> None:
    patient = await ehr.read_patient("pt-2")
    owed = sum(summary.balance.amount for summary in await ehr.list_statements("pt-2"))
    with pytest.raises(Refused) as refusal:
        await ehr.post_payment(_posting(owed + 1, "pi_2", patient.account_number), "over")
    assert refusal.value.code == "overpayment"
    statement = (await ehr.list_statements("pt-2"))[0]
    with pytest.raises(Refused):
        await ehr.post_payment(
            _posting(statement.balance.amount + 1, "pi_3", patient.account_number, statement.id), "over-one"
        )
    await ehr.post_payment(_posting(owed, "pi_4", patient.account_number), "all")
    assert {summary.balance.amount for summary in await ehr.list_statements("pt-2")} == {0}


async def test_a_payment_must_name_the_patients_account(ehr: SandboxEHR) -> None:
    with pytest.raises(Refused) as refusal:
        await ehr.post_payment(_posting(100, "pi_5", "0000000000"), "wrong-account")
    assert refusal.value.code == "account_mismatch"
    with pytest.raises(NotFound):
        await ehr.post_payment(
            _posting(100, "pi_6", (await ehr.read_patient("pt-2")).account_number, "st-1"), "not-theirs"
        )


# --- Settings -------------------------------------------------------------------------------------


async def test_latency_is_simulated_with_a_little_jitter(context: AdapterContext) -> None:
    slow = make_ehr(dataclasses.replace(context, config={"latency_ms": 40}))
    started = time.perf_counter()
    for _ in range(3):
        await slow.health()
    elapsed = time.perf_counter() - started
    assert 3 * 0.030 <= elapsed < 3 * 0.050 + 0.5


def test_size_below_the_minimum_is_a_config_error(context: AdapterContext) -> None:
    with pytest.raises(ConfigError, match="size"):
        make_ehr(dataclasses.replace(context, config={"size": 10}))
    with pytest.raises(ConfigError, match="seed"):
        make_ehr(dataclasses.replace(context, config={"seed": "seven"}))


async def test_the_file_is_named_by_seed_and_size(context: AdapterContext) -> None:
    make_ehr(dataclasses.replace(context, config={"seed": 11, "size": 50}))
    assert (context.data_dir / "sandbox-11-50.sqlite3").exists()
