"""On a phone (and a desktop): a patient books a follow-up visit step by step with the day-by-day slot
picker, adds it to their calendar (a download), moves it to another time and cancels it; and an
appointment less than a day away cannot be cancelled online: the page gives the number to call."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from carefront_sandbox.ehr import make_ehr
from carefront_sandbox.identifiers import format_id
from carefront_sdk.models import Patient, SlotQuery
from carefront_sdk.testing import make_adapter_context
from playwright.async_api import Page, expect

from portal.settings import Settings

PASSWORD = "seven quiet lanterns over the bay"
# A process of its own: this test process has no connection to the server's database.
ACCOUNT = """
import asyncio, sys, uuid
from datetime import UTC, datetime
from portal import database
from portal.identity import accounts
from portal.identity.passwords import hash_password
from portal.settings import Settings

async def main(patient_id, email, given_name, family_name, password):
    engine = await database.connect(Settings.load())
    try:
        now = datetime.now(UTC)
        found = await accounts.find_by_patient(patient_id)
        if found is None:
            found = await accounts.create(
                now, public_id=uuid.uuid4(), realm="patient", email=email, email_verified_at=now,
                password_hash=hash_password(password), given_name=given_name, family_name=family_name,
                patient_id=patient_id,
            )
        print(found["email"])
    finally:
        await database.disconnect(engine)

asyncio.run(main(*sys.argv[1:]))
"""
# Each viewport books for a patient of its own: the phone and desktop runs share the server.
PATIENTS = {"phone": 55, "desktop": 56}


def sandbox_ehr(server: Settings):
    context = make_adapter_context(
        server.data_dir, name="sandbox", time_zone=server.hospital.time_zone, clock=lambda: datetime.now(UTC)
    )
    return make_ehr(context)


async def patient_with_account(
    server: Settings, portal_environ: Callable[..., dict[str, str]], number: int
) -> tuple[Patient, str]:
    """A sandbox patient and their account with a password, in the server's database (made once)."""
    patient = await sandbox_ehr(server).read_patient(format_id("pt", number))
    return patient, account_of(server, portal_environ, patient, f"appointments-{number}.e2e@example.org")


def account_of(server: Settings, portal_environ: Callable[..., dict[str, str]], patient: Patient, email: str) -> str:
    environ = portal_environ(server.database_url, server.data_dir, server.public_url)
    done = subprocess.run(
        [sys.executable, "-c", ACCOUNT, patient.id, email, patient.given_name, patient.family_name, PASSWORD],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def sign_in(page: Page, visit, email: str) -> None:
    await visit("/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page).not_to_have_url("/sign-in")


async def choose_a_time(page: Page, check_page) -> None:
    """On the slot picker: the next day (loaded in place), then its first open time."""
    await expect(page.get_by_role("heading", level=1)).to_have_text("Choose a time")
    await check_page()
    first_day = await page.locator(".slot-day").text_content()
    await page.get_by_role("link", name="Next day").click()
    await expect(page.locator(".slot-day")).not_to_have_text(first_day or "")
    while not await page.locator(".slot").count():
        await page.get_by_role("link", name="Next day").click()
        await page.wait_for_load_state("networkidle")
    await check_page()
    await page.locator(".slot input").first.check()
    await page.get_by_role("button", name="Continue").click()


async def test_book_add_to_calendar_move_and_cancel(
    page: Page, visit, check_page, server: Settings, portal_environ, viewport: str
) -> None:
    _, email = await patient_with_account(server, portal_environ, PATIENTS[viewport])
    await sign_in(page, visit, email)

    await visit("/appointments")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Appointments")
    await page.get_by_role("link", name="Book an appointment").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Book an appointment")
    await check_page()
    await page.get_by_label("Follow-up visit").check()
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Follow-up visit")
    await check_page()
    await page.get_by_label("Main Campus").check()
    await page.get_by_role("button", name="See open times").click()
    await choose_a_time(page, check_page)

    await expect(page.get_by_role("heading", level=1)).to_have_text("Check and book")
    await expect(page.get_by_text("Estimate only")).to_be_visible()
    await check_page()
    await page.get_by_role("button", name="Book this appointment").click()
    await expect(page.get_by_text("Your appointment is booked.")).to_be_visible()
    await check_page()

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Add to my calendar").click()
    download = await download_info.value
    assert download.suggested_filename == "appointment.ics"
    calendar_file = await download.path()
    assert calendar_file is not None
    content = calendar_file.read_text()
    assert content.startswith("BEGIN:VCALENDAR")
    assert "DTSTART:" in content

    await page.get_by_role("link", name="Move to another time").click()
    await expect(page.get_by_text("It stays booked until the new time is confirmed")).to_be_visible()
    await choose_a_time(page, check_page)
    await page.get_by_role("button", name="Move my appointment to this time").click()
    await expect(page.get_by_text("Your appointment has been moved.")).to_be_visible()
    await check_page()

    await page.get_by_role("link", name="Cancel this appointment").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your appointment?")
    await check_page()
    await page.get_by_role("button", name="Yes, cancel it").click()
    await expect(page.get_by_text("Your appointment is cancelled.")).to_be_visible()
    await check_page()


async def test_a_cancellation_inside_the_cut_off_is_refused_with_the_number_to_call(
    page: Page, visit, check_page, server: Settings, portal_environ, viewport: str
) -> None:
    patient, email = await patient_with_account(server, portal_environ, PATIENTS[viewport] + 2)
    ehr = sandbox_ehr(server)
    now = datetime.now(UTC)
    zone = ZoneInfo(server.hospital.time_zone)
    soon = None
    catalog = await ehr.read_scheduling_catalog()
    for offset in (0, 1):
        day = (now.astimezone(zone) + timedelta(days=offset)).date()
        for kind in (kind for kind in catalog.visit_types if kind.bookable_online):
            found = [
                slot
                for slot in await ehr.find_slots(SlotQuery(kind.id, day))
                if slot.starts_at < now + timedelta(hours=20)
            ]
            if found:
                soon = found[0]
                break
        if soon:
            break
    if soon is None:
        pytest.skip("the sandbox hospital has no open time in the next 20 hours (a weekend)")
    appointment = await ehr.book(patient.id, soon.id, f"e2e-cut-off-{viewport}-{soon.id}")
    location = next(place for place in catalog.locations if place.id == appointment.location_id)

    await sign_in(page, visit, email)
    await visit(f"/appointments/{appointment.id}")
    await expect(page.get_by_text("can no longer be moved or cancelled online")).to_be_visible()
    await expect(page.get_by_role("link", name=f"Call {location.phone}")).to_be_visible()
    response = await page.goto(f"/appointments/{appointment.id}/cancel")
    assert response is not None
    assert response.status == 409
    await expect(page.get_by_role("heading", level=1)).to_have_text("Please call to change this appointment")
    await expect(page.get_by_text("cannot be cancelled online")).to_be_visible()
    await expect(page.get_by_role("link", name=f"Call {location.phone}")).to_be_visible()
    await check_page()
