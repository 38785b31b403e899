"""Appointments through the portal, on the sandbox EHR: the list, booking step by step, a double submit
booking once, a slot taken meanwhile offering the nearest, twenty concurrent bookings of one slot giving
one (PROMISES.md 16), the hospital's cut-off, a reschedule that keeps the old time until the new one is
confirmed, the calendar file, reminders sent once, Spanish, and the EHR down (PROMISES.md 15)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import carefront_sandbox.hooks
import httpx
import pytest
from asgi_lifespan import LifespanManager
from carefront_sandbox.identifiers import format_id
from carefront_sandbox.notifier import outbox
from carefront_sdk import hookimpl
from carefront_sdk.adapters import Port
from carefront_sdk.errors import Unavailable
from carefront_sdk.models import Appointment, AppointmentEvent, AppointmentStatus, SlotQuery
from litestar import Litestar
from litestar.serialization import encode_json

from portal import jobs
from portal.app import SESSION_COOKIE, create_app
from portal.audit.tables import AuditEvent
from portal.identity import accounts
from portal.outbox.relay import state_of
from portal.outbox.tables import OutboxMessage
from portal.scheduling.tables import Booking, Cancellation, Reminder

CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
TOKEN_INPUT = re.compile(r'name="booking_token" value="([^"]+)"')
SLOT_INPUT = re.compile(r'name="slot" id="slot-[\d-]+" value="([^"]+)"')
FOLLOW_UP = "vt-follow-up"
MAIN = "loc-main"
MAIN_PHONE = "(312) 555-0100"


class Recorder:
    """A plugin that keeps the appointment events it is told of."""

    def __init__(self) -> None:
        self.booked: list[AppointmentEvent] = []
        self.cancelled: list[AppointmentEvent] = []

    @hookimpl
    def carefront_appointment_booked(self, event: AppointmentEvent) -> None:
        self.booked.append(event)

    @hookimpl
    def carefront_appointment_cancelled(self, event: AppointmentEvent) -> None:
        self.cancelled.append(event)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def portal(settings, clock, recorder) -> AsyncIterator[Litestar]:
    application = create_app(
        settings, plugins=[("sandbox", carefront_sandbox.hooks), ("recorder", recorder)], clock=clock
    )
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


def host(app: Litestar) -> Any:
    return app.state["plugin_host"]


async def signed_in(app: Litestar, client: httpx.AsyncClient, patient_id: str, **values: str) -> str:
    """A patient session acting for ``patient_id`` (an account of its own only when ``account_id`` is given)."""
    key = secrets.token_hex(32)
    session = {
        "account_id": str(uuid.uuid4()),
        "realm": "patient",
        "acting_for": patient_id,
        "access": "self",
        "signed_in_at": datetime.now(UTC).isoformat(),
        **values,
    }
    await app.stores.get("sessions").set(key, encode_json(session), expires_in=15 * 60)
    client.cookies.set(SESSION_COOKIE, key, domain="testserver.local")
    return session["account_id"]


async def patient_account(patient_id: str, now: datetime, language: str = "en") -> dict[str, Any]:
    found = await accounts.find_by_patient(patient_id)
    if found is not None:
        return found
    tag = secrets.token_hex(4)
    created = await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"appointments-{tag}@example.org",
        email_verified_at=now,
        given_name="Pat",
        family_name=f"Visit{tag}",
        patient_id=patient_id,
        language=language,
    )
    assert created is not None
    return created


async def open_day(app: Litestar, clock, *, after_days: int = 2) -> tuple[str, list[str]]:
    """A day at least ``after_days`` ahead with open follow-up times at the main campus, and its slot ids."""
    today = clock.now.astimezone(ZoneInfo(app.state["settings"].hospital.time_zone)).date()
    for offset in range(after_days, after_days + 21):
        day = today + timedelta(days=offset)
        slots = await host(app).ehr.find_slots(SlotQuery(FOLLOW_UP, day, MAIN))
        if len(slots) >= 4:
            return day.isoformat(), [slot.id for slot in slots]
    raise AssertionError("no day with open follow-up times in three weeks")


async def confirm_form(client: httpx.AsyncClient, day: str, slot: str, **extra: str) -> dict[str, str]:
    page = await client.get(
        "/appointments/confirm", params={"visit_type": FOLLOW_UP, "location": MAIN, "day": day, "slot": slot, **extra}
    )
    assert page.status_code == 200, page.text
    return {
        "_csrf_token": CSRF_INPUT.search(page.text).group(1),
        "booking_token": TOKEN_INPUT.search(page.text).group(1),
        "visit_type": FOLLOW_UP,
        "location": MAIN,
        "day": day,
        "slot": slot,
        **extra,
    }


async def book_through_portal(client: httpx.AsyncClient, day: str, slot: str, **extra: str) -> str:
    response = await client.post("/appointments/confirm", data=await confirm_form(client, day, slot, **extra))
    assert response.status_code == 303, response.text
    match = re.match(r"/appointments/(ap-\d+)\?done=", response.headers["location"])
    assert match, response.headers["location"]
    return match.group(1)


async def in_ehr(app: Litestar, patient_id: str, appointment_id: str) -> Appointment:
    return next(item for item in await host(app).ehr.list_appointments(patient_id) if item.id == appointment_id)


async def audited(action: str, subject: str | None) -> list[dict[str, Any]]:
    return await AuditEvent.select().where((AuditEvent.action == action) & (AuditEvent.subject == subject)).run()


# --- The list and booking ------------------------------------------------------------------------


async def test_a_patient_books_step_by_step_and_a_double_submit_books_once(portal, clock, browser, recorder):
    patient_id = format_id("pt", 41)
    async with browser(portal) as client:
        await signed_in(portal, client, patient_id)
        listed = await client.get("/appointments")
        assert listed.status_code == 200
        assert "<h1>Appointments</h1>" in listed.text
        assert "Book an appointment" in listed.text

        kinds = await client.get("/appointments/book")
        assert "What kind of visit do you need?" in kinds.text
        assert "Book by phone: (312) 555-0142" in kinds.text  # an MRI is booked by phone
        by_phone = await client.get("/appointments/book", params={"visit_type": "vt-mri"})
        assert "cannot be booked online" in by_phone.text
        assert 'href="tel:3125550142"' in by_phone.text

        places = await client.get("/appointments/book", params={"visit_type": FOLLOW_UP})
        assert 'value="location:loc-main"' in places.text

        day, _ = await open_day(portal, clock)
        picker = await client.get(
            "/appointments/slots", params={"visit_type": FOLLOW_UP, "where": f"location:{MAIN}", "day": day}
        )
        assert picker.status_code == 200
        assert "<html" in picker.text
        offered = SLOT_INPUT.findall(picker.text)
        assert offered
        # htmx asks for one day at a time: the partial only.
        next_day = await client.get(
            "/appointments/slots",
            params={"visit_type": FOLLOW_UP, "location": MAIN, "day": day},
            headers={"HX-Request": "true"},
        )
        assert next_day.status_code == 200
        assert "<html" not in next_day.text
        assert next_day.text.lstrip().startswith('<section class="slot-picker"')

        form = await confirm_form(client, day, offered[0])
        confirm = await client.get(
            "/appointments/confirm", params={"visit_type": FOLLOW_UP, "location": MAIN, "day": day, "slot": offered[0]}
        )
        assert "Estimate only" in confirm.text
        assert "$155.00" in confirm.text  # the sandbox's usual charge for a follow-up visit
        assert "Bring a list of the medicines you take." in confirm.text

        first, second = await asyncio.gather(
            client.post("/appointments/confirm", data=form), client.post("/appointments/confirm", data=form)
        )
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    appointment_id = first.headers["location"].split("/")[2].split("?")[0]
    mine = [item for item in await host(portal).ehr.list_appointments(patient_id) if item.slot_id == offered[0]]
    assert [item.id for item in mine] == [appointment_id]
    assert len(await Booking.select().where(Booking.appointment_id == appointment_id).run()) == 1
    assert len(await audited("appointment.book", appointment_id)) == 2  # one row per request
    assert [event.appointment.id for event in recorder.booked] == [appointment_id]

    async with browser(portal) as client:
        await signed_in(portal, client, patient_id)
        page = await client.get(f"/appointments/{appointment_id}", params={"done": "booked"})
        assert "Your appointment is booked." in page.text
        assert "Add to my calendar" in page.text
        assert (await client.get("/appointments")).text.count(f'/appointments/{appointment_id}"') == 1
    assert await audited("appointment.read", appointment_id)


async def test_a_slot_taken_meanwhile_says_so_and_offers_the_nearest(portal, clock, browser):
    day, slots = await open_day(portal, clock, after_days=3)
    taken = slots[1]
    async with browser(portal) as client:
        await signed_in(portal, client, format_id("pt", 42))
        form = await confirm_form(client, day, taken)
        await host(portal).ehr.book(format_id("pt", 43), taken, f"elsewhere-{secrets.token_hex(4)}")
        refused = await client.post("/appointments/confirm", data=form)
    assert refused.status_code == 409
    assert "That time was just taken" in refused.text
    nearest = re.findall(r"slot=([\w.-]+)", refused.text)
    assert nearest
    assert taken not in nearest
    assert (await Booking.select(Booking.state).where(Booking.slot_id == taken).run()) == [{"state": "refused"}]


async def test_twenty_concurrent_bookings_of_one_slot_give_one_success(portal, clock, browser):
    day, slots = await open_day(portal, clock, after_days=4)
    slot = slots[2]
    async with AsyncExitStack() as stack:
        clients = []
        forms = []
        for index in range(20):
            client = await stack.enter_async_context(browser(portal))
            await signed_in(portal, client, format_id("pt", 10 + index))
            clients.append(client)
            forms.append(await confirm_form(client, day, slot))
        answers = await asyncio.gather(
            *(client.post("/appointments/confirm", data=form) for client, form in zip(clients, forms, strict=True))
        )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [303] + [409] * 19
    assert sum("That time was just taken" in answer.text for answer in answers) == 19
    assert await Booking.count().where((Booking.slot_id == slot) & (Booking.state == "booked")).run() == 1


# --- Cut-off, cancelling, moving --------------------------------------------------------------------


async def test_inside_the_cut_off_cancelling_and_moving_are_refused_with_the_number_to_call(portal, clock, browser):
    patient_id = format_id("pt", 44)
    day, slots = await open_day(portal, clock, after_days=3)
    async with browser(portal) as client:
        await signed_in(portal, client, patient_id)
        appointment_id = await book_through_portal(client, day, slots[0])
        booked = await in_ehr(portal, patient_id, appointment_id)
        clock.now = booked.starts_at - timedelta(hours=23)
        await signed_in(portal, client, patient_id)
        page = await client.get(f"/appointments/{appointment_id}")
        assert "can no longer be moved or cancelled online" in page.text
        assert MAIN_PHONE in page.text
        for answer in (
            await client.get(f"/appointments/{appointment_id}/cancel"),
            await client.post(
                f"/appointments/{appointment_id}/cancel",
                data={"_csrf_token": CSRF_INPUT.search(page.text).group(1)},
            ),
            await client.get(f"/appointments/{appointment_id}/reschedule"),
        ):
            assert answer.status_code == 409
            assert "Please call to change this appointment" in answer.text
            assert 'href="tel:3125550100"' in answer.text
    assert (await in_ehr(portal, patient_id, appointment_id)).status is AppointmentStatus.BOOKED
    assert not await Cancellation.exists().where(Cancellation.appointment_id == appointment_id).run()
    refusals = await audited("appointment.cancel", appointment_id)
    assert [row["outcome"] for row in refusals] == ["refused"]


async def test_cancelling_frees_the_time_and_tells_plugins(portal, clock, browser, recorder):
    patient_id = format_id("pt", 45)
    day, slots = await open_day(portal, clock, after_days=3)
    async with browser(portal) as client:
        await signed_in(portal, client, patient_id)
        appointment_id = await book_through_portal(client, day, slots[0])
        form = await client.get(f"/appointments/{appointment_id}/cancel")
        assert "Cancel your appointment?" in form.text
        done = await client.post(
            f"/appointments/{appointment_id}/cancel", data={"_csrf_token": CSRF_INPUT.search(form.text).group(1)}
        )
        assert done.status_code == 303
        assert done.headers["location"] == f"/appointments/{appointment_id}?done=cancelled"
        page = await client.get(done.headers["location"])
        assert "Your appointment is cancelled." in page.text
        assert "Cancelled" in page.text
    assert (await in_ehr(portal, patient_id, appointment_id)).status is AppointmentStatus.CANCELLED
    assert slots[0] in {
        slot.id
        for slot in await host(portal).ehr.find_slots(SlotQuery(FOLLOW_UP, datetime.fromisoformat(day).date(), MAIN))
    }
    assert [event.appointment.id for event in recorder.cancelled] == [appointment_id]
    assert [row["outcome"] for row in await audited("appointment.cancel", appointment_id)] == ["ok"]
    assert await state_of(f"cancel:{appointment_id}") == "pending"  # delivered at once; the relay only closes it
    await jobs.run_once(host(portal), portal.state["settings"])
    assert await state_of(f"cancel:{appointment_id}") == "delivered"
    assert len(recorder.cancelled) == 1


async def test_a_reschedule_keeps_the_old_time_until_the_new_one_is_confirmed(
    portal, clock, browser, recorder, monkeypatch
):
    patient_id = format_id("pt", 46)
    day, slots = await open_day(portal, clock, after_days=5)
    async with browser(portal) as client:
        await signed_in(portal, client, patient_id)
        old_id = await book_through_portal(client, day, slots[0])
        start = await client.get(f"/appointments/{old_id}/reschedule")
        assert start.status_code == 303
        assert f"replaces={old_id}" in start.headers["location"]
        moving = await client.get(start.headers["location"])
        assert "It stays booked until the new time is confirmed" in moving.text

        # The new time is taken meanwhile: nothing changes, the old appointment stays booked.
        form = await confirm_form(client, day, slots[1], replaces=old_id)
        await host(portal).ehr.book(format_id("pt", 47), slots[1], f"elsewhere-{secrets.token_hex(4)}")
        refused = await client.post("/appointments/confirm", data=form)
        assert refused.status_code == 409
        assert (await in_ehr(portal, patient_id, old_id)).status is AppointmentStatus.BOOKED
        assert not await Cancellation.exists().where(Cancellation.appointment_id == old_id).run()

        # The new time is booked but the EHR does not answer the cancellation: both stand for now.
        adapter = host(portal).adapters[Port.EHR]._adapter
        working_cancel = adapter.cancel

        async def not_answering(*args: Any, **kwargs: Any) -> Appointment:
            raise Unavailable("test: the EHR is not answering")

        monkeypatch.setattr(adapter, "cancel", not_answering)
        moved = await client.post(
            "/appointments/confirm", data=await confirm_form(client, day, slots[2], replaces=old_id)
        )
        assert moved.status_code == 303
        assert moved.headers["location"].endswith("?done=rescheduled-pending")
        new_id = moved.headers["location"].split("/")[2].split("?")[0]
        assert (await in_ehr(portal, patient_id, new_id)).status is AppointmentStatus.BOOKED
        assert (await in_ehr(portal, patient_id, old_id)).status is AppointmentStatus.BOOKED
        assert await state_of(f"cancel:{old_id}") == "pending"
        assert [event.previous_appointment_id for event in recorder.booked if event.appointment.id == new_id] == [
            old_id
        ]

    # The relay delivers it once the EHR answers again.
    monkeypatch.setattr(adapter, "cancel", working_cancel)
    clock.now += timedelta(minutes=5)
    await jobs.run_once(host(portal), portal.state["settings"])
    assert await state_of(f"cancel:{old_id}") == "delivered"
    assert (await in_ehr(portal, patient_id, old_id)).status is AppointmentStatus.CANCELLED
    assert (await in_ehr(portal, patient_id, new_id)).status is AppointmentStatus.BOOKED
    assert [event.appointment.id for event in recorder.cancelled] == [old_id]
    assert (
        await OutboxMessage.select(OutboxMessage.attempts)
        .where(OutboxMessage.idempotency_key == f"cancel:{old_id}")
        .first()
        .run()
    )["attempts"] == 1


# --- The calendar file ------------------------------------------------------------------------------


async def test_the_calendar_file_is_rfc_5545_in_utc_and_not_cached(portal, clock, browser):
    patient_id = format_id("pt", 48)
    day, slots = await open_day(portal, clock, after_days=2)
    async with browser(portal) as client:
        await signed_in(portal, client, patient_id)
        appointment_id = await book_through_portal(client, day, slots[0])
        answer = await client.get(f"/appointments/{appointment_id}/calendar.ics")
    appointment = await in_ehr(portal, patient_id, appointment_id)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/calendar")
    assert answer.headers["cache-control"] == "no-store"
    assert answer.headers["content-disposition"] == 'attachment; filename="appointment.ics"'
    text = answer.content.decode()
    assert text.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert text.endswith("END:VCALENDAR\r\n")
    assert "\n" not in text.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    unfolded = text.replace("\r\n ", "")
    assert f"UID:appointment-{appointment_id}@testserver\r\n" in unfolded
    assert f"DTSTART:{appointment.starts_at.astimezone(UTC):%Y%m%dT%H%M%SZ}\r\n" in unfolded
    assert f"DTEND:{appointment.ends_at.astimezone(UTC):%Y%m%dT%H%M%SZ}\r\n" in unfolded
    assert f"DTSTAMP:{clock.now.astimezone(UTC):%Y%m%dT%H%M%SZ}\r\n" in unfolded
    assert "SUMMARY:Follow-up visit at Riverside Community Hospital\r\n" in unfolded
    place = next(place for place in (await host(portal).ehr.read_scheduling_catalog()).locations if place.id == MAIN)
    assert "LOCATION:" + f"{place.name}, {place.address}".replace(",", "\\,") + "\r\n" in unfolded
    assert "STATUS:CONFIRMED" in unfolded


# --- Reminders -------------------------------------------------------------------------------------


async def test_each_reminder_is_sent_once_in_the_patients_language_when_the_clock_passes(portal, clock, browser):
    patient_id = format_id("pt", 49)
    account = await patient_account(patient_id, clock.now, language="es")
    day, slots = await open_day(portal, clock, after_days=3)
    async with browser(portal) as client:
        await signed_in(portal, client, patient_id, account_id=str(account["public_id"]))
        appointment_id = await book_through_portal(client, day, slots[0])
    starts = (await in_ehr(portal, patient_id, appointment_id)).starts_at
    settings = portal.state["settings"]

    async def reminders_to_patient() -> list[Any]:
        return [message for message in await outbox() or [] if message.to == account["email"]]

    clock.now = starts - timedelta(hours=25)
    await jobs.run_once(host(portal), settings)
    assert await reminders_to_patient() == []

    clock.now = starts - timedelta(hours=23, minutes=59)
    await asyncio.gather(jobs.run_once(host(portal), settings), jobs.run_once(host(portal), settings))
    await jobs.run_once(host(portal), settings)
    sent = await reminders_to_patient()
    assert len(sent) == 1
    assert "Tiene una cita" in sent[0].text
    assert "Main Campus" in sent[0].text

    clock.now = starts - timedelta(hours=1, minutes=30)
    await jobs.run_once(host(portal), settings)
    await jobs.run_once(host(portal), settings)
    assert len(await reminders_to_patient()) == 2
    rows = (
        await Reminder.select(Reminder.hours_before, Reminder.state)
        .where(Reminder.appointment_id == appointment_id)
        .run()
    )
    assert sorted((row["hours_before"], row["state"]) for row in rows) == [(2, "sent"), (24, "sent")]


async def test_no_reminder_for_an_appointment_cancelled_by_phone(portal, clock, browser):
    patient_id = format_id("pt", 50)
    account = await patient_account(patient_id, clock.now)
    day, slots = await open_day(portal, clock, after_days=3)
    async with browser(portal) as client:
        await signed_in(portal, client, patient_id, account_id=str(account["public_id"]))
        appointment_id = await book_through_portal(client, day, slots[0])
    starts = (await in_ehr(portal, patient_id, appointment_id)).starts_at
    await host(portal).ehr.cancel(appointment_id, "Called the front desk", f"phone-{secrets.token_hex(4)}")
    clock.now = starts - timedelta(hours=2)
    await jobs.run_once(host(portal), portal.state["settings"])
    assert [message for message in await outbox() or [] if message.to == account["email"]] == []
    rows = await Reminder.select(Reminder.state).where(Reminder.appointment_id == appointment_id).run()
    assert {row["state"] for row in rows} == {"skipped"}


# --- Who may see appointments, Spanish, the EHR down ---------------------------------------------


async def test_a_billing_delegate_sees_no_appointments(portal, clock, browser):
    async with browser(portal) as client:
        await signed_in(portal, client, format_id("pt", 1), access="billing")
        assert (await client.get("/appointments")).status_code == 403
        assert (await client.get("/appointments/book")).status_code == 403
        assert (await client.get(f"/appointments/{format_id('ap', 1)}")).status_code == 404


async def test_the_pages_speak_spanish(portal, clock, browser):
    async with browser(portal) as client:
        await signed_in(portal, client, format_id("pt", 51))
        client.cookies.set("lang", "es", domain="testserver.local")
        listed = await client.get("/appointments")
        assert "<h1>Citas</h1>" in listed.text
        assert "Pedir una cita" in listed.text
        kinds = await client.get("/appointments/book")
        assert "¿Qué tipo de consulta necesita?" in kinds.text


async def test_with_the_ehr_down_the_list_renders_from_its_copy_with_a_notice(portal, clock, browser, monkeypatch):
    patient_id = format_id("pt", 52)
    async with browser(portal) as client:
        await signed_in(portal, client, patient_id)
        assert (await client.get("/appointments")).status_code == 200
        adapter = host(portal).adapters[Port.EHR]._adapter

        async def down(*args: Any, **kwargs: Any) -> Any:
            raise Unavailable("test: the EHR is down")

        monkeypatch.setattr(adapter, "list_appointments", down)
        clock.now += timedelta(minutes=5)
        await signed_in(portal, client, patient_id)
        page = await client.get("/appointments")
        assert page.status_code == 200
        assert "Showing what we had on" in page.text
        monkeypatch.setattr(adapter, "read_scheduling_catalog", down)
        never_read = await client.get("/appointments")
        assert never_read.status_code == 200
        await signed_in(portal, client, format_id("pt", 53))
        assert (await client.get("/appointments")).status_code == 503


async def test_the_home_page_shows_the_next_appointment(portal, clock, browser):
    patient_id = format_id("pt", 54)
    account = await patient_account(patient_id, clock.now)
    day, slots = await open_day(portal, clock, after_days=2)
    async with browser(portal) as client:
        await signed_in(portal, client, patient_id, account_id=str(account["public_id"]))
        appointment_id = await book_through_portal(client, day, slots[0])
        home = await client.get("/home")
        assert home.status_code == 200
        assert "Your next appointment" in home.text
        assert f'href="/appointments/{appointment_id}"' in home.text
    assert json.loads((await audited("appointment.read", appointment_id))[-1]["detail"]) == {"view": "home"}
