"""Paying on the Payment Element and saving a card for autopay, against localstripe: what the portal
gets from start_checkout, start_saving_method, read_payment and read_saved_method at each step."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from carefront_sdk.errors import NotFound, Refused
from carefront_sdk.models import (
    CheckoutKind,
    CheckoutRequest,
    Money,
    OffSessionCharge,
    PaymentStatus,
    SaveMethodRequest,
)
from carefront_stripe.gateway import StripeGateway
from carefront_stripe.translate import CUSTOMER_KEY, DESCRIPTION_KEY, FLOW_KEY

PUBLIC_URL = "https://portal.test"


def _request(customer: str, amount: int = 2500, *, save: bool = False, **metadata: str) -> CheckoutRequest:
    return CheckoutRequest(
        amount=Money(amount),
        description="Statement 2025-02 balance",
        customer_reference=customer,
        return_url=f"{PUBLIC_URL}/payments/return",
        cancel_url=f"{PUBLIC_URL}/payments",
        save_method=save,
        metadata=metadata,
    )


def _key() -> str:
    return f"pay-{uuid.uuid4().hex}"


async def test_a_checkout_is_a_payment_element_on_a_payment_intent(
    gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]
) -> None:
    customer = new_reference()
    checkout = await gateway.start_checkout(_request(customer, payment_id="pay-77"), _key())

    assert checkout.kind is CheckoutKind.ELEMENT
    assert checkout.reference.startswith("pi_")
    assert checkout.client_secret is not None
    assert checkout.client_secret.startswith(f"{checkout.reference}_secret_")
    assert checkout.publishable_key == "pk_test_carefront"
    assert checkout.url is None
    intent = await patient.raw(f"/v1/payment_intents/{checkout.reference}")
    assert (intent["amount"], intent["currency"]) == (2500, "usd")
    assert intent["metadata"] == {
        "payment_id": "pay-77",
        CUSTOMER_KEY: customer,
        FLOW_KEY: "checkout",
        DESCRIPTION_KEY: "Statement 2025-02 balance",
    }
    stored = await patient.raw(f"/v1/customers/{intent['customer']}")
    assert stored["metadata"] == {CUSTOMER_KEY: customer}
    assert (stored["email"], stored["name"], stored["phone"]) == (None, None, None), "nothing about the patient"


async def test_paying_with_a_good_card_succeeds(
    gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]
) -> None:
    checkout = await gateway.start_checkout(_request(new_reference()), _key())
    pending = await gateway.read_payment(checkout.reference)
    assert (pending.status, pending.amount, pending.method_summary) == (PaymentStatus.PENDING, Money(2500), None)

    await patient.pay(checkout, patient.GOOD_CARD)

    paid = await gateway.read_payment(checkout.reference)
    assert paid.status is PaymentStatus.SUCCEEDED
    assert (paid.method, paid.method_summary) == ("card", "Visa ending 4242")
    assert paid.checkout_reference == checkout.reference
    assert paid.saved_method_reference is None, "the card was not to be kept"


async def test_a_declined_card_reads_as_failed_with_a_message_for_the_patient(
    gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]
) -> None:
    checkout = await gateway.start_checkout(_request(new_reference()), _key())

    await patient.pay(checkout, patient.DECLINED_CARD)
    failed = await gateway.read_payment(checkout.reference)
    assert failed.status is PaymentStatus.FAILED
    assert failed.failure_message == "Your card was declined. Try another card or contact your bank."
    # Stripe lets the element try another card on the same intent; localstripe cannot (README, limits).


async def test_three_d_secure_needs_action_then_succeeds_when_the_bank_approves(
    gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]
) -> None:
    checkout = await gateway.start_checkout(_request(new_reference()), _key())
    await patient.pay(checkout, patient.THREE_D_SECURE_CARD)
    assert (await gateway.read_payment(checkout.reference)).status is PaymentStatus.REQUIRES_ACTION

    await patient.authenticate(checkout, approve=True)

    assert (await gateway.read_payment(checkout.reference)).status is PaymentStatus.SUCCEEDED


async def test_three_d_secure_refused_by_the_bank_reads_as_failed(
    gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]
) -> None:
    checkout = await gateway.start_checkout(_request(new_reference()), _key())
    await patient.pay(checkout, patient.THREE_D_SECURE_CARD)

    await patient.authenticate(checkout, approve=False)

    failed = await gateway.read_payment(checkout.reference)
    assert failed.status is PaymentStatus.FAILED
    assert failed.failure_message == "Your bank could not verify your card. Try again or use another card."


async def test_a_checkout_that_keeps_the_card_reports_it_and_it_can_pay_installments(
    gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]
) -> None:
    customer = new_reference()
    checkout = await gateway.start_checkout(_request(customer, save=True), _key())
    await patient.pay(checkout, patient.GOOD_CARD, keep=True)

    paid = await gateway.read_payment(checkout.reference)
    assert paid.status is PaymentStatus.SUCCEEDED
    assert paid.saved_method_reference is not None
    method = await gateway.read_saved_method(paid.saved_method_reference)
    assert (method.customer_reference, method.summary, method.expires) == (customer, "Visa ending 4242", "12/2030")
    installment = OffSessionCharge(method.reference, customer, Money(1000), "Plan installment 1 of 6")
    assert (await gateway.charge_saved_method(installment, _key())).status is PaymentStatus.SUCCEEDED


async def test_saving_a_card_is_a_setup_intent_that_reports_the_saved_method(
    gateway: StripeGateway, patient: Any, new_reference: Callable[[], str]
) -> None:
    customer = new_reference()
    request = SaveMethodRequest(customer, f"{PUBLIC_URL}/autopay/done", f"{PUBLIC_URL}/autopay")
    checkout = await gateway.start_saving_method(request, _key())
    assert checkout.kind is CheckoutKind.ELEMENT
    assert checkout.reference.startswith("seti_")
    assert checkout.client_secret is not None
    assert checkout.client_secret.startswith(f"{checkout.reference}_secret_")
    pending = await gateway.read_payment(checkout.reference)
    assert (pending.status, pending.amount, pending.saved_method_reference) == (PaymentStatus.PENDING, Money(0), None)

    method_id = await patient.save(checkout, patient.GOOD_CARD)

    done = await gateway.read_payment(checkout.reference)
    assert (done.status, done.amount, done.saved_method_reference) == (PaymentStatus.SUCCEEDED, Money(0), method_id)
    assert done.method_summary == "Visa ending 4242"
    saved = await gateway.read_saved_method(method_id)
    assert (saved.customer_reference, saved.summary) == (customer, "Visa ending 4242")


async def test_one_stripe_customer_per_guarantor(
    gateway: StripeGateway, make_gateway: Callable[..., StripeGateway], patient: Any, new_reference: Callable[[], str]
) -> None:
    first, other = new_reference(), new_reference()

    async def customer_of(adapter: StripeGateway, reference: str) -> str:
        checkout = await adapter.start_checkout(_request(reference), _key())
        return str((await patient.raw(f"/v1/payment_intents/{checkout.reference}"))["customer"])

    once = await customer_of(gateway, first)
    assert await customer_of(gateway, first) == once
    saving = await gateway.start_saving_method(SaveMethodRequest(first, PUBLIC_URL, PUBLIC_URL), _key())
    assert (await patient.raw(f"/v1/setup_intents/{saving.reference}"))["customer"] == once
    assert await customer_of(gateway, other) != once
    # Another process on the same data folder (or this one after a restart) finds the same customer.
    assert await customer_of(make_gateway(), first) == once


async def test_a_repeated_checkout_key_answers_with_the_first_checkout_after_a_restart(
    gateway: StripeGateway, make_gateway: Callable[..., StripeGateway], new_reference: Callable[[], str]
) -> None:
    request, key = _request(new_reference()), _key()
    first = await gateway.start_checkout(request, key)

    assert await make_gateway().start_checkout(request, key) == first


async def test_amounts_of_zero_or_less_are_refused_before_stripe_is_asked(
    make_gateway: Callable[..., StripeGateway], recorder: Any, new_reference: Callable[[], str]
) -> None:
    gateway = make_gateway(http_client=recorder)
    for amount in (0, -100):
        with pytest.raises(Refused) as refusal:
            await gateway.start_checkout(_request(new_reference(), amount), _key())
        assert refusal.value.code == "invalid_amount"
    assert recorder.sent == []


@pytest.mark.parametrize("reference", ["", "cs_test_123", "pi_", "pi_../customers", "pm_123", "seti_x/y"])
async def test_references_that_are_no_intent_are_not_found_without_asking_stripe(
    make_gateway: Callable[..., StripeGateway], recorder: Any, reference: str
) -> None:
    gateway = make_gateway(http_client=recorder)
    with pytest.raises(NotFound):
        await gateway.read_payment(reference)
    assert recorder.sent == []


async def test_well_formed_ids_stripe_does_not_know_are_not_found(
    make_gateway: Callable[..., StripeGateway], recorder: Any, new_reference: Callable[[], str]
) -> None:
    gateway = make_gateway(http_client=recorder)
    for reference in ("pi_0000000000000000", "seti_0000000000000000"):
        with pytest.raises(NotFound):
            await gateway.read_payment(reference)
    with pytest.raises(NotFound):
        await gateway.read_saved_method("pm_0000000000000000")
    charge = OffSessionCharge("pm_0000000000000000", new_reference(), Money(100), "Installment")
    with pytest.raises(NotFound):
        await gateway.charge_saved_method(charge, _key())
    assert {sent.path for sent in recorder.sent} == {
        "/v1/payment_intents/pi_0000000000000000",
        "/v1/setup_intents/seti_0000000000000000",
        "/v1/payment_methods/pm_0000000000000000",
    }, "each was asked of Stripe, which answered 404"
