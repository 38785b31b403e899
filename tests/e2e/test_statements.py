"""On a phone (and a desktop): the demo patient back from a 16-night stay opens the home page, the
statement list and the 238-line statement, expands the stay with htmx, and downloads the PDF
(PROMISES.md 21, 22)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable

from carefront_sandbox.ehr import make_ehr
from carefront_sandbox.hooks import carefront_demo_personas
from carefront_sdk.models import Patient
from carefront_sdk.testing import make_adapter_context
from playwright.async_api import Page, expect

from portal.settings import Settings
from tests.e2e.conftest import NARROWEST_PHONE, SCREENSHOTS, assert_no_axe_violations, assert_no_horizontal_scroll
from tests.e2e.test_proxy_switch import PARENT_ACCOUNT as ACCOUNT
from tests.e2e.test_proxy_switch import PASSWORD

STAY_LINES = re.compile(r"Show all (\d+) lines of this visit")


def account_for(server: Settings, portal_environ: Callable[..., dict[str, str]], record: Patient) -> str:
    """The patient's account with a password, in the server's database; its email address."""
    environ = portal_environ(server.database_url, server.data_dir, server.public_url)
    email = f"{record.given_name}.{record.family_name}.statements@example.org".lower()
    arguments = [record.id, email, record.given_name, record.family_name, PASSWORD]
    done = subprocess.run(
        [sys.executable, "-c", ACCOUNT, *arguments], env=environ, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def signed_in_as_the_inpatient(
    page: Page, visit, server: Settings, portal_environ: Callable[..., dict[str, str]]
) -> None:
    """Sign in as the demo persona with the 200+ line statement (an account made for the test)."""
    inpatient = next(each for each in carefront_demo_personas() if "200 lines" in each.label)
    assert inpatient.patient_id is not None
    ehr = make_ehr(make_adapter_context(server.data_dir, name="sandbox", time_zone=server.hospital.time_zone))
    email = account_for(server, portal_environ, await ehr.read_patient(inpatient.patient_id))
    await visit("/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url("**/home")


async def test_the_inpatient_reads_the_long_statement_expands_the_stay_and_downloads_the_pdf(
    page: Page, visit, check_page, server: Settings, portal_environ, viewport: str
) -> None:
    await signed_in_as_the_inpatient(page, visit, server, portal_environ)
    await check_page()
    await expect(page.get_by_role("heading", name="Your bills")).to_be_visible()
    await expect(page.get_by_role("link", name=re.compile(r"^Pay \$"))).to_be_visible()

    await page.get_by_role("link", name="See your statements").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Statements")
    await check_page()

    await page.get_by_role("link", name=re.compile(r"^Statement of ")).first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Statement of "))
    await expect(page.locator("li.charge")).to_have_count(5)
    await check_page()

    show_all = page.get_by_role("link", name=STAY_LINES)
    total = int(STAY_LINES.search(await show_all.inner_text()).group(1))
    assert total > 200
    url_before = page.url
    await show_all.click()
    await expect(page.locator("li.charge")).to_have_count(total)
    assert page.url == url_before, "htmx swapped the lines in; the page did not change"
    await expect(page.get_by_role("link", name=STAY_LINES)).to_have_count(0)
    # A full-page screenshot of 238 lines outlasts the screenshot timeout: check the page, and keep
    # a picture of what the screen shows.
    await assert_no_axe_violations(page)
    await assert_no_horizontal_scroll(page, NARROWEST_PHONE if viewport == "phone" else 1280)
    await page.locator("li.charge").nth(total - 1).scroll_into_view_if_needed()
    await page.screenshot(path=SCREENSHOTS / f"test_the_inpatient_expanded_stay-{viewport}.png")

    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="Download PDF").click()
    download = await download_info.value
    assert re.fullmatch(r"statement-\d{4}-\d{2}-\d{2}\.pdf", download.suggested_filename)
    saved = await download.path()
    assert saved is not None
    assert saved.read_bytes().startswith(b"%PDF-")
