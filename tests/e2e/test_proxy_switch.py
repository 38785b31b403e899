"""On a phone (and a desktop): the sandbox's parent persona adds her child, whom the hospital's records
list her as guardian of, then switches between her own account and her child's and back; she invites
a billing delegate, who opens the email's link and makes an account; and a bill is opened without an
account from its statement code."""

from __future__ import annotations

import html
import re
import secrets
import subprocess
import sys
from collections.abc import Callable

import httpx
from carefront_sandbox.ehr import make_ehr
from carefront_sandbox.hooks import carefront_demo_personas
from carefront_sdk.models import Patient, ProxyAccess
from carefront_sdk.testing import make_adapter_context
from playwright.async_api import Page, expect

from portal.settings import Settings

PASSWORD = "violet harbour under seven moons"
INVITATION_CODE = re.compile(r"#([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})\b")
# Run in a process of its own: this test process's database connection (if any) is another database's.
# The phone and desktop runs share the server, so the second finds the account the first made.
PARENT_ACCOUNT = """
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


async def parent_and_child(server: Settings) -> tuple[Patient, Patient]:
    """The guarantor persona's child and the parent the child's related persons name as guardian."""
    ehr = make_ehr(make_adapter_context(server.data_dir, name="sandbox", time_zone=server.hospital.time_zone))
    guarantor = next(persona for persona in carefront_demo_personas() if persona.role == "guarantor")
    assert guarantor.patient_id is not None
    child = await ehr.read_patient(guarantor.patient_id)
    related = await ehr.list_related_persons(child.id)
    parent_id = next(person.patient_id_of_proxy for person in related if person.access is ProxyAccess.GUARDIAN)
    assert parent_id is not None
    return await ehr.read_patient(parent_id), child


def parent_account(server: Settings, portal_environ: Callable[..., dict[str, str]], parent: Patient) -> str:
    """The parent's patient account with a password, in the server's database; its email address."""
    environ = portal_environ(server.database_url, server.data_dir, server.public_url)
    email = f"{parent.given_name}.{parent.family_name}.e2e@example.org".lower()
    done = subprocess.run(
        [sys.executable, "-c", PARENT_ACCOUNT, parent.id, email, parent.given_name, parent.family_name, PASSWORD],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def sign_in(page: Page, visit, email: str, given_name: str) -> None:
    await visit("/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {given_name}")


def invitation_code(server: Settings, address: str) -> str:
    """The code in the newest invitation to ``address``, from the link in the sandbox outbox."""
    page = httpx.get(f"{server.public_url}/-/sandbox/outbox", timeout=5).text
    for article in page.split("<article>")[1:]:
        if f"<dd>{html.escape(address)}</dd>" in article and (match := INVITATION_CODE.search(article)):
            return match.group(1)
    raise AssertionError(f"no invitation to {address} in the sandbox outbox")


async def test_a_parent_switches_between_herself_and_her_child(
    page: Page, visit, check_page, server: Settings, portal_environ
) -> None:
    parent, child = await parent_and_child(server)
    email = parent_account(server, portal_environ, parent)
    await sign_in(page, visit, email, parent.given_name)

    await visit("/account/proxies")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sharing your account")
    await page.get_by_role("link", name="Add a child you are the guardian of").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Add a child you are the guardian of")
    await check_page()

    # A wrong number gets the one answer that tells nothing, with the billing office's phone.
    await page.get_by_label("Child's legal first name").fill(child.given_name)
    await page.get_by_label("Child's legal last name").fill(child.family_name)
    await page.get_by_label("Month").fill(str(child.birth_date.month))
    await page.get_by_label("Day").fill(str(child.birth_date.day))
    await page.get_by_label("Year").fill(str(child.birth_date.year))
    await page.get_by_label("Medical record number (MRN)").check()
    await page.get_by_label("The number or code").fill("99999999")
    await page.get_by_role("button", name="Add child").click()
    await expect(
        page.get_by_role("alert").filter(has_text="We could not add a child with those details")
    ).to_be_visible()
    await check_page()

    await page.get_by_label("The number or code").fill(child.mrn)
    await page.get_by_role("button", name="Add child").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Whose account do you want to see?")
    await check_page()
    mine = page.locator(".card").filter(has_text=f"{parent.given_name} {parent.family_name}")
    theirs = page.locator(".card").filter(has_text=f"{child.given_name} {child.family_name}")
    await expect(mine.get_by_text("Viewing now")).to_be_visible()
    await expect(theirs.get_by_text("You are their parent or guardian")).to_be_visible()

    await theirs.get_by_role("button", name=f"View {child.given_name}'s account").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {parent.given_name}")
    await check_page()
    await visit("/switch")
    await expect(theirs.get_by_text("Viewing now")).to_be_visible()
    await expect(mine.get_by_role("button", name=f"View {parent.given_name}'s account")).to_be_visible()

    await mine.get_by_role("button", name=f"View {parent.given_name}'s account").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Welcome, {parent.given_name}")
    await visit("/switch")
    await expect(mine.get_by_text("Viewing now")).to_be_visible()
    await expect(theirs.get_by_role("button", name=f"View {child.given_name}'s account")).to_be_visible()


async def test_a_billing_delegate_accepts_an_invitation_from_its_link(
    page: Page, visit, check_page, server: Settings, portal_environ, viewport: str
) -> None:
    parent, _ = await parent_and_child(server)
    await sign_in(page, visit, parent_account(server, portal_environ, parent), parent.given_name)
    helper = f"helper-{viewport}-{secrets.token_hex(4)}@example.org"

    await visit("/account/proxies/invite")
    await page.get_by_label("Their email address").fill(helper)
    await page.get_by_label("Billing only").check()
    await page.get_by_role("button", name="Send the invitation").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sharing your account")
    await expect(page.get_by_role("heading", name=helper)).to_be_visible()
    await check_page()
    await page.get_by_role("button", name="Sign out").click()

    # The link carries the code after "#": the page fills it in, and the address bar drops it.
    code = invitation_code(server, helper)
    await visit(f"/proxies/accept#{code}")
    await expect(page.get_by_label("Invitation code")).to_have_value(code)
    assert "#" not in page.url
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(
        f"{parent.given_name} {parent.family_name} invited you"
    )
    await check_page()
    await page.get_by_label("Your first name").fill("Sam")
    await page.get_by_label("Your last name").fill("Helper")
    await page.get_by_label("New password").fill(PASSWORD)
    await page.get_by_role("button", name="Create my account and accept").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Welcome, Sam")

    await visit("/switch")
    only = page.locator(".card").filter(has_text=f"{parent.given_name} {parent.family_name}")
    await expect(only.get_by_text("You help with their bills only")).to_be_visible()
    await expect(only.get_by_text("Viewing now")).to_be_visible()

    # The server's log (uvicorn's access log included) saw the page, never the code.
    log = (server.data_dir.parent / "server.log").read_text()
    assert "/proxies/accept" in log
    assert code not in log
    assert code.replace("-", "") not in log


async def test_a_bill_opened_without_an_account(page: Page, visit, check_page) -> None:
    persona = next(persona for persona in carefront_demo_personas() if persona.role == "patient")
    assert persona.statement_code is not None
    assert persona.birth_date is not None

    await visit("/pay-as-guest")
    await page.get_by_label("Statement code").fill(persona.statement_code)
    await page.get_by_label("Month").fill(str(persona.birth_date.month))
    await page.get_by_label("Day").fill(str(persona.birth_date.day))
    await page.get_by_label("Year").fill(str(persona.birth_date.year - 1))
    await page.get_by_role("button", name="Find my bill").click()
    await expect(page.get_by_role("alert").filter(has_text="We could not find that bill")).to_be_visible()
    await check_page()

    await page.get_by_label("Year").fill(str(persona.birth_date.year))
    await page.get_by_role("button", name="Find my bill").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your bill")
    await expect(page.get_by_text(persona.statement_code)).to_be_visible()
    await check_page()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("patient portal")
