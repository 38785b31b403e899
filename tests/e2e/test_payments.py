"""On a phone (and a desktop): the demo patient with a balance pays $25 with the sandbox's success card on
its hosted checkout and sees the receipt and the new balance; a declined card shows the bank's message
and a retry pays; a bill is paid without an account (statement code and birth date); and a double tap
on Pay charges once (PROMISES.md 9, 10, 13, 21, 22)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import carefront_stripe.hooks
from carefront_sandbox.ehr import make_ehr
from carefront_sandbox.hooks import carefront_demo_personas
from carefront_sdk.models import DemoPersona, Patient
from carefront_sdk.testing import make_adapter_context
from playwright.async_api import Page, expect

from portal.settings import Settings
from tests.e2e.test_proxy_switch import PARENT_ACCOUNT as ACCOUNT
from tests.e2e.test_proxy_switch import PASSWORD

SUCCESS_CARD = "4242 4242 4242 4242"
DECLINED_CARD = "4000 0000 0000 0002"
OWED = re.compile(r"Everything you owe: \$([\d,]+\.\d\d)")
RECEIPT_PATH = re.compile(r"/payments/([0-9a-f-]{36})$")


def persona(label_starts: str) -> DemoPersona:
    return next(each for each in carefront_demo_personas() if each.label.startswith(label_starts))


async def signed_in_as_the_patient_with_a_balance(
    page: Page, visit, server: Settings, portal_environ: Callable[..., dict[str, str]]
) -> str:
    """Sign in as the demo persona with an emergency-room balance (an account made for the test)."""
    patient = persona("A patient with a balance")
    assert patient.patient_id is not None
    ehr = make_ehr(make_adapter_context(server.data_dir, name="sandbox", time_zone=server.hospital.time_zone))
    record = await ehr.read_patient(patient.patient_id)
    await visit("/sign-in")
    await page.get_by_label("Email address").fill(account_for(server, portal_environ, record))
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url("**/home")
    return record.id


def account_for(server: Settings, portal_environ: Callable[..., dict[str, str]], record: Patient) -> str:
    """The patient's account with a password, in the server's database (made once); its email address."""
    environ = portal_environ(server.database_url, server.data_dir, server.public_url)
    email = f"{record.given_name}.{record.family_name}.payments@example.org".lower()
    arguments = [record.id, email, record.given_name, record.family_name, PASSWORD]
    done = subprocess.run(
        [sys.executable, "-c", ACCOUNT, *arguments], env=environ, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def owed_on_the_pay_page(page: Page) -> Decimal:
    text = await page.get_by_text("Everything you owe:").inner_text()
    found = OWED.search(text)
    assert found, text
    return Decimal(found.group(1).replace(",", ""))


async def fill_amount(page: Page, dollars: str) -> None:
    await page.get_by_label("Another amount").check()
    await page.get_by_label("Other amount, in dollars").fill(dollars)


async def pay_on_the_hosted_checkout(page: Page, check_page, card: str) -> None:
    # Polls the address rather than awaiting one navigation: a double tap aborts the first of two.
    await expect(page).to_have_url(re.compile(r"/-/sandbox/checkout/cs_test_[\w-]+$"))
    await page.wait_for_load_state("load")
    await check_page()
    await page.get_by_label("Card number").fill(card)
    await page.get_by_label("Expiry date (MM/YY)").fill("12/40")
    await page.get_by_label("Security code").fill("123")
    await page.get_by_role("button", name=re.compile(r"^Pay \$")).click()


async def the_receipt(page: Page, check_page, amount: str) -> str:
    """Check the receipt page; the payment's public id."""
    await page.wait_for_url(re.compile(r"/payments/[0-9a-f-]{36}$"))
    await expect(page.get_by_role("heading", level=1)).to_have_text("Receipt")
    await expect(page.get_by_text("Thank you. We received your payment.")).to_be_visible()
    await expect(page.locator(".summary .amount")).to_have_text(amount)
    await expect(page.get_by_text("Visa ending 4242")).to_be_visible()
    await expect(page.locator(".summary .reference")).to_have_text(re.compile(r"^[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{2}$"))
    await check_page()
    found = RECEIPT_PATH.search(page.url)
    assert found
    return found.group(1)


def attempts_of(server: Settings, patient_id: str) -> list[tuple[str, int, str]]:
    """(public id, amount, status) of the patient's payment attempts, from the server's ledger."""
    with closing(sqlite3.connect(server.database_url.removeprefix("sqlite:///"))) as db:
        rows = db.execute(
            "SELECT public_id, amount, status FROM payment_attempt WHERE patient_id = ?", (patient_id,)
        ).fetchall()
    return [(str(public_id), int(amount), str(status)) for public_id, amount, status in rows]


