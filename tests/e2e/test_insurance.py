"""On a phone (and a desktop): a patient adds a secondary insurance with photos of both sides of the
card taken with the camera (file inputs), sees it sent to the hospital and the insurance company's
answer in plain words; a hostile upload is refused beside its field; a member ID the insurance
company does not recognise is explained with what to fix."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable

from carefront_sandbox.ehr import make_ehr
from carefront_sdk.models import CoverageRank, Patient
from carefront_sdk.testing import make_adapter_context
from PIL import Image
from playwright.async_api import Page, expect

from portal.settings import Settings

PASSWORD = "amber lantern over quiet fields"
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
        if await accounts.find_by_patient(patient_id) is None:
            await accounts.create(
                now, public_id=uuid.uuid4(), realm="patient", email=email, email_verified_at=now,
                password_hash=hash_password(password), given_name=given_name, family_name=family_name,
                patient_id=patient_id,
            )
    finally:
        await database.disconnect(engine)

asyncio.run(main(*sys.argv[1:]))
"""


async def patient_with_primary_only(server: Settings, viewport: str) -> Patient:
    """A sandbox patient with only a primary coverage: a different one for each viewport (one server)."""
    ehr = make_ehr(make_adapter_context(server.data_dir, name="sandbox", time_zone=server.hospital.time_zone))
    found = []
    for number in range(40, 60):
        patient_id = f"pt-{number:06d}"
        if {coverage.rank for coverage in await ehr.list_coverages(patient_id)} == {CoverageRank.PRIMARY}:
            found.append(await ehr.read_patient(patient_id))
    return found[0 if viewport == "phone" else 1]


def account_for(server: Settings, portal_environ: Callable[..., dict[str, str]], patient: Patient) -> str:
    environ = portal_environ(server.database_url, server.data_dir, server.public_url)
    email = f"{patient.given_name}.{patient.family_name}.insurance@example.org".lower()
    arguments = [patient.id, email, patient.given_name, patient.family_name, PASSWORD]
    done = subprocess.run(
        [sys.executable, "-c", ACCOUNT, *arguments], env=environ, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return email


def card_photo(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1200, 760), colour).save(out, format="JPEG")
    return out.getvalue()


async def test_a_patient_adds_a_secondary_insurance_with_card_photos(
    page: Page, visit, check_page, server: Settings, portal_environ, viewport: str
) -> None:
    patient = await patient_with_primary_only(server, viewport)
    email = account_for(server, portal_environ, patient)
    await visit("/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url("**/home")

    await page.get_by_role("link", name="Insurance", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Insurance")
    await check_page()
    await page.get_by_role("link", name="Add insurance").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Add insurance")

    # The list of insurance companies narrows as the patient types.
    await page.get_by_label("Find your insurance company").fill("aet")
    await expect(page.get_by_label("Humana")).to_have_count(0)
    await page.get_by_label("Aetna").check()
    await page.get_by_label("Secondary").check()
    await page.get_by_label("Member ID").fill("12345")
    await page.get_by_role("button", name="Add insurance").click()
    await expect(page.locator("#member_id-error")).to_have_text(
        "Aetna member IDs look like W123456789. Check the ID on your card."
    )
    await check_page()

    await page.get_by_label("Member ID").fill("W 1234-56789")
    await page.get_by_role("button", name="Add insurance").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Photos of your secondary insurance card")
    await check_page()

    # A web page renamed .jpg is refused beside its field; nothing is kept.
    await page.get_by_label("Front of the card").set_input_files(
        files=[{"name": "card.jpg", "mimeType": "image/jpeg", "buffer": b"<html><script>alert(1)</script></html>"}]
    )
    await page.get_by_role("button", name="Save the photos").click()
    await expect(page.locator("#front-error")).to_contain_text("That file is not a photo")
    await check_page()

    await page.get_by_label("Front of the card").set_input_files(
        files=[{"name": "front.jpg", "mimeType": "image/jpeg", "buffer": card_photo((20, 90, 160))}]
    )
    await page.get_by_label("Back of the card").set_input_files(
        files=[{"name": "back.jpg", "mimeType": "image/jpeg", "buffer": card_photo((240, 240, 235))}]
    )
    await page.get_by_role("button", name="Save the photos").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Insurance")
    secondary = page.locator("section.coverage").filter(has_text="Secondary: Aetna")
    # Sent to the hospital: still waiting, or already on file, as the server's background relay goes.
    await expect(secondary).to_have_count(1)
    await expect(secondary.get_by_text("Active", exact=True)).to_be_visible()
    await expect(secondary.get_by_text("Deductible this year")).to_be_visible()
    await expect(secondary.get_by_role("img", name="Front of the card")).to_be_visible()
    await expect(secondary.get_by_role("img", name="Back of the card")).to_be_visible()
    await check_page()
