"""On a phone (and a desktop): sign up a sandbox patient from scratch, sign out, and sign in again with a
one-time code; the codes are read from the sandbox outbox at /-/sandbox/outbox, as a demo visitor would."""

from __future__ import annotations

import asyncio
import html
import re
import secrets
import sqlite3
from contextlib import closing
from urllib.parse import urlsplit

import httpx
from carefront_sandbox.ehr import make_ehr
from carefront_sdk.models import Patient
from carefront_sdk.testing import make_adapter_context
from playwright.async_api import Page, expect

from portal.settings import Settings

PASSWORD = "tangerine lighthouse quietly hums"
CODE = re.compile(r"\b(\d{6})\b")


async def patient_without_account(server: Settings, viewport: str) -> Patient:
    """An adult sandbox patient, read through the sandbox EHR adapter, whom no account names yet."""
    database = urlsplit(server.database_url).path
    with closing(sqlite3.connect(database)) as db:
        taken = {row[0] for row in db.execute("SELECT patient_id FROM account WHERE patient_id IS NOT NULL")}
    ehr = make_ehr(make_adapter_context(server.data_dir, name="sandbox", time_zone=server.hospital.time_zone))
    # Phone and desktop start from different ends, so the two runs never pick the same patient.
    keys = range(60, 20, -1) if viewport == "phone" else range(21, 61)
    for key in keys:
        patient = await ehr.read_patient(f"pt-{key}")
        if patient.birth_date.year < 2000 and f"pt-{key}" not in taken:
            return patient
    raise AssertionError("every adult sandbox patient has an account already")


def codes_in_outbox(server: Settings, address: str) -> list[str]:
    """The codes sent to ``address``, newest first, as the outbox page lists them."""
    page = httpx.get(f"{server.public_url}/-/sandbox/outbox", timeout=5).text
    articles = [article for article in page.split("<article>")[1:] if f"<dd>{html.escape(address)}</dd>" in article]
    # The message's text follows its <dl> of channel, address and time (whose microseconds look like a code).
    return [match.group(1) for article in articles if (match := CODE.search(article.split("</dl>", 1)[-1]))]


async def new_code(server: Settings, address: str, known: int) -> str:
    """The newest code once more than ``known`` were sent (a sign-in code is sent after the answer)."""
    for _ in range(50):
        codes = codes_in_outbox(server, address)
        if len(codes) > known:
            return codes[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no new code for {address} in the sandbox outbox")


async def test_sign_up_sign_out_and_sign_in_with_a_code(page: Page, visit, check_page, server: Settings, viewport):
    patient = await patient_without_account(server, viewport)
    email = f"e2e-{viewport}-{secrets.token_hex(4)}@example.org"

    await visit("/")
    await page.get_by_role("link", name="Create your account").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Create your account")
    await check_page()

    # Sending the form empty shows what to fix, beside each field and in a summary.
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("alert").filter(has_text="Please correct the following")).to_be_visible()
    await check_page()

    await page.get_by_label("Legal first name").fill(patient.given_name)
    await page.get_by_label("Legal last name").fill(patient.family_name)
    await page.get_by_label("Month").fill(str(patient.birth_date.month))
    await page.get_by_label("Day").fill(str(patient.birth_date.day))
    await page.get_by_label("Year").fill(str(patient.birth_date.year))
    await page.get_by_label("Medical record number (MRN)").check()
    await page.get_by_label("The number or code").fill(patient.mrn)
    await page.get_by_role("button", name="Continue").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("How can we reach you?")
    await check_page()
    await page.get_by_label("Email address").fill(email)
    await page.get_by_role("button", name="Send the code").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Enter the code we sent")
    await check_page()
    await page.get_by_label(f"Code sent to {email}").fill(await new_code(server, email, known=0))
    await page.get_by_role("button", name="Continue").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Choose a password")
    await check_page()
    await page.get_by_label("New password").fill(PASSWORD)
    await page.get_by_role("button", name="Create my account").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {patient.given_name}")
    await check_page()
    await page.get_by_role("link", name="Your account").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your account")
    await expect(page.get_by_text(email)).to_be_visible()
    await check_page()

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("status").filter(has_text="You are signed out")).to_be_visible()
    await check_page()

    await page.get_by_role("region", name="Sign in").get_by_role("link", name="Sign in").click()
    await check_page()
    await page.get_by_role("link", name="Sign in with a code sent to your email or phone").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign in with a code")
    await check_page()
    known = len(codes_in_outbox(server, email))
    await page.get_by_label("Email address or mobile number").fill(email)
    await page.get_by_role("button", name="Send me a code").click()

    await expect(page.get_by_role("heading", level=1)).to_have_text("Enter your code")
    await check_page()
    await page.get_by_label("Code", exact=True).fill(await new_code(server, email, known))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {patient.given_name}")
    await check_page()
