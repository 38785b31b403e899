"""Starting a payment: the ledger row first, under the form's idempotency key, then the gateway.

``begin`` writes the row (or finds the one a concurrent or repeated submit wrote) before anything
reaches the gateway; ``start_checkout`` asks the gateway with the row's key, so every submit of one
form gets the same checkout (PROMISES.md 10). The checkout request is built from the row alone, so
a repeat is byte for byte the request the gateway already answered.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carefront_sdk.models import Checkout, CheckoutRequest, Money

from portal.payments.tables import PaymentAttempt
from portal.plugin_host import PluginHost
from portal.settings import Settings

RETURN_PATH = "/pay/return/{payment_id}"
_REFERENCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I: read out on the phone


@dataclass(frozen=True, slots=True)
class Payer:
    """Who is at the keyboard: an account (the patient's own or a proxy's), a guest, or a pay link."""

    kind: str
    """account, guest or pay_link."""
    account_id: str | None = None
    pay_link_id: str | None = None
    language: str = "en"
    receipt_email: str | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """What one submit of the pay form asks for."""

    patient_id: str
    amount: Money
    statement_id: str | None
    payer: Payer


@dataclass(frozen=True, slots=True)
class Begun:
    attempt: dict[str, Any]
    matches: bool
    """False when the form's key was already used for a different amount or statement."""


def new_reference_number() -> str:
    """A receipt's reference, e.g. ``P7KQ-M2XD-9T``."""
    letters = "".join(secrets.choice(_REFERENCE_ALPHABET) for _ in range(10))
    return f"{letters[:4]}-{letters[4:8]}-{letters[8:]}"


def customer_reference(settings: Settings, patient_id: str) -> str:
    """The gateway's customer for a patient's guarantor account: opaque, stable, never the EHR's id."""
    digest = hmac.new(settings.secret_key.encode(), f"gateway-customer:{patient_id}".encode(), hashlib.sha256)
    return "cf_" + base64.b32encode(digest.digest()[:15]).decode().lower()


async def begin(intent: Intent, idempotency_key: str, *, now: datetime) -> Begun:
    """The attempt for ``idempotency_key``: written now, or the one an earlier submit wrote."""
    await (
        PaymentAttempt.insert(
            PaymentAttempt(
                public_id=uuid.uuid4(),
                idempotency_key=idempotency_key,
                reference_number=new_reference_number(),
                patient_id=intent.patient_id,
                statement_id=intent.statement_id,
                amount=intent.amount.amount,
                currency=intent.amount.currency,
                status="open",
                payer_kind=intent.payer.kind,
                payer_account_id=intent.payer.account_id,
                pay_link_id=intent.payer.pay_link_id,
                language=intent.payer.language,
                receipt_email=intent.payer.receipt_email,
                created_at=now,
            )
        )
        .on_conflict(target=PaymentAttempt.idempotency_key, action="DO NOTHING")
        .run()
    )
    attempt = await PaymentAttempt.select().where(PaymentAttempt.idempotency_key == idempotency_key).first().run()
    assert attempt is not None  # inserted above, or by the submit that won the race
    matches = (
        attempt["patient_id"] == intent.patient_id
        and attempt["statement_id"] == intent.statement_id
        and attempt["amount"] == intent.amount.amount
        and attempt["currency"] == intent.amount.currency
    )
    return Begun(attempt, matches)


def checkout_request(settings: Settings, attempt: dict[str, Any], description: str) -> CheckoutRequest:
    """The gateway request for ``attempt``; the same row always gives the same request."""
    return_url = settings.public_url + RETURN_PATH.format(payment_id=attempt["public_id"])
    return CheckoutRequest(
        amount=Money(attempt["amount"], attempt["currency"]),
        description=description,
        customer_reference=customer_reference(settings, attempt["patient_id"]),
        return_url=return_url,
        cancel_url=return_url + "?cancelled=1",
        metadata={"carefront_payment": str(attempt["public_id"]), "carefront_reference": attempt["reference_number"]},
    )


async def start_checkout(host: PluginHost, settings: Settings, attempt: dict[str, Any], description: str) -> Checkout:
    """Ask the gateway for the attempt's checkout (with the attempt's key) and remember its reference."""
    checkout = await host.gateway.start_checkout(
        checkout_request(settings, attempt, description), idempotency_key=attempt["idempotency_key"]
    )
    await (
        PaymentAttempt.update({PaymentAttempt.checkout_reference: checkout.reference})
        .where((PaymentAttempt.id == attempt["id"]) & PaymentAttempt.checkout_reference.is_null())
        .run()
    )
    return checkout


async def find(public_id: str) -> dict[str, Any] | None:
    """An attempt by its public id; None for a malformed or unknown id."""
    try:
        wanted = uuid.UUID(public_id)
    except ValueError:
        return None
    row: dict[str, Any] | None = await PaymentAttempt.select().where(PaymentAttempt.public_id == wanted).first().run()
    return row
