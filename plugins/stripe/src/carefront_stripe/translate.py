"""Stripe's objects and errors in the SDK's words: payments, saved methods, refunds and the three tiers.

Every function here is pure: it takes a Stripe object as the plain ``dict`` the API returned (or an
exception) and gives back an SDK model or error. Nothing here keeps or logs what it reads; card
details are reduced to brand, last four digits and expiry.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import stripe
from carefront_sdk.errors import Refused, Unavailable
from carefront_sdk.models import Checkout, CheckoutKind, Money, Payment, PaymentStatus, Refund, SavedMethod

__all__ = [
    "CUSTOMER_KEY",
    "DESCRIPTION_KEY",
    "FLOW_KEY",
    "SAVE_KEY",
    "CardRefusal",
    "Flow",
    "card_refusal",
    "checkout_from_intent",
    "decline_message",
    "payment_from_charge",
    "payment_from_intent",
    "payment_from_setup_intent",
    "refund_from",
    "saved_method_from",
    "vendor_error",
]

CUSTOMER_KEY = "carefront_customer_reference"
"""Metadata key holding the portal's opaque payer reference, on Customers and on every intent."""
FLOW_KEY = "carefront_flow"
"""Metadata key telling which adapter call made an intent (a :class:`Flow` value)."""
SAVE_KEY = "carefront_save_method"
"""Metadata key, "true" on a checkout that also keeps the card for autopay."""
DESCRIPTION_KEY = "carefront_description"
"""Metadata key holding the checkout's description."""


class Flow(enum.StrEnum):
    """Values of :data:`FLOW_KEY`."""

    CHECKOUT = "checkout"
    OFF_SESSION = "off_session"
    SAVE_METHOD = "save_method"


_BRANDS = {
    "amex": "American Express",
    "cartes_bancaires": "Cartes Bancaires",
    "diners": "Diners Club",
    "discover": "Discover",
    "eftpos_au": "eftpos",
    "interac": "Interac",
    "jcb": "JCB",
    "mastercard": "Mastercard",
    "unionpay": "UnionPay",
    "visa": "Visa",
}

# Patient-facing text by Stripe decline code or error code. Codes Stripe asks merchants not to reveal
# (lost_card, stolen_card, fraudulent, pickup_card ...) are deliberately absent: they read as a plain decline.
_DECLINE_MESSAGES = {
    "insufficient_funds": "Your card has insufficient funds. Try another card.",
    "expired_card": "Your card has expired. Try another card.",
    "incorrect_cvc": "The card's security code is incorrect.",
    "invalid_cvc": "The card's security code is incorrect.",
    "incorrect_number": "The card number is incorrect.",
    "invalid_number": "The card number is incorrect.",
    "invalid_expiry_month": "The card's expiration date is incorrect.",
    "invalid_expiry_year": "The card's expiration date is incorrect.",
    "incorrect_zip": "The card's ZIP code is incorrect.",
    "processing_error": "Your card could not be processed. Try again in a moment.",
    "try_again_later": "Your card could not be processed. Try again in a moment.",
    "card_velocity_exceeded": "Your card has reached its limit. Try another card or contact your bank.",
    "withdrawal_count_limit_exceeded": "Your card has reached its limit. Try another card or contact your bank.",
    "card_not_supported": "This card cannot be used for this payment. Try another card.",
    "currency_not_supported": "This card cannot pay in this currency. Try another card.",
    "authentication_required": "Your bank needs you to approve this payment. Sign in and pay it to approve it.",
    "payment_intent_authentication_failure": "Your bank could not verify your card. Try again or use another card.",
    "setup_intent_authentication_failure": "Your bank could not verify your card. Try again or use another card.",
}
_DECLINED = "Your card was declined. Try another card or contact your bank."

_AMOUNT_CODES = {"amount_too_small", "amount_too_large"}
_REFUND_CODES = {"charge_already_refunded", "refund_exceeds_charge"}


# --- Errors --------------------------------------------------------------------------------------


def decline_message(error: Mapping[str, Any]) -> str:
    """What the patient reads for a Stripe ``last_payment_error`` or card error object."""
    for code in (error.get("decline_code"), error.get("code")):
        if isinstance(code, str) and code in _DECLINE_MESSAGES:
            return _DECLINE_MESSAGES[code]
    return _DECLINED


