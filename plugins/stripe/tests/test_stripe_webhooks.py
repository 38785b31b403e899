"""Webhooks: the Stripe-Signature header is checked against the exact bytes received, with a timestamp
tolerance on the adapter's clock; a verified event becomes a WebhookEvent carrying what the portal
needs to act on it in any order (event id, created time, the payment's reference, status and amount).

The events are real: their objects are what localstripe holds after the steps each test takes, in
Stripe's event envelope, signed here as Stripe signs; the last test has localstripe deliver them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from carefront_sdk.errors import WebhookRejected
from carefront_sdk.models import CheckoutRequest, Money, PaymentStatus, RefundRequest, SaveMethodRequest
from carefront_sdk.testing import FakeClock
from carefront_stripe.gateway import StripeGateway

EventBody = Callable[[str, Mapping[str, Any], datetime], bytes]
Sign = Callable[..., str]


def _request(customer: str, amount: int = 2500) -> CheckoutRequest:
    return CheckoutRequest(Money(amount), "Statement", customer, "https://portal.test/r", "https://portal.test/c")


@pytest.fixture
async def paid_intent(gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]) -> dict[str, Any]:
    """A checkout the patient paid, as localstripe serialises the PaymentIntent."""
    checkout = await gateway.start_checkout(_request(new_reference(), 3100), f"checkout-{uuid.uuid4()}")
    await patient.pay(checkout, patient.GOOD_CARD)
    intent: dict[str, Any] = await patient.raw(f"/v1/payment_intents/{checkout.reference}")
    return intent


@pytest.fixture
def body(paid_intent: dict[str, Any], stripe_event: EventBody, carefront_clock: FakeClock) -> bytes:
    return stripe_event("payment_intent.succeeded", paid_intent, carefront_clock())


async def test_a_signed_payment_succeeded_event_is_parsed(
    gateway: StripeGateway, body: bytes, sign: Sign, paid_intent: dict[str, Any], carefront_clock: FakeClock
) -> None:
    event = await gateway.parse_webhook(body, {"Stripe-Signature": sign(body)})

    assert event.id.startswith("evt_")
    assert event.kind == "payment.succeeded"
    assert event.created_at == carefront_clock().replace(microsecond=0)
    assert event.payment is not None
    assert (event.payment.reference, event.payment.status, event.payment.amount) == (
        paid_intent["id"],
        PaymentStatus.SUCCEEDED,
        Money(3100),
    )
    assert event.payment.checkout_reference == paid_intent["id"]


async def test_a_duplicate_delivery_parses_to_the_same_event(gateway: StripeGateway, body: bytes, sign: Sign) -> None:
    first = await gateway.parse_webhook(body, {"Stripe-Signature": sign(body)})
    again = await gateway.parse_webhook(body, {"Stripe-Signature": sign(body)})

    assert again == first, "the portal de-duplicates by event id; the rest must agree too"


async def test_a_signature_under_another_secret_is_rejected(gateway: StripeGateway, body: bytes, sign: Sign) -> None:
    with pytest.raises(WebhookRejected):
        await gateway.parse_webhook(body, {"Stripe-Signature": sign(body, secret="whsec_someone_else")})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Stripe-Signature": ""},
        {"Stripe-Signature": "t=notanumber,v1=abc"},
        {"Stripe-Signature": "v1=abc"},
        {"Other-Signature": "t=1,v1=abc"},
    ],
    ids=["absent", "empty", "bad-timestamp", "no-timestamp", "other-header"],
)
async def test_a_missing_or_malformed_signature_header_is_rejected(
    gateway: StripeGateway, body: bytes, headers: dict[str, str]
) -> None:
    with pytest.raises(WebhookRejected):
        await gateway.parse_webhook(body, headers)


async def test_a_signature_without_a_v1_scheme_is_rejected(gateway: StripeGateway, body: bytes, sign: Sign) -> None:
    downgraded = sign(body).replace("v1=", "v0=")
    with pytest.raises(WebhookRejected):
        await gateway.parse_webhook(body, {"Stripe-Signature": downgraded})


async def test_the_timestamp_must_be_within_the_tolerance_either_way(
    gateway: StripeGateway, body: bytes, sign: Sign, carefront_clock: FakeClock
) -> None:
    now = carefront_clock()
    for accepted in (now - timedelta(seconds=300), now + timedelta(seconds=300)):
        await gateway.parse_webhook(body, {"Stripe-Signature": sign(body, at=accepted)})
    for stale in (now - timedelta(seconds=301), now + timedelta(seconds=301), now - timedelta(days=3)):
        with pytest.raises(WebhookRejected):
            await gateway.parse_webhook(body, {"Stripe-Signature": sign(body, at=stale)})


async def test_the_tolerance_is_configurable(
    make_gateway: Callable[..., StripeGateway], body: bytes, sign: Sign, carefront_clock: FakeClock
) -> None:
    strict = make_gateway(webhook_tolerance_seconds=60)
    await strict.parse_webhook(body, {"Stripe-Signature": sign(body, at=carefront_clock() - timedelta(seconds=60))})
    with pytest.raises(WebhookRejected):
        await strict.parse_webhook(body, {"Stripe-Signature": sign(body, at=carefront_clock() - timedelta(seconds=61))})


async def test_a_delivery_replayed_later_is_rejected(
    gateway: StripeGateway, body: bytes, sign: Sign, carefront_clock: FakeClock
) -> None:
    headers = {"Stripe-Signature": sign(body)}
    await gateway.parse_webhook(body, headers)
    carefront_clock.advance(timedelta(minutes=6))
    with pytest.raises(WebhookRejected):
        await gateway.parse_webhook(body, headers)


async def test_any_changed_byte_is_rejected(gateway: StripeGateway, body: bytes, sign: Sign) -> None:
    headers = {"Stripe-Signature": sign(body)}
    for position in range(len(body)):
        tampered = bytearray(body)
        tampered[position] ^= 0x01
        with pytest.raises(WebhookRejected):
            await gateway.parse_webhook(bytes(tampered), headers)
    for altered in (body + b"\n", body[:-1], b" " + body):
        with pytest.raises(WebhookRejected):
            await gateway.parse_webhook(altered, headers)


async def test_the_header_name_is_matched_in_any_case(gateway: StripeGateway, body: bytes, sign: Sign) -> None:
    for name in ("stripe-signature", "STRIPE-SIGNATURE", "Stripe-Signature"):
        assert (await gateway.parse_webhook(body, {name: sign(body)})).kind == "payment.succeeded"


async def test_while_the_secret_is_rolled_any_matching_v1_signature_is_accepted(
    gateway: StripeGateway, body: bytes, sign: Sign
) -> None:
    old = sign(body, secret="whsec_previous")
    current = sign(body)
    rolled = f"{old},v1={current.split('v1=')[1]}"
    assert (await gateway.parse_webhook(body, {"Stripe-Signature": rolled})).kind == "payment.succeeded"


@pytest.mark.parametrize(
    "signed", [b"not json", b"[]", b'{"id": "evt_1"}', b'{"id": "evt_1", "type": "x", "created": 1}', b"\xff\xfe"]
)
async def test_a_signed_body_that_is_not_a_stripe_event_is_rejected(
    gateway: StripeGateway, sign: Sign, signed: bytes
) -> None:
    with pytest.raises(WebhookRejected):
        await gateway.parse_webhook(signed, {"Stripe-Signature": sign(signed)})


async def _parse(
    gateway: StripeGateway, sign: Sign, stripe_event: EventBody, kind: str, subject: Any, at: datetime
) -> Any:
    body = stripe_event(kind, subject, at)
    return await gateway.parse_webhook(body, {"Stripe-Signature": sign(body)})


async def test_a_failed_payment_carries_the_message_for_the_patient(
    gateway: StripeGateway,
    patient: Any,
    sign: Sign,
    stripe_event: EventBody,
    carefront_clock: FakeClock,
    new_reference: Callable[[], str],
) -> None:
    checkout = await gateway.start_checkout(_request(new_reference()), f"checkout-{uuid.uuid4()}")
    await patient.pay(checkout, patient.DECLINED_CARD)
    intent = await patient.raw(f"/v1/payment_intents/{checkout.reference}")

    event = await _parse(gateway, sign, stripe_event, "payment_intent.payment_failed", intent, carefront_clock())

    assert event.kind == "payment.failed"
    assert (event.payment.reference, event.payment.status) == (checkout.reference, PaymentStatus.FAILED)
    assert event.payment.failure_message == "Your card was declined. Try another card or contact your bank."


async def test_a_canceled_payment_is_a_failed_payment_with_status_canceled(
    gateway: StripeGateway,
    patient: Any,
    sign: Sign,
    stripe_event: EventBody,
    carefront_clock: FakeClock,
    new_reference: Callable[[], str],
) -> None:
    checkout = await gateway.start_checkout(_request(new_reference()), f"checkout-{uuid.uuid4()}")
    await patient.stripe.v1.payment_intents.cancel_async(checkout.reference)
    intent = await patient.raw(f"/v1/payment_intents/{checkout.reference}")

    event = await _parse(gateway, sign, stripe_event, "payment_intent.canceled", intent, carefront_clock())

    assert (event.kind, event.payment.status) == ("payment.failed", PaymentStatus.CANCELED)


async def test_other_payment_intent_events_are_other_but_carry_the_payment(
    gateway: StripeGateway,
    patient: Any,
    sign: Sign,
    stripe_event: EventBody,
    carefront_clock: FakeClock,
    new_reference: Callable[[], str],
) -> None:
    checkout = await gateway.start_checkout(_request(new_reference()), f"checkout-{uuid.uuid4()}")
    await patient.pay(checkout, patient.THREE_D_SECURE_CARD)
    intent = await patient.raw(f"/v1/payment_intents/{checkout.reference}")

    event = await _parse(gateway, sign, stripe_event, "payment_intent.requires_action", intent, carefront_clock())

    assert (event.kind, event.payment.status) == ("other", PaymentStatus.REQUIRES_ACTION)


async def test_a_saved_card_is_method_saved_with_what_the_patient_recognises(
    gateway: StripeGateway,
    patient: Any,
    sign: Sign,
    stripe_event: EventBody,
    carefront_clock: FakeClock,
    new_reference: Callable[[], str],
) -> None:
    customer = new_reference()
    request = SaveMethodRequest(customer, "https://portal.test/done", "https://portal.test/autopay")
    checkout = await gateway.start_saving_method(request, f"save-{uuid.uuid4()}")
    method = await patient.save(checkout, patient.GOOD_CARD)
    setup = await patient.raw(f"/v1/setup_intents/{checkout.reference}")

    event = await _parse(gateway, sign, stripe_event, "setup_intent.succeeded", setup, carefront_clock())

    assert event.kind == "method.saved"
    assert event.saved_method is not None
    assert (event.saved_method.reference, event.saved_method.customer_reference, event.saved_method.summary) == (
        method,
        customer,
        "Visa ending 4242",
    )
    assert (event.payment.reference, event.payment.saved_method_reference) == (checkout.reference, method)

    # Delivered after the patient removed the card again (events may come late): nothing is saved.
    await patient.stripe.v1.payment_methods.detach_async(method)
    late = await _parse(gateway, sign, stripe_event, "setup_intent.succeeded", setup, carefront_clock())
    assert (late.kind, late.saved_method) == ("other", None)


async def test_a_refunded_charge_is_refund_succeeded_for_its_payment(
    gateway: StripeGateway,
    patient: Any,
    sign: Sign,
    stripe_event: EventBody,
    carefront_clock: FakeClock,
    paid_intent: dict[str, Any],
) -> None:
    await gateway.refund(RefundRequest(paid_intent["id"], Money(1000), "goodwill"), f"refund-{uuid.uuid4()}")
    charge = await patient.raw(f"/v1/charges/{paid_intent['latest_charge']['id']}")

    event = await _parse(gateway, sign, stripe_event, "charge.refunded", charge, carefront_clock())

    assert event.kind == "refund.succeeded"
    assert (event.payment.reference, event.payment.amount) == (paid_intent["id"], Money(3100))


async def test_events_the_portal_does_not_act_on_are_other(
    gateway: StripeGateway, patient: Any, sign: Sign, stripe_event: EventBody, carefront_clock: FakeClock
) -> None:
    customer = await patient.stripe.v1.customers.create_async({"metadata": {"note": "dashboard"}})
    subject = await patient.raw(f"/v1/customers/{customer.id}")

    event = await _parse(gateway, sign, stripe_event, "customer.created", subject, carefront_clock())

    assert (event.kind, event.payment, event.saved_method) == ("other", None, None)


async def test_webhooks_localstripe_delivers_verify_and_parse(
    private_localstripe: str,
    webhook_receiver: Any,
    make_gateway: Callable[..., StripeGateway],
    patient: Any,
    new_reference: Callable[[], str],
) -> None:
    # localstripe signs with the wall clock, so this adapter reads the wall clock too.
    gateway = make_gateway(api_base=private_localstripe, clock=lambda: datetime.now(UTC))
    patient_there = type(patient)(private_localstripe)
    try:
        events_wanted = ["payment_intent.succeeded", "payment_intent.payment_failed"]
        await patient_there.register_webhook(webhook_receiver.url, "whsec_carefront_test", events_wanted)
        paid = await gateway.start_checkout(_request(new_reference(), 1234), f"checkout-{uuid.uuid4()}")
        await patient_there.pay(paid, patient.GOOD_CARD)
        declined = await gateway.start_checkout(_request(new_reference(), 999), f"checkout-{uuid.uuid4()}")
        await patient_there.pay(declined, patient.DECLINED_CARD)

        events = {}
        async with asyncio.timeout(15):
            while len(events) < 2:
                delivery = await webhook_receiver.next()
                event = await gateway.parse_webhook(delivery.body, delivery.headers)
                events[event.payment.reference] = event
    finally:
        await patient_there.close()

    assert (events[paid.reference].kind, events[paid.reference].payment.amount) == ("payment.succeeded", Money(1234))
    assert (events[declined.reference].kind, events[declined.reference].payment.status) == (
        "payment.failed",
        PaymentStatus.FAILED,
    )
