"""Off-session charges of saved cards and refunds, against localstripe: declines and 3-D Secure become
refusals the portal can act on, a key has its effect once, and a refund never exceeds the payment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from carefront_sdk.errors import NotFound, Refused
from carefront_sdk.models import (
    CheckoutRequest,
    Money,
    OffSessionCharge,
    Payment,
    PaymentStatus,
    RefundRequest,
    SaveMethodRequest,
)
from carefront_stripe.gateway import StripeGateway, stripe_idempotency_key


def _key() -> str:
    return f"installment-{uuid.uuid4().hex}"


def _charge(method: str, customer: str, amount: int = 2500, **metadata: str) -> OffSessionCharge:
    return OffSessionCharge(method, customer, Money(amount), "Plan installment", metadata)


@pytest.fixture
async def saved(
    gateway: StripeGateway, save_card: Any, patient: Any, new_reference: Callable[[], str]
) -> tuple[str, str]:
    """A guarantor reference and a good card saved for it."""
    customer = new_reference()
    return customer, await save_card(gateway, customer, patient.GOOD_CARD)


async def _paid(gateway: StripeGateway, saved: tuple[str, str], amount: int = 5000) -> Payment:
    customer, method = saved
    payment = await gateway.charge_saved_method(_charge(method, customer, amount), _key())
    assert payment.status is PaymentStatus.SUCCEEDED
    return payment


async def test_an_installment_is_charged_off_session(
    gateway: StripeGateway, saved: tuple[str, str], patient: Any
) -> None:
    customer, method = saved
    payment = await gateway.charge_saved_method(_charge(method, customer, plan_id="plan-9"), _key())

    assert (payment.status, payment.amount, payment.method_summary) == (
        PaymentStatus.SUCCEEDED,
        Money(2500),
        "Visa ending 4242",
    )
    assert payment.checkout_reference is None
    intent = await patient.raw(f"/v1/payment_intents/{payment.reference}")
    assert intent["payment_method"] == method
    assert intent["metadata"]["plan_id"] == "plan-9"


async def test_a_decline_is_refused_with_the_decline_message_and_charged_once(
    make_gateway: Callable[..., StripeGateway],
    recorder: Any,
    save_card: Any,
    patient: Any,
    new_reference: Callable[[], str],
) -> None:
    gateway = make_gateway(http_client=recorder)
    customer = new_reference()
    method = await save_card(gateway, customer, patient.DECLINED_CARD)
    charge, key = _charge(method, customer), _key()

    with pytest.raises(Refused) as first:
        await gateway.charge_saved_method(charge, key)
    with pytest.raises(Refused) as again:
        await gateway.charge_saved_method(charge, key)

    assert (first.value.code, first.value.message) == (
        "card_declined",
        "Your card was declined. Try another card or contact your bank.",
    )
    assert (again.value.code, again.value.message) == (first.value.code, first.value.message)
    assert len(recorder.posts("/v1/payment_intents")) == 1, "a retried decline must not hit the card again"


async def test_a_card_that_needs_its_holder_is_refused_as_authentication_required(
    gateway: StripeGateway, saved: tuple[str, str], patient: Any
) -> None:
    customer, method = saved
    stripe_customer = (await patient.raw(f"/v1/payment_methods/{method}"))["customer"]
    demanding = await patient.attach(patient.ALWAYS_AUTHENTICATE_CARD, stripe_customer)

    with pytest.raises(Refused) as refusal:
        await gateway.charge_saved_method(_charge(demanding, customer), _key())

    assert refusal.value.code == "authentication_required"
    assert refusal.value.message == "Your bank needs you to approve this payment. Sign in and pay it to approve it."


async def test_a_card_of_another_guarantor_is_refused(
    gateway: StripeGateway, saved: tuple[str, str], new_reference: Callable[[], str]
) -> None:
    _, method = saved
    with pytest.raises(Refused) as refusal:
        await gateway.charge_saved_method(_charge(method, new_reference()), _key())
    assert refusal.value.code == "method_not_owned"


async def test_a_card_attached_to_no_customer_is_not_a_saved_method(
    gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]
) -> None:
    loose = await patient.card(patient.GOOD_CARD)
    with pytest.raises(NotFound):
        await gateway.read_saved_method(loose)
    with pytest.raises(NotFound):
        await gateway.charge_saved_method(_charge(loose, new_reference()), _key())


async def test_concurrent_calls_with_one_key_charge_once(
    make_gateway: Callable[..., StripeGateway],
    recorder: Any,
    save_card: Any,
    patient: Any,
    new_reference: Callable[[], str],
) -> None:
    gateway = make_gateway(http_client=recorder)
    customer = new_reference()
    method = await save_card(gateway, customer, patient.GOOD_CARD)
    charge, key = _charge(method, customer), _key()

    payments = await asyncio.gather(*(gateway.charge_saved_method(charge, key) for _ in range(50)))

    assert len(set(payments)) == 1
    assert len(recorder.posts("/v1/payment_intents")) == 1


async def test_a_repeated_key_after_a_restart_returns_the_first_payment_without_charging(
    make_gateway: Callable[..., StripeGateway], recorder: Any, saved: tuple[str, str]
) -> None:
    customer, method = saved
    charge, key = _charge(method, customer), _key()
    first = await make_gateway().charge_saved_method(charge, key)

    again = await make_gateway(http_client=recorder).charge_saved_method(charge, key)

    assert again == first
    assert recorder.posts("/v1/payment_intents") == [], "read back, not charged again"


async def test_every_write_carries_an_idempotency_key_derived_from_the_portal_key(
    make_gateway: Callable[..., StripeGateway], recorder: Any, patient: Any, new_reference: Callable[[], str]
) -> None:
    gateway = make_gateway(http_client=recorder)
    customer = new_reference()
    request = CheckoutRequest(Money(2500), "Statement", customer, "https://portal.test/r", "https://portal.test/c")
    await gateway.start_checkout(request, "checkout-1")
    saving = await gateway.start_saving_method(SaveMethodRequest(customer, "https://portal.test/s", "/"), "save-1")
    method = await patient.save(saving, patient.GOOD_CARD)
    payment = await gateway.charge_saved_method(_charge(method, customer), "installment-1")
    await gateway.refund(RefundRequest(payment.reference, Money(500), "goodwill"), "refund-1")

    keys = [(sent.path, sent.idempotency_key) for sent in recorder.sent if sent.method == "POST"]
    assert keys == [
        ("/v1/customers", f"carefront:customer:{customer}"),
        ("/v1/payment_intents", "carefront:start_checkout:checkout-1"),
        ("/v1/setup_intents", "carefront:start_saving_method:save-1"),
        ("/v1/payment_intents", "carefront:charge_saved_method:installment-1"),
        ("/v1/refunds", "carefront:refund:refund-1"),
    ]


async def test_fifty_concurrent_checkouts_with_one_key_make_one_payment_intent(
    make_gateway: Callable[..., StripeGateway], recorder: Any, new_reference: Callable[[], str]
) -> None:
    gateway = make_gateway(http_client=recorder)
    request = CheckoutRequest(
        Money(2500), "Statement", new_reference(), "https://portal.test/r", "https://portal.test/c"
    )

    checkouts = await asyncio.gather(*(gateway.start_checkout(request, "double-tap") for _ in range(50)))

    assert len(set(checkouts)) == 1
    assert (len(recorder.posts("/v1/customers")), len(recorder.posts("/v1/payment_intents"))) == (1, 1)


def test_long_portal_keys_are_hashed_to_fit_stripe() -> None:
    long_key = "k" * 300
    derived = stripe_idempotency_key("refund", long_key)
    assert len(derived) <= 255
    assert derived.startswith("carefront:refund:sha256:")
    assert derived == stripe_idempotency_key("refund", long_key)
    assert derived != stripe_idempotency_key("refund", long_key + "x")


async def test_a_payment_is_refunded_in_parts_and_never_beyond_what_was_paid(
    make_gateway: Callable[..., StripeGateway], recorder: Any, saved: tuple[str, str]
) -> None:
    gateway = make_gateway(http_client=recorder)
    payment = await _paid(gateway, saved, 5000)

    first = await gateway.refund(RefundRequest(payment.reference, Money(2000), "overpaid"), "refund-a")
    assert (first.payment_reference, first.amount, first.status) == (
        payment.reference,
        Money(2000),
        PaymentStatus.SUCCEEDED,
    )
    with pytest.raises(Refused) as too_much:
        await gateway.refund(RefundRequest(payment.reference, Money(3001), "too much"), f"refund-{uuid.uuid4()}")
    assert too_much.value.code == "refund_exceeds_payment"
    rest = await gateway.refund(RefundRequest(payment.reference, Money(3000), "the rest"), "refund-b")
    assert rest.amount == Money(3000)
    with pytest.raises(Refused):
        await gateway.refund(RefundRequest(payment.reference, Money(1), "one more cent"), f"refund-{uuid.uuid4()}")

    assert await gateway.refund(RefundRequest(payment.reference, Money(2000), "overpaid"), "refund-a") == first
    refunds = recorder.posts("/v1/refunds")
    assert [sent.idempotency_key for sent in refunds] == ["carefront:refund:refund-a", "carefront:refund:refund-b"]
    assert [sent.form["amount"] for sent in refunds] == [["2000"], ["3000"]]


async def test_refunds_of_unpaid_or_foreign_currency_payments_are_refused(
    gateway: StripeGateway, saved: tuple[str, str], new_reference: Callable[[], str]
) -> None:
    request = CheckoutRequest(
        Money(2500), "Statement", new_reference(), "https://portal.test/r", "https://portal.test/c"
    )
    unpaid = await gateway.start_checkout(request, _key())
    with pytest.raises(Refused) as refusal:
        await gateway.refund(RefundRequest(unpaid.reference, Money(100), "test"), _key())
    assert refusal.value.code == "not_refundable"

    paid = await _paid(gateway, saved)
    with pytest.raises(Refused) as refusal:
        await gateway.refund(RefundRequest(paid.reference, Money(100, "EUR"), "test"), _key())
    assert refusal.value.code == "invalid_amount"
    with pytest.raises(Refused) as refusal:
        await gateway.refund(RefundRequest(paid.reference, Money(0), "test"), _key())
    assert refusal.value.code == "refund_exceeds_payment"


async def test_a_refusal_found_before_stripe_acts_does_not_stick_to_the_key(
    gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]
) -> None:
    request = CheckoutRequest(
        Money(2500), "Statement", new_reference(), "https://portal.test/r", "https://portal.test/c"
    )
    checkout = await gateway.start_checkout(request, _key())
    refund, key = RefundRequest(checkout.reference, Money(2500), "duplicate payment"), _key()
    with pytest.raises(Refused) as early:
        await gateway.refund(refund, key)
    assert early.value.code == "not_refundable"

    await patient.pay(checkout, patient.GOOD_CARD)

    # As at Stripe, only what was attempted is kept under a key; the checks run again.
    assert (await gateway.refund(refund, key)).amount == Money(2500)
