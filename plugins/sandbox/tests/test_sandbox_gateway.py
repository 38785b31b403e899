"""The test-mode gateway: checkouts, saved cards, refunds, and verified webhooks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from datetime import date, timedelta

import pytest
from carefront_sandbox.base import DEMO_WEBHOOK_SECRET
from carefront_sandbox.gateway import TEST_CARDS, SandboxGateway, read_card_form, sign_webhook
from carefront_sdk.errors import NotFound, Refused, WebhookRejected
from carefront_sdk.models import (
    CheckoutKind,
    CheckoutRequest,
    Money,
    OffSessionCharge,
    PaymentStatus,
    RefundRequest,
)
from carefront_sdk.testing import FakeClock

SaveCard = Callable[[str, str], Awaitable[str]]


def _request(**changes: object) -> CheckoutRequest:
    values: dict[str, object] = {
        "amount": Money(12_345),
        "description": "Statement HKX4 balance",
        "customer_reference": "cus_1",
        "return_url": "https://portal.test/payments/done?from=statement",
        "cancel_url": "https://portal.test/payments",
    }
    return CheckoutRequest(**{**values, **changes})  # type: ignore[arg-type]


def _events(gateway: SandboxGateway) -> list[tuple[str, bytes]]:
    with closing(sqlite3.connect(gateway._store.path)) as db:
        return [
            (kind, body.encode())
            for kind, body in db.execute("SELECT kind, body FROM webhook_events ORDER BY created_at, rowid")
        ]


async def test_a_checkout_is_a_hosted_page_with_an_unguessable_reference(gateway: SandboxGateway) -> None:
    first = await gateway.start_checkout(_request(), "c-1")
    second = await gateway.start_checkout(_request(), "c-2")
    assert first.kind is CheckoutKind.REDIRECT
    assert first.url == f"https://portal.test/-/sandbox/checkout/{first.reference}"
    assert first.reference != second.reference
    assert len(first.reference) > 30
    assert await gateway.start_checkout(_request(), "c-1") == first


async def test_bad_amounts_and_urls_are_refused(gateway: SandboxGateway) -> None:
    for request in (_request(amount=Money(0)), _request(amount=Money(-5)), _request(return_url="javascript:alert(1)")):
        with pytest.raises(Refused):
            await gateway.start_checkout(request, f"bad-{request.amount.amount}-{request.return_url}")


async def test_paying_with_4242_succeeds_once_and_records_a_webhook(gateway: SandboxGateway) -> None:
    checkout = await gateway.start_checkout(_request(), "c-1")
    outcome = await gateway.submit_card(checkout.reference, TEST_CARDS["4242424242424242"], "12/2030")
    assert outcome.redirect == f"https://portal.test/payments/done?from=statement&checkout={checkout.reference}"
    again = await gateway.submit_card(checkout.reference, TEST_CARDS["4242424242424242"], "12/2030")
    assert again.redirect == outcome.redirect
    payment = await gateway.read_payment(checkout.reference)
    assert (payment.status, payment.amount, payment.method_summary) == (
        PaymentStatus.SUCCEEDED,
        Money(12_345),
        "Visa ending 4242",
    )
    assert await gateway.read_payment(payment.reference) == payment
    assert [kind for kind, _ in _events(gateway)] == ["payment.succeeded"]


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000341", "card_declined"),
    ],
)
async def test_declining_cards_leave_the_checkout_open(gateway: SandboxGateway, number: str, code: str) -> None:
    checkout = await gateway.start_checkout(_request(), "c-1")
    outcome = await gateway.submit_card(checkout.reference, TEST_CARDS[number], "12/2030")
    assert outcome.error == code
    pending = await gateway.read_payment(checkout.reference)
    assert pending.status is PaymentStatus.PENDING
    assert pending.failure_message
    assert (await gateway.submit_card(checkout.reference, TEST_CARDS["4242424242424242"], "12/2030")).redirect
    assert (await gateway.read_payment(checkout.reference)).status is PaymentStatus.SUCCEEDED
    assert [kind for kind, _ in _events(gateway)] == ["payment.failed", "payment.succeeded"]


async def test_3d_secure_asks_then_completes_or_fails(gateway: SandboxGateway) -> None:
    checkout = await gateway.start_checkout(_request(), "c-1")
    card = TEST_CARDS["4000002500003155"]
    outcome = await gateway.submit_card(checkout.reference, card, "12/2030")
    assert outcome.redirect == f"/-/sandbox/checkout/{checkout.reference}/authenticate"
    assert (await gateway.read_payment(checkout.reference)).status is PaymentStatus.REQUIRES_ACTION
    failed = await gateway.finish_authentication(checkout.reference, approved=False)
    assert failed.redirect == f"/-/sandbox/checkout/{checkout.reference}"
    assert (await gateway.read_payment(checkout.reference)).failure_message
    await gateway.submit_card(checkout.reference, card, "12/2030")
    done = await gateway.finish_authentication(checkout.reference, approved=True)
    assert done.redirect is not None
    assert done.redirect.endswith(f"checkout={checkout.reference}")
    assert (await gateway.read_payment(checkout.reference)).status is PaymentStatus.SUCCEEDED


async def test_an_unfinished_checkout_expires_after_a_day(gateway: SandboxGateway, clock: FakeClock) -> None:
    checkout = await gateway.start_checkout(_request(), "c-1")
    clock.advance(timedelta(hours=25))
    assert (await gateway.read_payment(checkout.reference)).status is PaymentStatus.CANCELED
    outcome = await gateway.submit_card(checkout.reference, TEST_CARDS["4242424242424242"], "12/2030")
    assert outcome.redirect == f"/-/sandbox/checkout/{checkout.reference}"
    assert (await gateway.read_payment(checkout.reference)).status is PaymentStatus.CANCELED


async def test_a_checkout_can_save_the_card_for_a_plan(gateway: SandboxGateway) -> None:
    checkout = await gateway.start_checkout(_request(save_method=True), "c-1")
    await gateway.submit_card(checkout.reference, TEST_CARDS["4242424242424242"], "12/2030")
    payment = await gateway.read_payment(checkout.reference)
    assert payment.saved_method_reference is not None
    method = await gateway.read_saved_method(payment.saved_method_reference)
    assert (method.customer_reference, method.summary, method.expires) == ("cus_1", "Visa ending 4242", "12/2030")


async def test_off_session_charges_of_saved_cards(gateway: SandboxGateway, save_card: SaveCard) -> None:
    good, declining, poor = [await save_card("cus_1", last_four) for last_four in ("4242", "0341", "9995")]
    charge = OffSessionCharge(good, "cus_1", Money(5_000), "Installment 1 of 6")
    paid = await gateway.charge_saved_method(charge, "i-1")
    assert paid.status is PaymentStatus.SUCCEEDED
    assert await gateway.charge_saved_method(charge, "i-1") == paid
    for method, code in ((declining, "card_declined"), (poor, "insufficient_funds")):
        for _ in range(2):  # a decline is an outcome: the same key declines again, and charges nothing new
            with pytest.raises(Refused) as refusal:
                await gateway.charge_saved_method(OffSessionCharge(method, "cus_1", Money(5_000), "x"), f"d-{method}")
            assert refusal.value.code == code
    with pytest.raises(NotFound):
        await gateway.charge_saved_method(OffSessionCharge(good, "cus_someone_else", Money(5_000), "x"), "theft")
    kinds = [kind for kind, _ in _events(gateway)]
    assert kinds.count("payment.failed") == 2
    assert kinds.count("method.saved") == 3


async def test_refunds_never_exceed_the_payment(gateway: SandboxGateway, save_card: SaveCard) -> None:
    method = await save_card("cus_1", "4242")
    paid = await gateway.charge_saved_method(OffSessionCharge(method, "cus_1", Money(5_000), "x"), "i-1")
    part = await gateway.refund(RefundRequest(paid.reference, Money(2_000), "goodwill"), "r-1")
    assert await gateway.refund(RefundRequest(paid.reference, Money(2_000), "goodwill"), "r-1") == part
    with pytest.raises(Refused) as refusal:
        await gateway.refund(RefundRequest(paid.reference, Money(3_001), "too much"), "r-2")
    assert refusal.value.code == "refund_exceeds_payment"
    rest = await gateway.refund(RefundRequest(paid.reference, Money(3_000), "the rest"), "r-3")
    assert rest.status is PaymentStatus.SUCCEEDED
    with pytest.raises(Refused):
        await gateway.refund(RefundRequest(paid.reference, Money(1), "nothing left"), "r-4")


# --- Webhooks ---------------------------------------------------------------------------------------


@pytest.fixture
async def signed_event(gateway: SandboxGateway, clock: FakeClock) -> tuple[bytes, dict[str, str]]:
    checkout = await gateway.start_checkout(_request(), "c-1")
    await gateway.submit_card(checkout.reference, TEST_CARDS["4242424242424242"], "12/2030")
    ((_, body),) = _events(gateway)
    return body, {"Sandbox-Signature": sign_webhook(body, DEMO_WEBHOOK_SECRET, int(clock().timestamp()))}


async def test_a_signed_event_parses(gateway: SandboxGateway, signed_event: tuple[bytes, dict[str, str]]) -> None:
    body, headers = signed_event
    event = await gateway.parse_webhook(body, {"sandbox-signature": headers["Sandbox-Signature"]})
    assert event.kind == "payment.succeeded"
    assert event.payment is not None
    assert event.payment.status is PaymentStatus.SUCCEEDED
    assert event.id == json.loads(body)["id"]


async def test_a_bad_signature_is_rejected(gateway: SandboxGateway, signed_event: tuple[bytes, dict[str, str]]) -> None:
    body, headers = signed_event
    timestamp = headers["Sandbox-Signature"].split(",")[0]
    for header in (
        {},
        {"Sandbox-Signature": ""},
        {"Sandbox-Signature": f"{timestamp},v1={'0' * 64}"},
        {"Sandbox-Signature": sign_webhook(body, "another-secret", int(timestamp.removeprefix("t=")))},
        {"Sandbox-Signature": headers["Sandbox-Signature"].replace("t=", "t=1")},
    ):
        with pytest.raises(WebhookRejected):
            await gateway.parse_webhook(body, header)


async def test_one_changed_byte_is_rejected(
    gateway: SandboxGateway, signed_event: tuple[bytes, dict[str, str]]
) -> None:
    body, headers = signed_event
    for position in (0, len(body) // 2, len(body) - 1):
        changed = body[:position] + bytes([body[position] ^ 1]) + body[position + 1 :]
        with pytest.raises(WebhookRejected):
            await gateway.parse_webhook(changed, headers)


async def test_a_stale_or_future_timestamp_is_rejected(
    gateway: SandboxGateway, signed_event: tuple[bytes, dict[str, str]], clock: FakeClock
) -> None:
    body, headers = signed_event
    clock.advance(timedelta(seconds=299))
    await gateway.parse_webhook(body, headers)
    clock.advance(timedelta(seconds=2))
    with pytest.raises(WebhookRejected, match="tolerance"):
        await gateway.parse_webhook(body, headers)
    clock.advance(timedelta(seconds=-602))
    with pytest.raises(WebhookRejected, match="tolerance"):
        await gateway.parse_webhook(body, headers)


async def test_a_well_signed_body_that_is_not_an_event_is_rejected(gateway: SandboxGateway, clock: FakeClock) -> None:
    body = b'{"hello": "world"}'
    headers = {"Sandbox-Signature": sign_webhook(body, DEMO_WEBHOOK_SECRET, int(clock().timestamp()))}
    with pytest.raises(WebhookRejected):
        await gateway.parse_webhook(body, headers)


# --- The card form ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "expiry", "cvc", "errors"),
    [
        ("4242 4242 4242 4242", "12/30", "123", {}),
        ("4242-4242-4242-4242", "1230", "1234", {}),
        ("", "12/30", "123", {"number": "number_missing"}),
        ("4111111111111111", "12/30", "123", {"number": "not_test_card"}),
        ("4242424242424242", "", "123", {"expiry": "expiry_missing"}),
        ("4242424242424242", "13/30", "123", {"expiry": "expiry_format"}),
        ("4242424242424242", "02/25", "123", {"expiry": "expiry_past"}),
        ("4242424242424242", "03/25", "12", {"cvc": "cvc_format"}),
        ("4242424242424242", "03/2025", "\uff11\uff12\uff13", {"cvc": "cvc_format"}),
    ],
)
def test_the_card_form_is_checked(number: str, expiry: str, cvc: str, errors: dict[str, str]) -> None:
    form = read_card_form(number, expiry, cvc, date(2025, 3, 3))
    assert form.errors == errors
    assert (form.card is None) == bool(errors)
