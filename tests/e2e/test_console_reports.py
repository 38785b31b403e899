"""On a phone and a desktop: a supervisor signs in through the sandbox's OpenID provider, opens the
reports, sees each chart with its table, narrows the days, and downloads a CSV of the same numbers."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections.abc import Callable

from playwright.async_api import Page, expect

from portal.settings import Settings
from tests.e2e.conftest import sign_in_as_staff

# Run in a process of its own, against the server's database: payments put through the ledger as the
# pay flow does (on three of the last days) and eligibility answers. Made once per server.
SETUP = """
import asyncio, secrets, sys
from datetime import UTC, datetime, timedelta
from carefront_sdk.models import Money, Payment, PaymentStatus
from portal import database
from portal.coverage.tables import EligibilityCheck
from portal.payments import attempts, settlement
from portal.payments.tables import PaymentAttempt
from portal.settings import Settings

async def main():
    settings = Settings.load()
    engine = await database.connect(settings)
    try:
        if await PaymentAttempt.exists().where(PaymentAttempt.idempotency_key.like("e2e-report:%")):
            return
        now = datetime.now(UTC)
        for days_ago, amount, method, payer in [(1, 12500, "card", "account"), (3, 4000, "ach", "guest"),
                                                (3, 2599, "card", "pay_link"), (6, 8000, "card", "account")]:
            at = now - timedelta(days=days_ago)
            intent = attempts.Intent("pt-50", Money(amount), None, attempts.Payer(payer))
            begun = await attempts.begin(intent, f"e2e-report:{secrets.token_hex(8)}", now=at)
            await settlement.settle(begun.attempt, Payment(f"pay_{secrets.token_hex(6)}", PaymentStatus.SUCCEEDED,
                                    Money(amount), method=method), now=at)
        for outcome, code in [("active", None), ("active", None), ("inactive", None), ("rejected", "72")]:
            await EligibilityCheck.insert(EligibilityCheck(patient_id="pt-50", rank="primary", checked_at=now - timedelta(days=2),
                                                           outcome=outcome, rejection_code=code, result="{}")).run()
    finally:
        await database.disconnect(engine)

asyncio.run(main())
"""


def set_up(server: Settings, portal_environ: Callable[..., dict[str, str]]) -> None:
    environ = portal_environ(server.database_url, server.data_dir, server.public_url)
    done = subprocess.run([sys.executable, "-c", SETUP], env=environ, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


async def test_a_supervisor_signs_in_and_reads_the_reports(
    page: Page, visit, check_page, server: Settings, portal_environ
) -> None:
    set_up(server, portal_environ)
    await sign_in_as_staff(page, "Ethan Moore")
    await check_page()
    await page.get_by_role("link", name="Reports").first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    for heading in (
        "Payments collected",
        "Payment plans and delinquency",
        "A/R aging of patient balances",
        "Eligibility outcomes",
        "Portal adoption",
    ):
        await expect(page.get_by_role("heading", level=2, name=heading)).to_be_visible()
    chart = page.get_by_role("img", name="Payments collected by day and method")
    await expect(chart).to_be_visible()
    await expect(page.locator("#payments-by-day-heading + figure + .table-scroll table")).to_contain_text(
        "Bank account"
    )
    await check_page()

    # A range with no day in it is refused beside the field, with what was typed kept.
    await page.get_by_label("From (day)").fill("2030-01-02")
    await page.get_by_label("To (day)").fill("2030-01-01")
    await page.get_by_role("button", name="Show these days").click()
    await expect(page.locator(".field-error")).to_contain_text("The first day must not be after the last day.")
    await check_page()

    await visit("/console/reports")
    async with page.expect_download() as download_info:
        await page.locator("#payments-by-day-heading ~ p a").click()
    download = await download_info.value
    rows = list(csv.reader(io.StringIO((await download.path()).read_text())))
    assert rows[0] == ["day", "method", "payments", "collected", "collected_currency"]
    assert {"card", "ach"} <= {row[1] for row in rows[1:]}
