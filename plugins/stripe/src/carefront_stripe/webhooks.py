"""Stripe webhooks: checking the ``Stripe-Signature`` header against the raw body, and reading events.

Stripe signs ``"<t>.<raw body>"`` with HMAC-SHA256 under the endpoint's signing secret and sends
``Stripe-Signature: t=<unix time>,v1=<hex>[,v1=<hex>...]`` (several ``v1`` while a secret is being
rolled). The signature is checked by the official library's ``WebhookSignature.verify_header``; the
timestamp is then checked against the adapter's clock, not the machine's, so tests can move time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from carefront_sdk.errors import WebhookRejected

__all__ = ["SIGNATURE_HEADER", "StripeEvent", "read_event", "verify_signature"]

SIGNATURE_HEADER = "Stripe-Signature"


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """The parts of a verified Stripe event the adapter reads."""

    id: str
    type: str
    created_at: datetime
    object: Mapping[str, Any]
    """``data.object``: the PaymentIntent, SetupIntent, Charge ... as it was when the event happened."""


def _signature_header(headers: Mapping[str, str]) -> str | None:
    wanted = SIGNATURE_HEADER.lower()
    return next((value for name, value in headers.items() if name.lower() == wanted), None)


def _signed_at(header: str) -> datetime:
    # The first t= item is the one the library verified the signature with.
    stamp = next(item.split("=", 1)[1] for item in header.split(",") if item.split("=", 1)[0] == "t")
    return datetime.fromtimestamp(int(stamp), UTC)


def verify_signature(
    body: bytes, headers: Mapping[str, str], secret: str, tolerance_seconds: int, now: datetime
) -> None:
    """Raise :class:`WebhookRejected` unless ``body`` carries a valid signature made within
    ``tolerance_seconds`` of ``now`` (either way: a timestamp from the future is as suspect)."""
    header = _signature_header(headers)
    if not header:
        raise WebhookRejected("no Stripe-Signature header")
    try:
        # No tolerance here: the library would compare with the machine's clock; ours follows.
        stripe.WebhookSignature.verify_header(body, header, secret)
    except stripe.SignatureVerificationError:
        raise WebhookRejected("the Stripe-Signature does not match the body") from None
    except UnicodeDecodeError:
        raise WebhookRejected("the body is not UTF-8") from None
    if abs((now - _signed_at(header)).total_seconds()) > tolerance_seconds:
        raise WebhookRejected("the signature's timestamp is outside the tolerance")


def read_event(body: bytes) -> StripeEvent:
    """The event in a verified body; :class:`WebhookRejected` when it is not a Stripe event."""
    try:
        event = json.loads(body)
        return StripeEvent(
            id=_text(event["id"]),
            type=_text(event["type"]),
            created_at=datetime.fromtimestamp(int(event["created"]), UTC),
            object=_mapping(event["data"]["object"]),
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise WebhookRejected("the body is not a Stripe event") from None


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError("expected an object")
    return value