class CardRefusal(Refused):
    """A refusal by the card's bank: the attempt happened at Stripe, so a repeated idempotency key
    must meet it again. (A refusal found before asking Stripe to act is not kept: Stripe does not
    keep its validation errors under a key either, so the same call may succeed later.)"""


def _needs_authentication(error: Mapping[str, Any]) -> bool:
    return "authentication_required" in (error.get("decline_code"), error.get("code"))


def card_refusal(error: Mapping[str, Any]) -> CardRefusal:
    """The refusal for a card that was declined or needs its holder: ``authentication_required``
    when the bank wants the patient present (3-D Secure), ``card_declined`` otherwise."""
    code = "authentication_required" if _needs_authentication(error) else "card_declined"
    return CardRefusal(code, decline_message(error))


def _error_object(error: stripe.StripeError) -> dict[str, Any]:
    return error.error.to_dict() if error.error is not None else {"code": error.code}


def _retry_after(error: stripe.StripeError) -> float | None:
    headers = {name.lower(): value for name, value in (error.headers or {}).items()}
    value = headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def vendor_error(error: stripe.StripeError, operation: str) -> Refused | Unavailable:
    """Translate a Stripe exception met during ``operation``.

    Card errors and the amount rules the patient can act on become :class:`Refused`; everything
    else is :class:`Unavailable` with a detail naming the error class, HTTP status, Stripe's code
    and request id (never the message, which may echo parameters).
    """
    if isinstance(error, stripe.CardError):
        return card_refusal(_error_object(error))
    if isinstance(error, stripe.InvalidRequestError) and error.code in _AMOUNT_CODES:
        return Refused("invalid_amount", "That amount cannot be charged. Enter a different amount.")
    if isinstance(error, stripe.InvalidRequestError) and error.code in _REFUND_CODES:
        return Refused("refund_exceeds_payment", "The refund is more than what is left of the payment.")
    parts = [f"stripe {operation}: {type(error).__name__}"]
    if error.http_status is not None:
        parts.append(f"HTTP {error.http_status}")
    if error.code:
        parts.append(f"code {error.code}")
    if error.request_id:
        parts.append(f"request {error.request_id}")
    retry_after = _retry_after(error) if isinstance(error, stripe.RateLimitError) else None
    return Unavailable(", ".join(parts), retry_after=retry_after)


# --- Objects -------------------------------------------------------------------------------------


def _money(amount: Any, currency: Any) -> Money:
    return Money(int(amount), str(currency).upper())


def _expanded(value: Any) -> Mapping[str, Any] | None:
    """An expandable field's object, or None when Stripe sent only its id (or nothing)."""
    return value if isinstance(value, Mapping) else None


def _id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        return str(value["id"])
    return None if value is None else str(value)


def _brand(name: Any) -> str:
    return _BRANDS.get(str(name or "").lower(), "Card")


def _card_kind(card: Mapping[str, Any]) -> str:
    # A card paid through Apple Pay or Google Pay reports the wallet it came from.
    return "wallet" if card.get("wallet") else "card"


def _details(method_type: Any, details: Mapping[str, Any]) -> tuple[str, str]:
    """``(method, summary)`` from a PaymentMethod or a charge's ``payment_method_details``."""
    kind = str(method_type or "")
    if kind == "card" and isinstance(details.get("card"), Mapping):
        card = details["card"]
        return _card_kind(card), f"{_brand(card.get('brand'))} ending {card.get('last4')}"
    if kind == "us_bank_account" and isinstance(details.get("us_bank_account"), Mapping):
        account = details["us_bank_account"]
        return "ach", f"{account.get('bank_name') or 'Bank account'} ending {account.get('last4')}"
    return kind or "unknown", kind.replace("_", " ").capitalize()


def _method(payment_method: Any, charge: Any) -> tuple[str | None, str | None]:
    method = _expanded(payment_method)
    if method is not None:
        return _details(method.get("type"), method)
    paid_with = _expanded(charge)
    details = _expanded(paid_with.get("payment_method_details")) if paid_with else None
    if details is not None:
        return _details(details.get("type"), details)
    return None, None


