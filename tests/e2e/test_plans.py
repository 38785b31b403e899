"""On a phone (and a desktop): the demo patient ready for a payment plan opens the plan builder, sees
the schedule preview change as she changes the months and then a monthly amount, agrees, saves the
sandbox's test card on its hosted page, and lands on her plan with automatic payments on
(PROMISES.md 9, 21, 22)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable

from carefront_sandbox.ehr import make_ehr
from carefront_sdk.testing import make_adapter_context
from playwright.async_api import Page, expect

from portal.settings import Settings
from tests.e2e.test_payments import persona
from tests.e2e.test_proxy_switch import PARENT_ACCOUNT as ACCOUNT
from tests.e2e.test_proxy_switch import PASSWORD

SUCCESS_CARD = "4242 4242 4242 4242"


def make_account(environ: dict[str, str], arguments: list[str]) -> str:
    """The patient's portal account (made once, in a process of its own: its database is the server's)."""
    done = subprocess.run(
        [sys.executable, "-c", ACCOUNT, *arguments], env=environ, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def signed_in_as_the_patient_ready_for_a_plan(
    page: Page, visit, server: Settings, portal_environ: Callable[..., dict[str, str]]
) -> None:
    patient = persona("A patient with a large balance")
    assert patient.patient_id is not None
    ehr = make_ehr(make_adapter_context(server.data_dir, name="sandbox", time_zone=server.hospital.time_zone))
    record = await ehr.read_patient(patient.patient_id)
    environ = portal_environ(server.database_url, server.data_dir, server.public_url)
    email = f"{record.given_name}.{record.family_name}.plans@example.org".lower()
    arguments = [record.id, email, record.given_name, record.family_name, PASSWORD]
    address = make_account(environ, arguments)
    await visit("/sign-in")
    await page.get_by_label("Email address").fill(address)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url("**/home")


async def schedule_rows(page: Page) -> int:
    return await page.locator("#plan-preview tbody tr").count()


async def test_set_up_a_plan_with_autopay_on_a_phone(page: Page, visit, check_page, server, portal_environ):
    await signed_in_as_the_patient_ready_for_a_plan(page, visit, server, portal_environ)
    await page.goto("/plans/new")
    if "/plans/new" not in page.url:
        # The other viewport's run left its plan: cancel it, as the patient would.
        await page.get_by_role("link", name="Cancel the plan").click()
        await page.get_by_role("button", name="Yes, cancel the plan").click()
        await page.goto("/plans/new")
    await check_page()

    await page.get_by_label("Number of months", exact=True).fill("3")
    await expect(page.locator("#plan-preview tbody tr")).to_have_count(3)
    await page.get_by_label("At a monthly amount I choose").check()
    await page.get_by_label("Monthly amount", exact=True).fill("400")
    await page.get_by_label("Monthly amount", exact=True).blur()
    await expect(page.locator("#plan-preview")).to_contain_text("$400.00")
    assert await schedule_rows(page) > 1
    await check_page()

    await page.get_by_label("Automatically, from a card I save").check()
    await page.get_by_label("I agree to this payment plan").check()
    await page.get_by_role("button", name="Set up my plan").click()

    await page.wait_for_url("**/-/sandbox/checkout/cs_test_*")
    await check_page()
    await page.get_by_label("Card number").fill(SUCCESS_CARD)
    await page.get_by_label("Expiry date (MM/YY)").fill("12/40")
    await page.get_by_label("Security code").fill("123")
    await page.get_by_role("button", name="Save card").click()

    await page.wait_for_url(re.compile(r"/plans/[0-9a-f-]{36}\?done=method-saved$"))
    await expect(page.get_by_text("Your card is saved")).to_be_visible()
    await expect(page.get_by_text("Paid automatically with Visa ending 4242.")).to_be_visible()
    await check_page()