def sandbox_checkouts_for(server: Settings, payment_id: str) -> int:
    """How many hosted checkouts the sandbox gateway opened for one portal payment."""
    (store,) = Path(server.data_dir).glob("sandbox-*.sqlite3")
    with closing(sqlite3.connect(store)) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM checkouts WHERE metadata LIKE ?", (f'%"carefront_payment": "{payment_id}"%',)
        ).fetchone()
    return int(count)


async def test_the_patient_pays_25_dollars_and_sees_the_receipt_and_the_new_balance(
    page: Page, visit, check_page, server: Settings, portal_environ
) -> None:
    await signed_in_as_the_patient_with_a_balance(page, visit, server, portal_environ)
    await check_page()
    await visit("/pay")
    before = await owed_on_the_pay_page(page)
    assert before > 25

    await fill_amount(page, "25")
    await page.get_by_role("button", name="Pay", exact=True).click()
    await pay_on_the_hosted_checkout(page, check_page, SUCCESS_CARD)
    await the_receipt(page, check_page, "$25.00")

    await page.get_by_role("link", name="All your payments").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Your payments")
    await check_page()
    await visit("/pay")
    assert await owed_on_the_pay_page(page) == before - 25


async def test_a_declined_card_shows_the_banks_message_and_a_retry_pays(
    page: Page, visit, check_page, server: Settings, portal_environ
) -> None:
    await signed_in_as_the_patient_with_a_balance(page, visit, server, portal_environ)
    await visit("/pay")
    await fill_amount(page, "10")
    await page.get_by_role("button", name="Pay", exact=True).click()
    await pay_on_the_hosted_checkout(page, check_page, DECLINED_CARD)
    await expect(page.get_by_role("alert")).to_have_text("Your card was declined.")
    await check_page()

    # Back on the portal, the pay page says why and offers a fresh form.
    await page.get_by_role("link", name="Cancel and go back").click()
    await page.wait_for_url("**/pay/return/*")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Pay your bill")
    await expect(page.get_by_role("alert")).to_contain_text("declined")
    await expect(page.get_by_label("Other amount, in dollars")).to_have_value("10.00")  # what they tried
    await check_page()

    await page.get_by_role("button", name="Pay", exact=True).click()
    await pay_on_the_hosted_checkout(page, check_page, SUCCESS_CARD)
    await the_receipt(page, check_page, "$10.00")


async def test_a_bill_is_paid_without_an_account(page: Page, visit, check_page) -> None:
    guest = persona("A patient back from a 16-night hospital stay")
    assert guest.statement_code is not None
    assert guest.birth_date is not None
    await visit("/pay-as-guest")
    await page.get_by_label("Statement code").fill(guest.statement_code)
    await page.get_by_label("Month").fill(str(guest.birth_date.month))
    await page.get_by_label("Day").fill(str(guest.birth_date.day))
    await page.get_by_label("Year").fill(str(guest.birth_date.year))
    await page.get_by_role("button", name="Find my bill").click()
    await page.wait_for_url("**/guest")
    await expect(page.get_by_text(guest.statement_code).first).to_be_visible()

    await page.get_by_role("link", name=re.compile(r"^Pay \$")).first.click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Pay your bill")
    await expect(page.get_by_label("Everything you owe", exact=False)).to_have_count(0)  # one statement only
    await check_page()
    await fill_amount(page, "5")
    await page.get_by_label("Email for your receipt (optional)").fill("guest.payer@example.org")
    await page.get_by_role("button", name="Pay", exact=True).click()
    await pay_on_the_hosted_checkout(page, check_page, SUCCESS_CARD)
    await the_receipt(page, check_page, "$5.00")
    await expect(page.get_by_role("link", name="All your payments")).to_have_count(0)


async def test_a_double_tap_on_pay_charges_once(
    page: Page, visit, check_page, server: Settings, portal_environ
) -> None:
    patient_id = await signed_in_as_the_patient_with_a_balance(page, visit, server, portal_environ)
    earlier = {public_id for public_id, _, _ in attempts_of(server, patient_id)}
    await visit("/pay")
    await fill_amount(page, "7.50")
    await page.get_by_role("button", name="Pay", exact=True).dblclick()
    await pay_on_the_hosted_checkout(page, check_page, SUCCESS_CARD)
    payment_id = await the_receipt(page, check_page, "$7.50")

    new = [attempt for attempt in attempts_of(server, patient_id) if attempt[0] not in earlier]
    assert new == [(payment_id, 750, "succeeded")], "two taps made more than one payment"
    assert sandbox_checkouts_for(server, payment_id) == 1, "two taps opened two checkouts at the gateway"


