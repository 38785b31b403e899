"""On a phone (and a desktop): a representative finds a caller, acts as them with a reason, sees the
banner on every page, is refused a credential change, ends acting and sends a pay link; the patient
sees who accessed the account, and asks a question about a charge."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from carefront_sandbox.ehr import make_ehr
from carefront_sdk.models import Patient
from carefront_sdk.testing import make_adapter_context
from playwright.async_api import Page, expect

from portal.settings import Settings
from tests.e2e.conftest import sign_in_as_staff

PASSWORD = "copper lantern over the bay"
# Run in a process of its own, against the server's database: the patient's portal account (the
# representative signs in through the sandbox's workforce provider). The phone and desktop runs share
# the server: made once, found the second time.
SETUP = """
import asyncio, json, sys, uuid
from datetime import UTC, datetime
from portal import database
from portal.identity import accounts
from portal.identity.passwords import hash_password
from portal.settings import Settings

async def main(patient_id, given_name, family_name, password):
    settings = Settings.load()
    engine = await database.connect(settings)
    try:
        now = datetime.now(UTC)
        patient = await accounts.find_by_patient(patient_id)
        if patient is None:
            patient = await accounts.create(
                now, public_id=uuid.uuid4(), realm="patient", email=f"{patient_id}.e2e@example.org",
                email_verified_at=now, password_hash=hash_password(password), given_name=given_name,
                family_name=family_name, patient_id=patient_id,
            )
        print(json.dumps({"email": patient["email"]}))
    finally:
        await database.disconnect(engine)

asyncio.run(main(*sys.argv[1:]))
"""


async def a_patient_who_owes(server: Settings) -> tuple[Patient, str, str]:
    """A sandbox patient (no demo persona, whom other tests use) with a balance; a statement and a line of it."""
    ehr = make_ehr(make_adapter_context(server.data_dir, name="sandbox", time_zone=server.hospital.time_zone))
    for number in range(45, 61):
        patient = await ehr.read_patient(f"pt-{number}")
        for summary in await ehr.list_statements(patient.id):
            statement = await ehr.read_statement(summary.id)
            if summary.balance.amount > 0 and statement.lines:
                return patient, summary.id, statement.lines[0].id
    raise AssertionError("no sandbox patient with a balance among pt-45..pt-60")


def set_up(server: Settings, portal_environ: Callable[..., dict[str, str]], patient: Patient) -> dict[str, str]:
    environ = portal_environ(server.database_url, server.data_dir, server.public_url)
    done = subprocess.run(
        [sys.executable, "-c", SETUP, patient.id, patient.given_name, patient.family_name, PASSWORD],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_a_representative_acts_as_a_caller_and_the_patient_sees_it(
    page: Page, visit, check_page, server: Settings, portal_environ
) -> None:
    patient, statement_id, line_id = await a_patient_who_owes(server)
    made = set_up(server, portal_environ, patient)
    await sign_in_as_staff(page, "Fatima Robinson")

    # Find the caller by MRN: the result shows the MRN, nothing more, until the record is opened.
    await visit("/staff")
    await page.get_by_role("link", name="Find a patient").first.click()
    await page.get_by_label("What the caller tells you").fill(patient.mrn)
    await page.get_by_role("button", name="Search").click()
    results = page.locator(".result-list")
    await expect(results).to_contain_text(patient.mrn)
    await expect(results).not_to_contain_text(patient.family_name)
    await check_page()
    await page.get_by_role("link", name="Open record").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"{patient.given_name} {patient.family_name}")
    await check_page()

    # Acting needs the caller verified and a reason.
    await page.get_by_role("button", name="Act as the patient").click()
    await expect(page.get_by_role("alert")).to_contain_text("Verify the caller")
    await check_page()
    await page.get_by_label("Full name").check()
    await page.get_by_label("Date of birth").check()
    await page.get_by_label("Statement code").check()
    await page.get_by_label("Reason").select_option("caller_billing")
    await page.get_by_role("button", name="Act as the patient").click()
    banner = page.get_by_role("region", name="Acting as a patient")
    await expect(banner).to_contain_text(f"You are acting as {patient.given_name} {patient.family_name}")
    await expect(banner).to_contain_text("minutes left")
    await check_page()
    for path in ("/questions", "/account", "/account/access"):
        await visit(path)
        await expect(banner).to_be_visible()

    # An htmx partial while acting comes compressed, and its status line keeps the banner current.
    await visit("/questions/new")
    await page.get_by_label("Something else").check()
    await page.get_by_role("textbox", name="Your question").fill("Why are there two bills this month?")
    await page.get_by_label("In the portal only: I will check it myself").check()
    await page.get_by_role("button", name="Send your question").click()
    await expect(page.locator(".thread")).to_contain_text("Why are there two bills this month?")
    await page.get_by_label("Write back").fill("The caller adds: one of them is paid.")
    async with page.expect_response(lambda answer: answer.request.method == "POST" and "/reply" in answer.url) as sent:
        await page.get_by_role("button", name="Send", exact=True).click()
    reply = await sent.value
    assert reply.request.headers.get("hx-request") == "true"
    assert (await reply.all_headers()).get("content-encoding") in ("br", "gzip")
    await expect(page.locator(".thread")).to_contain_text("The caller adds: one of them is paid.")
    await expect(banner).to_contain_text(f"You are acting as {patient.given_name} {patient.family_name}")
    await expect(banner).to_contain_text("minutes left")
    await check_page()

    # Credentials are the patient's alone.
    refused = await page.goto("/account/email")
    assert refused is not None
    assert refused.status == 403
    await expect(page.get_by_role("heading", level=1)).to_have_text("Not while acting as the patient")
    await expect(banner).to_be_visible()
    await check_page()

    await banner.get_by_role("button", name="End acting as the patient").click()
    await expect(page.locator(".notice")).to_contain_text("You are no longer acting as the patient.")
    await expect(page.get_by_role("region", name="Acting as a patient")).to_have_count(0)
    await check_page()

    # A pay link instead of a card by phone.
    await page.get_by_label("Email address or mobile number").fill(made["email"])
    await page.get_by_role("button", name="Send the pay link").click()
    await expect(page.locator(".notice")).to_contain_text("The pay link is sent.")
    await check_page()

    # The patient signs in, sees who accessed the account, and asks about a charge.
    await page.context.clear_cookies()
    await visit("/sign-in")
    await page.get_by_label("Email address").fill(made["email"])
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url("**/home")
    await visit("/account/access")
    await expect(page.locator("table")).to_contain_text("Fatima Robinson")
    await expect(page.locator("table")).to_contain_text("The patient called about a bill")

    await visit(f"/questions/new?statement={statement_id}&line={line_id}")
    await page.get_by_label("I don't recognise this charge").check()
    await page.get_by_role("textbox", name="Your question").fill("I was never seen on that day. What is this charge?")
    await page.get_by_role("button", name="Send your question").click()
    await expect(page.locator(".notice")).to_contain_text("Your question is with the billing office")
    await expect(page.locator(".thread")).to_contain_text("I was never seen on that day.")
    await check_page()
