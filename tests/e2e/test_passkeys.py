"""A patient adds a passkey and signs in with it; another turns on two-step verification and signs in
with a password and a code. Chromium's virtual authenticator (through CDP) stands in for the phone's
fingerprint reader, so the browser runs the real WebAuthn ceremonies against the real server."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from collections.abc import Callable

import pyotp
from playwright.async_api import Page, expect

from portal.settings import Settings

PASSWORD = "a long walk by the river at dawn"
# Run in a process of its own: this test process's database connection (if any) is another database's.
CREATE_ACCOUNT = """
import asyncio, sys, uuid
from datetime import UTC, datetime
from portal import database
from portal.identity import accounts
from portal.identity.passwords import hash_password
from portal.settings import Settings

async def main(email, password):
    engine = await database.connect(Settings.load())
    try:
        now = datetime.now(UTC)
        await accounts.create(
            # A patient of the hospital (an EHR id of their own), not a proxy who acts only for others.
            now, public_id=uuid.uuid4(), realm="patient", patient_id=f"pt-e2e-{uuid.uuid4().hex[:8]}",
            email=email, email_verified_at=now,
            password_hash=hash_password(password), given_name="Eva", family_name="Reyes",
        )
    finally:
        await database.disconnect(engine)

asyncio.run(main(*sys.argv[1:]))
"""


def create_patient(server: Settings, portal_environ: Callable[..., dict[str, str]]) -> str:
    """A patient account with a password in the server's database; its email address."""
    email = f"eva.reyes.{secrets.token_hex(4)}@example.org"
    environ = portal_environ(server.database_url, server.data_dir, server.public_url)
    done = subprocess.run(
        [sys.executable, "-c", CREATE_ACCOUNT, email, PASSWORD],
        env=environ,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return email


async def add_virtual_authenticator(page: Page) -> None:
    """A platform authenticator that holds discoverable credentials and always verifies the user."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})


async def sign_in_with_password(page: Page, visit, email: str) -> None:
    await visit("/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_role("button", name="Sign out")).to_have_count(0)


async def test_add_a_passkey_then_sign_in_with_it(page: Page, visit, check_page, server, portal_environ) -> None:
    email = create_patient(server, portal_environ)
    await add_virtual_authenticator(page)
    await sign_in_with_password(page, visit, email)
    await page.wait_for_url("**/home")

    await visit("/account/security")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Sign-in and security")
    await expect(page.get_by_text("You have no passkeys yet.")).to_be_visible()
    await expect(page.get_by_text("To add a passkey, open this page")).to_be_hidden()
    await page.get_by_label("Name for this passkey").fill("My laptop")
    await page.get_by_role("button", name="Add a passkey").click()
    await page.wait_for_url("**/account/security?done=passkey-added")
    await check_page()
    await expect(page.get_by_role("status").filter(has_text="Your passkey is ready")).to_be_visible()
    await expect(page.get_by_role("rowheader", name="My laptop")).to_be_visible()

    await page.get_by_role("link", name=re.compile("Rename or remove")).click()
    await page.wait_for_url(re.compile(r"/account/security/passkeys/\d+$"))
    await check_page()
    await visit("/account/confirm?next=%2Faccount%2Fsecurity")

    await sign_out(page)
    await visit("/sign-in")
    await page.get_by_role("button", name="Sign in with a passkey").click()
    await page.wait_for_url("**/home")
    await check_page()

    await visit("/account/security")
    await expect(page.get_by_role("row", name=re.compile("My laptop"))).not_to_contain_text("Not yet")


async def test_two_step_verification_from_enrolment_to_sign_in(page: Page, visit, check_page, server, portal_environ):
    email = create_patient(server, portal_environ)
    await sign_in_with_password(page, visit, email)
    await page.wait_for_url("**/home")

    await visit("/account/security")
    await page.get_by_role("button", name="Turn on two-step verification").click()
    await page.wait_for_url("**/account/security/two-step")
    await check_page()
    await expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    key = (await page.locator("code").inner_text()).replace(" ", "")
    totp = pyotp.TOTP(key)

    await page.get_by_label("Code from the app").fill("000000")
    await page.get_by_role("button", name="Turn on", exact=True).click()
    await check_page()
    await expect(page.locator(".field-error")).to_contain_text("That code did not work")
    await page.get_by_label("Code from the app").fill(totp.now())
    await page.get_by_role("button", name="Turn on", exact=True).click()
    await expect(page.get_by_role("heading", name="Save your recovery codes")).to_be_visible()
    await check_page()
    await page.get_by_role("link", name="I have saved my codes").click()
    await page.wait_for_url("**/account/security?done=two-step-on")
    await check_page()

    await sign_out(page)
    await sign_in_with_password(page, visit, email)
    await page.wait_for_url("**/sign-in/second-factor")
    await check_page()
    # The next step's code: the one used to turn it on works only once.
    await page.get_by_label("Code from the app").fill(totp.at(time.time() + 30))
    await page.get_by_role("button", name="Continue").click()
    await page.wait_for_url("**/home")
