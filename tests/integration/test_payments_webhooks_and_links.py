"""The gateway's webhook (PROMISES.md 11), guest pay, and a representative's pay link."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from carefront_sandbox.base import DEMO_WEBHOOK_SECRET
from carefront_sandbox.gateway import sign_webhook
from carefront_sdk import codec
from carefront_sdk.models import Money, Payment, PaymentStatus

from portal.payments.pay_links import send_pay_link
from portal.payments.tables import GatewayEvent, PayLink, PaymentAttempt
from tests.integration.test_payments import (
    attempts_of,
    pay_form,
    pay_on_hosted_page,
    sign_in,
    statement_owing,
    submit,
)  # fmt: skip


def event(kind: str, payment: Payment, at, event_id: str | None = None) -> bytes:
    body = {"id": event_id or f"evt_{secrets.token_hex(8)}", "type": kind, "created": int(at.timestamp()),
            "data": {"payment": codec.to_plain(payment)}}  # fmt: skip
    return json.dumps(body, sort_keys=True).encode()


async def post(client, body: bytes, at, *, secret: str = DEMO_WEBHOOK_SECRET):
    signature = sign_webhook(body, secret, int(at.timestamp()))
    return await client.post("/-/webhooks/gateway", content=body, headers={"Sandbox-Signature": signature})


async def open_attempt(portal, browser, index: int) -> dict:
    statement = await statement_owing(portal, index)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        await submit(client, await pay_form(client), choice="other", amount="15")
    (attempt,) = await attempts_of(statement.patient_id)
    return attempt


def paid(attempt: dict, status: PaymentStatus = PaymentStatus.SUCCEEDED) -> Payment:
    return Payment(
        reference=f"pi_test_{secrets.token_hex(6)}", status=status, amount=Money(attempt["amount"]), method="card",
        method_summary="Visa ending 4242", checkout_reference=attempt["checkout_reference"],
        failure_message="Your card was declined." if status is PaymentStatus.FAILED else None,
    )  # fmt: skip


async def test_a_signed_success_settles_once_and_a_late_failure_does_not_undo_it(portal, browser, clock):
    attempt = await open_attempt(portal, browser, 31)
    success = event("payment.succeeded", paid(attempt), clock.now)
    async with browser(portal) as client:
        assert (await post(client, success, clock.now)).status_code == 200
        assert (await post(client, success, clock.now)).status_code == 200, "a duplicate is acknowledged"
        late_failure = event("payment.failed", paid(attempt, PaymentStatus.FAILED), clock.now)
        assert (await post(client, late_failure, clock.now)).status_code == 200
    (row,) = await PaymentAttempt.select().where(PaymentAttempt.id == attempt["id"]).run()
    assert row["status"] == "succeeded"
    assert row["method_summary"] == "Visa ending 4242"


async def test_failure_first_then_success_ends_succeeded(portal, browser, clock):
    attempt = await open_attempt(portal, browser, 33)
    async with browser(portal) as client:
        await post(client, event("payment.failed", paid(attempt, PaymentStatus.FAILED), clock.now), clock.now)
        await post(client, event("payment.succeeded", paid(attempt), clock.now), clock.now)
    (row,) = await PaymentAttempt.select().where(PaymentAttempt.id == attempt["id"]).run()
    assert row["status"] == "succeeded"


async def test_bad_signature_stale_timestamp_and_a_changed_byte_get_400_and_change_nothing(portal, browser, clock):
    attempt = await open_attempt(portal, browser, 35)
    body = event("payment.succeeded", paid(attempt), clock.now, event_id=f"evt_bad_{secrets.token_hex(4)}")
    async with browser(portal) as client:
        wrong_secret = await post(client, body, clock.now, secret="whsec_someone_else")
        stale = await post(client, body, clock.now - timedelta(minutes=10))
        signature = sign_webhook(body, DEMO_WEBHOOK_SECRET, int(clock.now.timestamp()))
        tampered = await client.post(
            "/-/webhooks/gateway", content=body.replace(b'"amount": 1500', b'"amount": 1501'),
            headers={"Sandbox-Signature": signature},
        )  # fmt: skip
        unsigned = await client.post("/-/webhooks/gateway", content=body)
    assert [r.status_code for r in (wrong_secret, stale, tampered, unsigned)] == [400, 400, 400, 400]
    (row,) = await PaymentAttempt.select().where(PaymentAttempt.id == attempt["id"]).run()
    assert row["status"] == "open"
    assert not await GatewayEvent.exists().where(GatewayEvent.event_id.like("evt_bad_%")).run()


async def test_a_guest_pays_their_one_statement_and_sees_the_receipt(portal, browser):
    from tests.integration.test_guest import bill, find_bill

    statement, born = await bill(portal, 37)
    async with browser(portal) as client:
        assert (await find_bill(client, statement.statement_code, born)).status_code == 303
        page = await client.get("/pay")
        assert page.status_code == 200
        assert statement.statement_code in page.text
        assert 'value="balance"' not in page.text, "a guest pays only the statement they opened"
        form = await pay_form(client)
        started = await submit(client, form, choice="other", amount="5", receipt_email="guest@example.org")
        done = await pay_on_hosted_page(client, started.headers["location"], "4242424242424242")
        receipt = await client.get(done.headers["location"], follow_redirects=True)
        assert receipt.status_code == 200
        assert "$5.00" in receipt.text
        assert (await client.get("/payments")).status_code in (403, 404)
    (attempt,) = await attempts_of(statement.patient_id)
    assert (attempt["payer_kind"], attempt["statement_id"], attempt["receipt_email"]) == (
        "guest", statement.id, "guest@example.org"
    )  # fmt: skip


async def test_a_pay_link_opens_its_statement_once_and_expires(portal, browser, clock):
    statement = await statement_owing(portal, 39)
    host, settings = portal.state["plugin_host"], portal.state["settings"]
    await send_pay_link(host, settings, statement.id, "email", "patient@example.org", "rep-1")
    (message,) = [m for m in await host.notifier._adapter.recent() if m.to == "patient@example.org"][:1]
    link = next(word for word in message.text.split() if "/pay/link/" in word)
    path = link.removeprefix(settings.public_url)
    async with browser(portal) as client:
        opened = await client.get(path)
        assert opened.status_code == 303
        assert opened.headers["location"] == "/pay"
        form = await pay_form(client)
        started = await submit(client, form, choice="statement")
        done = await pay_on_hosted_page(client, started.headers["location"], "4242424242424242")
        await client.get(done.headers["location"])
    async with browser(portal) as client:
        used = await client.get(path)
        tampered = await client.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB"))
    assert used.status_code == 410
    assert "already used" in used.text
    assert tampered.status_code == 404
    (attempt,) = await attempts_of(statement.patient_id)
    assert attempt["payer_kind"] == "pay_link"
    assert attempt["status"] == "succeeded"

    await send_pay_link(host, settings, statement.id, "sms", "+15550100999", "rep-1")
    (sms,) = [m for m in await host.notifier._adapter.recent() if m.to == "+15550100999"][:1]
    later = next(word for word in sms.text.split() if "/pay/link/" in word).removeprefix(settings.public_url)
    clock.now += timedelta(days=settings.payments.pay_link_days, seconds=1)
    async with browser(portal) as client:
        expired = await client.get(later)
    assert expired.status_code == 410
    assert "expired" in expired.text
    assert await PayLink.count().where(PayLink.statement_id == statement.id).run() == 2
