"""Booking against the real server: one slot is booked once (PROMISES.md 16), and a booking that
fails half-way is finished by a retry with its key, never by someone else."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from carefront_fhir.ehr import FhirEHR
from carefront_sdk.errors import Refused, Unavailable
from carefront_sdk.models import Appointment, AppointmentStatus, SlotQuery
from carefront_sdk.testing import EHRSample

MakeEHR = Callable[..., FhirEHR]


async def test_twenty_concurrent_bookings_of_one_slot_give_one_success(
    make_ehr: MakeEHR, server: Any, sample: EHRSample
) -> None:
    ehr = make_ehr()
    slot = (await ehr.find_slots(sample.slot_query))[0]
    patients = ["pt-1", "pt-2", "pt-3", "pt-4", "pt-5", "pt-6"]
    outcomes = await asyncio.gather(
        *(ehr.book(patients[n % len(patients)], slot.id, f"race-{n}") for n in range(20)), return_exceptions=True
    )
    won = [outcome for outcome in outcomes if isinstance(outcome, Appointment)]
    lost = [outcome for outcome in outcomes if isinstance(outcome, Refused) and outcome.code == "slot_taken"]
    assert (len(won), len(lost)) == (1, 19), outcomes
    assert won[0].slot_id == slot.id
    assert won[0].status is AppointmentStatus.BOOKED
    booked = server.resources(f"Appointment?slot=Slot/{slot.id}")
    assert [appointment["id"] for appointment in booked] == [won[0].id]
    assert server.resources(f"Slot?_id={slot.id}")[0]["status"] == "busy"
    # How many losers got as far as a PUT depends on scheduling (most see the slot busy first); what
    # must hold is that exactly one slot update went through and every other one was refused by If-Match.
    updates = [item["status"] for item in server.requests("PUT", f"Slot/{slot.id}")]
    assert sum(1 for status in updates if status < 300) == 1, updates
    assert all(status < 300 or status == 412 for status in updates), updates


async def test_concurrent_retries_with_one_key_make_one_appointment(
    make_ehr: MakeEHR, server: Any, sample: EHRSample
) -> None:
    ehr = make_ehr()
    slot = (await ehr.find_slots(sample.slot_query))[0]
    outcomes = await asyncio.gather(*(ehr.book("pt-1", slot.id, "one-key") for _ in range(5)))
    assert len({appointment.id for appointment in outcomes}) == 1
    assert len(server.resources(f"Appointment?slot=Slot/{slot.id}")) == 1


async def test_a_booking_lost_after_holding_the_slot_is_finished_by_its_key(
    make_ehr: MakeEHR, server: Any, sample: EHRSample
) -> None:
    ehr = make_ehr(max_retries=0)
    slot = (await ehr.find_slots(sample.slot_query))[0]
    server.control("faults", {"faults": [{"method": "POST", "path": "/fhir/Appointment", "status": 503}]})
    with pytest.raises(Unavailable):
        await ehr.book("pt-1", slot.id, "held-key")
    # The slot stays held for the key: nobody else may take it, and the retry completes the booking.
    assert slot.id not in [open_slot.id for open_slot in await ehr.find_slots(sample.slot_query)]
    with pytest.raises(Refused) as refusal:
        await ehr.book("pt-2", slot.id, "other-key")
    assert refusal.value.code == "slot_taken"
    appointment = await ehr.book("pt-1", slot.id, "held-key")
    assert (appointment.slot_id, appointment.patient_id) == (slot.id, "pt-1")


async def test_a_booking_the_server_rejects_gives_the_slot_back(
    make_ehr: MakeEHR, server: Any, sample: EHRSample
) -> None:
    ehr = make_ehr()
    slot = (await ehr.find_slots(sample.slot_query))[0]
    invalid = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}
    server.control(
        "faults", {"faults": [{"method": "POST", "path": "/fhir/Appointment", "status": 422, "body": invalid}]}
    )
    with pytest.raises(Unavailable):
        await ehr.book("pt-1", slot.id, "rejected-key")
    assert slot.id in [open_slot.id for open_slot in await ehr.find_slots(sample.slot_query)]


async def test_booked_appointment_carries_the_schedule_and_instructions(make_ehr: MakeEHR, sample: EHRSample) -> None:
    ehr = make_ehr()
    slot = (await ehr.find_slots(SlotQuery("hs-new", sample.slot_query.day, provider_id="prac-shah")))[0]
    appointment = await ehr.book("pt-2", slot.id, "new-patient-visit")
    assert (appointment.provider_id, appointment.location_id, appointment.visit_type_id) == (
        "prac-shah",
        "loc-north",
        "hs-new",
    )
    assert appointment.instructions == "Arrive 15 minutes early."
    assert appointment in await ehr.list_appointments("pt-2")
    cancelled = await ehr.cancel(appointment.id, "feeling better", "cancel-new-patient-visit")
    assert cancelled.status is AppointmentStatus.CANCELLED
    again = await ehr.book("pt-3", slot.id, "rebook-after-cancel")
    assert again.slot_id == slot.id