def _intent_status(status: Any, error: Any) -> PaymentStatus:
    if status == "succeeded":
        return PaymentStatus.SUCCEEDED
    if status == "canceled":
        return PaymentStatus.CANCELED
    if status == "requires_action":
        return PaymentStatus.REQUIRES_ACTION
    if status == "requires_payment_method" and error:
        # The last attempt failed; the patient may try again with another card.
        return PaymentStatus.FAILED
    return PaymentStatus.PENDING


def payment_from_intent(intent: Mapping[str, Any]) -> Payment:
    """A PaymentIntent as a :class:`Payment` (``payment_method`` and ``latest_charge`` may be expanded)."""
    metadata = intent.get("metadata") or {}
    error = intent.get("last_payment_error")
    status = _intent_status(intent.get("status"), error)
    method, summary = _method(intent.get("payment_method"), intent.get("latest_charge"))
    saved = status is PaymentStatus.SUCCEEDED and metadata.get(SAVE_KEY) == "true"
    return Payment(
        reference=str(intent["id"]),
        status=status,
        amount=_money(intent["amount"], intent["currency"]),
        method=method,
        method_summary=summary,
        failure_message=decline_message(error) if status is PaymentStatus.FAILED and error else None,
        saved_method_reference=_id(intent.get("payment_method")) if saved else None,
        checkout_reference=str(intent["id"]) if metadata.get(FLOW_KEY) == Flow.CHECKOUT else None,
    )


def payment_from_setup_intent(setup: Mapping[str, Any], currency: str) -> Payment:
    """A SetupIntent as a zero-amount :class:`Payment` in ``currency``: nothing is charged when a
    method is saved, and the saved method's reference appears once the patient has finished."""
    error = setup.get("last_setup_error")
    status = _intent_status(setup.get("status"), error)
    method, summary = _method(setup.get("payment_method"), None)
    return Payment(
        reference=str(setup["id"]),
        status=status,
        amount=Money(0, currency),
        method=method,
        method_summary=summary,
        failure_message=decline_message(error) if status is PaymentStatus.FAILED and error else None,
        saved_method_reference=_id(setup.get("payment_method")) if status is PaymentStatus.SUCCEEDED else None,
        checkout_reference=str(setup["id"]),
    )


def payment_from_charge(charge: Mapping[str, Any]) -> Payment:
    """The payment a Charge belongs to (by its PaymentIntent's id), as the charge reports it."""
    method, summary = _method(None, charge)
    return Payment(
        reference=_id(charge.get("payment_intent")) or str(charge["id"]),
        status=PaymentStatus.SUCCEEDED if charge.get("status") == "succeeded" else PaymentStatus.FAILED,
        amount=_money(charge["amount"], charge["currency"]),
        method=method,
        method_summary=summary,
    )


def checkout_from_intent(intent: Mapping[str, Any], publishable_key: str) -> Checkout:
    """A Payment Element checkout for a PaymentIntent or SetupIntent."""
    return Checkout(
        reference=str(intent["id"]),
        kind=CheckoutKind.ELEMENT,
        client_secret=str(intent["client_secret"]),
        publishable_key=publishable_key,
    )


def saved_method_from(method: Mapping[str, Any]) -> SavedMethod | None:
    """A PaymentMethod (``customer`` expanded) as a :class:`SavedMethod`; None unless it is attached
    to a Customer this adapter made."""
    customer = _expanded(method.get("customer"))
    reference = (customer.get("metadata") or {}).get(CUSTOMER_KEY) if customer and not customer.get("deleted") else None
    if not reference:
        return None
    card = _expanded(method.get("card"))
    expires = None
    if card is not None and card.get("exp_month") and card.get("exp_year"):
        expires = f"{int(card['exp_month']):02d}/{int(card['exp_year'])}"
    return SavedMethod(
        reference=str(method["id"]),
        customer_reference=str(reference),
        summary=_details(method.get("type"), method)[1],
        expires=expires,
    )


_REFUND_STATUSES = {
    "succeeded": PaymentStatus.SUCCEEDED,
    "failed": PaymentStatus.FAILED,
    "canceled": PaymentStatus.CANCELED,
}


def refund_from(refund: Mapping[str, Any]) -> Refund:
    return Refund(
        reference=str(refund["id"]),
        payment_reference=_id(refund.get("payment_intent")) or str(refund["charge"]),
        amount=_money(refund["amount"], refund["currency"]),
        status=_REFUND_STATUSES.get(str(refund.get("status")), PaymentStatus.PENDING),
    )
