"""Translating what real Stripe sends and localstripe does not: decline codes, off-session
authentication errors, error classes, and objects whose expandable fields are bare ids."""

from __future__ import annotations

from typing import Any

import pytest
import stripe
from carefront_sdk.errors import Refused, Unavailable
from carefront_sdk.models import Money, PaymentStatus
from carefront_stripe.translate import payment_from_charge, payment_from_intent, saved_method_from, vendor_error


def _card_error(code: str, decline_code: str | None = None) -> stripe.CardError:
    body = {"error": {"type": "card_error", "code": code, "decline_code": decline_code, "message": "Stripe's text"}}
    return stripe.CardError("Stripe's text", None, code, http_status=402, json_body=body)


@pytest.mark.parametrize(
    ("code", "decline_code", "refusal", "message"),
    [
        ("card_declined", "insufficient_funds", "card_declined", "Your card has insufficient funds. Try another card."),
        (
            "card_declined",
            "generic_decline",
            "card_declined",
            "Your card was declined. Try another card or contact your bank.",
        ),
        # Stripe asks that a lost or stolen card read as a plain decline.
        (
            "card_declined",
            "stolen_card",
            "card_declined",
            "Your card was declined. Try another card or contact your bank.",
        ),
        ("expired_card", None, "card_declined", "Your card has expired. Try another card."),
        ("incorrect_cvc", None, "card_declined", "The card's security code is incorrect."),
        (
            "authentication_required",
            "authentication_required",
            "authentication_required",
            "Your bank needs you to approve this payment. Sign in and pay it to approve it.",
        ),
        (
            "card_declined",
            "authentication_required",
            "authentication_required",
            "Your bank needs you to approve this payment. Sign in and pay it to approve it.",
        ),
    ],
)
def test_card_errors_are_refusals_with_a_message_for_the_patient(
    code: str, decline_code: str | None, refusal: str, message: str
) -> None:
    error = vendor_error(_card_error(code, decline_code), "charge saved method")
    assert isinstance(error, Refused)
    assert (error.code, error.message) == (refusal, message)


def test_amount_and_refund_rules_are_refusals() -> None:
    too_small = stripe.InvalidRequestError(
        "Amount must be at least $0.50 usd", "amount", "amount_too_small", http_status=400
    )
    refunded = stripe.InvalidRequestError(
        "Charge ch_1 has already been refunded.", None, "charge_already_refunded", http_status=400
    )
    for error, code in ((too_small, "invalid_amount"), (refunded, "refund_exceeds_payment")):
        translated = vendor_error(error, "refund")
        assert isinstance(translated, Refused)
        assert translated.code == code


@pytest.mark.parametrize(
    ("error", "detail"),
    [
        (
            stripe.AuthenticationError("Invalid API Key provided: sk_live_****abcd", http_status=401),
            "stripe refund: AuthenticationError, HTTP 401",
        ),
        (
            stripe.PermissionError("The provided key does not have access", http_status=403),
            "stripe refund: PermissionError, HTTP 403",
        ),
        (
            stripe.IdempotencyError(
                "Keys for idempotent requests can only be used with the same parameters", http_status=400
            ),
            "stripe refund: IdempotencyError, HTTP 400",
        ),
        (
            stripe.InvalidRequestError("No such customer: 'cus_x'", "customer", "resource_missing", http_status=404),
            "stripe refund: InvalidRequestError, HTTP 404, code resource_missing",
        ),
        (stripe.APIConnectionError("Network error"), "stripe refund: APIConnectionError"),
    ],
)
def test_other_errors_are_unavailable_without_stripes_message(error: stripe.StripeError, detail: str) -> None:
    translated = vendor_error(error, "refund")
    assert isinstance(translated, Unavailable)
    assert translated.detail == detail


def _real_intent(**changes: Any) -> dict[str, Any]:
    """A PaymentIntent as Stripe returns it without expansions (ids, not objects)."""
    intent = {
        "id": "pi_3Qabc",
        "object": "payment_intent",
        "amount": 12550,
        "currency": "usd",
        "status": "succeeded",
        "customer": "cus_R1",
        "payment_method": "pm_1Qdef",
        "latest_charge": "ch_3Qabc",
        "last_payment_error": None,
        "metadata": {"carefront_flow": "off_session", "carefront_customer_reference": "guarantor-1"},
    }
    return {**intent, **changes}


def test_an_intent_with_bare_ids_still_reads_as_a_payment() -> None:
    payment = payment_from_intent(_real_intent())
    assert (payment.reference, payment.status, payment.amount) == ("pi_3Qabc", PaymentStatus.SUCCEEDED, Money(12550))
    assert (payment.method, payment.method_summary, payment.checkout_reference) == (None, None, None)


def test_statuses_of_stripe_that_localstripe_never_reaches() -> None:
    assert payment_from_intent(_real_intent(status="processing")).status is PaymentStatus.PENDING
    assert payment_from_intent(_real_intent(status="requires_capture")).status is PaymentStatus.PENDING
    failed = payment_from_intent(
        _real_intent(
            status="requires_payment_method",
            last_payment_error={"code": "card_declined", "decline_code": "insufficient_funds"},
        )
    )
    assert (failed.status, failed.failure_message) == (
        PaymentStatus.FAILED,
        "Your card has insufficient funds. Try another card.",
    )


def test_wallets_and_bank_accounts_are_named_as_the_patient_knows_them() -> None:
    wallet = {
        "id": "pm_1",
        "type": "card",
        "card": {"brand": "mastercard", "last4": "4444", "wallet": {"type": "apple_pay"}},
    }
    bank = {
        "id": "pm_2",
        "type": "us_bank_account",
        "us_bank_account": {"bank_name": "STRIPE TEST BANK", "last4": "6789"},
    }
    paid_by_wallet = payment_from_intent(_real_intent(payment_method=wallet))
    paid_by_bank = payment_from_intent(_real_intent(payment_method=bank, status="processing"))
    assert (paid_by_wallet.method, paid_by_wallet.method_summary) == ("wallet", "Mastercard ending 4444")
    assert (paid_by_bank.method, paid_by_bank.method_summary, paid_by_bank.status) == (
        "ach",
        "STRIPE TEST BANK ending 6789",
        PaymentStatus.PENDING,
    )


def test_a_charge_names_its_payment_and_card() -> None:
    charge = {
        "id": "ch_3Qabc",
        "amount": 12550,
        "currency": "usd",
        "status": "succeeded",
        "payment_intent": "pi_3Qabc",
        "payment_method_details": {"type": "card", "card": {"brand": "amex", "last4": "0005"}},
    }
    payment = payment_from_charge(charge)
    assert (payment.reference, payment.method_summary) == ("pi_3Qabc", "American Express ending 0005")


def test_a_method_of_a_deleted_or_foreign_customer_is_no_saved_method() -> None:
    method = {
        "id": "pm_1",
        "type": "card",
        "card": {"brand": "visa", "last4": "4242", "exp_month": 3, "exp_year": 2031},
    }
    ours = {"id": "cus_1", "metadata": {"carefront_customer_reference": "guarantor-1"}}
    saved = saved_method_from({**method, "customer": ours})
    assert saved is not None
    assert (saved.customer_reference, saved.expires) == ("guarantor-1", "03/2031")
    assert saved_method_from({**method, "customer": {"id": "cus_1", "deleted": True}}) is None
    assert saved_method_from({**method, "customer": {"id": "cus_2", "metadata": {}}}) is None
    assert saved_method_from({**method, "customer": None}) is None