ELEMENT_SCRIPT = Path(carefront_stripe.hooks.STATIC) / "element.js"
# The element page as carefront_sdk.GatewayPage describes it to a gateway's script.
ELEMENT_PAGE = """<!doctype html><html lang="es"><body>
<form method="get" action="/pay/return/p-1">
  <div id="gateway-element" data-client-secret="pi_1_secret_2" data-publishable-key="pk_test_1"
       data-reference="pi_1" data-return-url="https://portal.test/pay/return/p-1"></div>
  <p id="gateway-error" role="alert" data-unavailable="No podemos recibir una tarjeta ahora."></p>
  <button type="submit" hidden>Pagar $25.00</button>
</form></body></html>"""
# Stripe.js as far as element.js uses it; window.confirmed says what confirmPayment answers next.
STRIPE_STAND_IN = """
window.calls = [];
window.confirmed = () => Promise.resolve({error: {type: "card_error", message: "Your card has insufficient funds."}});
window.Stripe = (key) => {
  calls.push(["Stripe", key]);
  return {
    elements: (options) => {
      calls.push(["elements", options.clientSecret, options.locale]);
      return {create: (type) => {
        const handlers = {};
        return {
          on: (name, handler) => { handlers[name] = handler; },
          mount: (node) => { calls.push(["mount", type, node.id]); setTimeout(() => handlers.ready(), 10); },
        };
      }};
    },
    confirmPayment: (options) => {
      calls.push(["confirmPayment", options.confirmParams.return_url, options.redirect]);
      return confirmed();
    },
    confirmSetup: () => { calls.push(["confirmSetup"]); return confirmed(); },
  };
};
"""


async def test_the_stripe_element_script_mounts_confirms_and_shows_stripes_message(page: Page) -> None:
    await page.set_content(ELEMENT_PAGE)
    pay = page.get_by_role("button", name="Pagar $25.00")
    await expect(pay).to_be_hidden()
    await page.add_script_tag(content=STRIPE_STAND_IN)
    await page.add_script_tag(path=str(ELEMENT_SCRIPT))
    await expect(pay).to_be_visible()  # shown once the element is ready

    await pay.click()
    await expect(page.locator("#gateway-error")).to_have_text("Your card has insufficient funds.")
    await expect(pay).to_be_enabled()

    # Anything but a card or form error gets the portal's own words, not Stripe's.
    await page.evaluate("() => { window.confirmed = () => Promise.resolve({error: {type: 'api_error'}}); }")
    await pay.click()
    await expect(page.locator("#gateway-error")).to_have_text("No podemos recibir una tarjeta ahora.")

    # While Stripe confirms (and then leaves for the return URL), a second tap confirms nothing more.
    await page.evaluate("() => { window.confirmed = () => new Promise(() => {}); }")
    await pay.dblclick()
    await expect(pay).to_be_disabled()
    calls = await page.evaluate("window.calls")
    assert calls[:3] == [
        ["Stripe", "pk_test_1"],
        ["elements", "pi_1_secret_2", "es"],
        ["mount", "payment", "gateway-element"],
    ]
    assert calls[3:] == [["confirmPayment", "https://portal.test/pay/return/p-1", "if_required"]] * 3
    assert page.url == "about:blank", "the form itself was never submitted"


async def test_once_stripe_has_the_payment_the_element_page_goes_to_the_return_url(page: Page) -> None:
    back = "https://portal.test/pay/return/p-1"
    await page.route(back, lambda route: route.fulfill(body="back at the portal", content_type="text/plain"))
    await page.set_content(ELEMENT_PAGE)
    await page.add_script_tag(content=STRIPE_STAND_IN)
    await page.evaluate("() => { window.confirmed = () => Promise.resolve({paymentIntent: {status: 'succeeded'}}); }")
    await page.add_script_tag(path=str(ELEMENT_SCRIPT))
    await page.get_by_role("button", name="Pagar $25.00").click()
    await page.wait_for_url(back)  # no client secret in the URL: Stripe.js did not redirect


async def test_without_stripe_js_the_element_page_says_so_and_offers_no_button(page: Page) -> None:
    await page.set_content(ELEMENT_PAGE)
    await page.add_script_tag(path=str(ELEMENT_SCRIPT))  # js.stripe.com blocked or unreachable
    await expect(page.locator("#gateway-error")).to_have_text("No podemos recibir una tarjeta ahora.")
    await expect(page.get_by_role("button")).to_be_hidden()
