"""The sandbox payment gateway, in test mode: hosted pages that take only documented test cards.

A checkout (a payment, or saving a card for later) is a row the hosted page at
``/-/sandbox/checkout/<reference>`` works on; the card number typed there is matched against
:data:`TEST_CARDS` and forgotten, keeping only brand and last four digits. Every payment,
failure, saved card and refund also records a signed-webhook-ready event in ``webhook_events``.
Webhooks carry a Stripe-style header, ``Sandbox-Signature: t=<unix>,v1=<hex HMAC-SHA256 of
"<t>.<body>">``, made by :func:`sign_webhook` and checked by ``parse_webhook``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from carefront_sdk import codec
from carefront_sdk.adapters import AdapterContext
from carefront_sdk.errors import NotFound, Refused, WebhookRejected
from carefront_sdk.models import (
    Checkout,
    CheckoutKind,
    CheckoutRequest,
    Money,
    OffSessionCharge,
    Payment,
    PaymentStatus,
    Refund,
    RefundRequest,
    SavedMethod,
    SaveMethodRequest,
    WebhookEvent,
)

from carefront_sandbox.base import SandboxAdapter

__all__ = [
    "CHECKOUT_LIFETIME",
    "FAILURES",
    "SIGNATURE_HEADER",
    "SIGNATURE_TOLERANCE_SECONDS",
    "TEST_CARDS",
    "CardForm",
    "CheckoutView",
    "Outcome",
    "SandboxGateway",
    "TestCard",
    "find_checkout",
    "make_gateway",
    "read_card_form",
    "sign_webhook",
]

SIGNATURE_HEADER = "Sandbox-Signature"
SIGNATURE_TOLERANCE_SECONDS = 300
CHECKOUT_LIFETIME = timedelta(hours=24)
"""An unfinished checkout expires after a day, as hosted checkouts do."""

FAILURES = {
    "card_declined": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
    "authentication_failed": "We could not verify your card. Try again or use another card.",
}
"""Why a test card failed: code -> the message a patient reads (the hosted pages translate the codes)."""


@dataclass(frozen=True, slots=True)
class TestCard:
    __test__ = False  # a card for testing, not a pytest test class

    number: str
    behaviour: str
    """succeeds, declined, insufficient_funds, authenticate or declines_off_session."""

    @property
    def summary(self) -> str:
        return f"Visa ending {self.number[-4:]}"


TEST_CARDS: dict[str, TestCard] = {
    card.number: card
    for card in (
        TestCard("4242424242424242", "succeeds"),
        TestCard("4000000000000002", "declined"),  # "Your card was declined."
        TestCard("4000000000009995", "insufficient_funds"),  # declines at checkout; saves, then declines later
        TestCard("4000002500003155", "authenticate"),  # 3-D Secure, whose answer the visitor picks
        TestCard("4000000000000341", "declines_off_session"),  # saves, then declines later (and at checkout)
    )
}
"""The only card numbers the test checkout accepts (the same numbers Stripe documents for testing)."""


@dataclass(frozen=True, slots=True)
class CardForm:
    """What the checkout form's fields said, once checked."""

    card: TestCard | None
    expires: str
    """MM/YYYY."""
    errors: dict[str, str]
    """Field name -> error code, e.g. ``{"number": "not_test_card"}``; empty when the form is good."""


def read_card_form(number: str, expiry: str, cvc: str, today: date) -> CardForm:
    """Check the three card fields; the number must be one of :data:`TEST_CARDS`."""
    errors: dict[str, str] = {}
    digits = "".join(number.split()).replace("-", "")
    card = TEST_CARDS.get(digits)
    if not digits:
        errors["number"] = "number_missing"
    elif card is None:
        errors["number"] = "not_test_card"
    expires = ""
    parts = "".join(expiry.split()).replace("/", "")
    if not parts:
        errors["expiry"] = "expiry_missing"
    elif not (parts.isdigit() and parts.isascii()) or len(parts) not in (4, 6) or not 1 <= int(parts[:2]) <= 12:
        errors["expiry"] = "expiry_format"
    else:
        month, year = int(parts[:2]), int(parts[2:]) + (2000 if len(parts) == 4 else 0)
        if (year, month) < (today.year, today.month):
            errors["expiry"] = "expiry_past"
        expires = f"{month:02d}/{year}"
    code = cvc.strip()
    if not (code.isdigit() and code.isascii() and len(code) in (3, 4)):
        errors["cvc"] = "cvc_format"
    return CardForm(card if not errors else None, expires, errors)


@dataclass(frozen=True, slots=True)
class CheckoutView:
    """A checkout as its hosted page shows it."""

    reference: str
    purpose: str
    """payment or setup (saving a card)."""
    amount: Money
    description: str
    status: str
    """open, requires_action, succeeded or expired."""
    cancel_url: str
    pending_card: str | None
    """The card awaiting 3-D Secure, as "Visa ending 3155"."""
    last_error: str | None
    """A :data:`FAILURES` code: why the last card tried failed."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """Where the browser goes after a card is submitted: ``redirect`` to a URL, or stay with ``error``
    (a :data:`FAILURES` code)."""

    redirect: str | None = None
    error: str | None = None


def sign_webhook(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Sandbox-Signature`` header value for ``body`` sent at unix time ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _with_checkout(url: str, reference: str) -> str:
    """``url`` with ``checkout=<reference>`` added to its query."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("checkout", reference)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _valid_url(url: str) -> bool:
    return (url.startswith("/") and not url.startswith("//")) or urlsplit(url).scheme in ("http", "https")


_CHECKOUT = (
    "reference, purpose, amount, currency, description, customer_reference, return_url, cancel_url, save_method, "
    "status, pending_card, last_error, saved_method_reference, created_at"
)
_PAYMENT = (
    "reference, checkout_reference, status, amount, currency, card, failure_message, saved_method_reference, refunded"
)


class SandboxGateway(SandboxAdapter):
    """The payment gateway port, in test mode."""

    def __init__(self, context: AdapterContext) -> None:
        super().__init__(context, "gateway")
        _LIVE[self._store.path] = weakref.ref(self)

    # Rows -------------------------------------------------------------------------------------------

    def _expired(self, row: Any) -> bool:
        return row[9] != "succeeded" and datetime.fromisoformat(row[13]) + CHECKOUT_LIFETIME < self._now()

    def _event(self, db: sqlite3.Connection, kind: str, **data: object) -> None:
        event_id = f"evt_test_{secrets.token_hex(12)}"
        now = self._now()
        body = json.dumps(
            {"id": event_id, "type": kind, "created": int(now.timestamp()), "data": codec.to_plain(data)},
            sort_keys=True,
        )
        db.execute("INSERT INTO webhook_events VALUES (?, ?, ?, ?, NULL)", (event_id, kind, body, now.isoformat()))

    def _record_payment(
        self,
        db: sqlite3.Connection,
        *,
        status: PaymentStatus,
        amount: Money,
        card: Mapping[str, str],
        customer_reference: str,
        checkout_reference: str | None = None,
        saved_method_reference: str | None = None,
        failure_message: str | None = None,
    ) -> Payment:
        payment = Payment(
            reference=f"pi_test_{secrets.token_hex(12)}",
            status=status,
            amount=amount,
            method="card",
            method_summary=card["summary"],
            failure_message=failure_message,
            saved_method_reference=saved_method_reference,
            checkout_reference=checkout_reference,
        )
        db.execute(
            "INSERT INTO gateway_payments VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (
                payment.reference,
                checkout_reference,
                status.value,
                amount.amount,
                amount.currency,
                json.dumps(card),
                failure_message,
                saved_method_reference,
                customer_reference,
                self._now().isoformat(),
            ),
        )
        self._event(db, "payment.succeeded" if status is PaymentStatus.SUCCEEDED else "payment.failed", payment=payment)
        return payment

    def _save_method(self, db: sqlite3.Connection, customer_reference: str, card: Mapping[str, str]) -> SavedMethod:
        method = SavedMethod(f"pm_test_{secrets.token_hex(12)}", customer_reference, card["summary"], card["expires"])
        db.execute(
            "INSERT INTO saved_methods VALUES (?, ?, ?, ?, ?)",
            (method.reference, customer_reference, json.dumps(card), method.expires, self._now().isoformat()),
        )
        self._event(db, "method.saved", saved_method=method)
        return method

    def _payment_row(self, row: Any) -> Payment:
        card = json.loads(row[5])
        return Payment(
            reference=row[0],
            status=PaymentStatus(row[2]),
            amount=Money(row[3], row[4]),
            method="card",
            method_summary=card["summary"],
            failure_message=row[6],
            saved_method_reference=row[7],
            checkout_reference=row[1],
        )

    # Starting ---------------------------------------------------------------------------------------

    async def _start(
        self, operation: str, key: str, request: object, purpose: str, checkout: CheckoutRequest
    ) -> Checkout:
        if not (_valid_url(checkout.return_url) and _valid_url(checkout.cancel_url)):
            raise Refused("invalid_url", "The return and cancel addresses must be http(s) URLs or paths.")

        def work(db: sqlite3.Connection) -> Checkout:
            reference = f"cs_test_{secrets.token_urlsafe(24)}"
            db.execute(
                "INSERT INTO checkouts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', NULL, NULL, NULL, ?)",
                (
                    reference,
                    purpose,
                    checkout.amount.amount,
                    checkout.amount.currency,
                    checkout.description,
                    checkout.customer_reference,
                    checkout.return_url,
                    checkout.cancel_url,
                    int(checkout.save_method),
                    json.dumps(dict(checkout.metadata), sort_keys=True),
                    self._now().isoformat(),
                ),
            )
            url = f"{self._public_url}/-/sandbox/checkout/{reference}"
            return Checkout(reference=reference, kind=CheckoutKind.REDIRECT, url=url)

        started: Checkout = await self._store.once(operation, key, request, Checkout, work)
        return started

    async def start_checkout(self, request: CheckoutRequest, idempotency_key: str) -> Checkout:
        """A hosted test checkout page to send the browser to."""
        await self._pause()
        if request.amount.amount <= 0:
            raise Refused("invalid_amount", "A payment must be more than zero.")
        return await self._start("gateway.start_checkout", idempotency_key, request, "payment", request)

    async def start_saving_method(self, request: SaveMethodRequest, idempotency_key: str) -> Checkout:
        """A hosted test page that saves a card for later charges."""
        await self._pause()
        setup = CheckoutRequest(
            amount=Money(0),
            description="Save a card for future payments",
            customer_reference=request.customer_reference,
            return_url=request.return_url,
            cancel_url=request.cancel_url,
            save_method=True,
        )
        return await self._start("gateway.start_saving_method", idempotency_key, request, "setup", setup)

    # Reading ----------------------------------------------------------------------------------------

    async def read_payment(self, reference: str) -> Payment:
        """A payment by its reference, or a checkout's payment (or its progress) by the checkout's."""
        await self._pause()

        def work(db: sqlite3.Connection) -> Payment:
            row = db.execute(f"SELECT {_PAYMENT} FROM gateway_payments WHERE reference = ?", (reference,)).fetchone()  # noqa: S608
            if row is not None:
                return self._payment_row(row)
            checkout = db.execute(f"SELECT {_CHECKOUT} FROM checkouts WHERE reference = ?", (reference,)).fetchone()  # noqa: S608
            if checkout is None:
                raise NotFound("payment", reference)
            paid = db.execute(
                f"SELECT {_PAYMENT} FROM gateway_payments WHERE checkout_reference = ? AND status = 'succeeded'",  # noqa: S608
                (reference,),
            ).fetchone()
            if paid is not None:
                return self._payment_row(paid)
            if checkout[9] == "succeeded":  # a saved card: nothing was charged
                method = db.execute("SELECT card FROM saved_methods WHERE reference = ?", (checkout[12],)).fetchone()
                return Payment(
                    reference=reference,
                    status=PaymentStatus.SUCCEEDED,
                    amount=Money(0, checkout[3]),
                    method="card",
                    method_summary=json.loads(method[0])["summary"],
                    saved_method_reference=checkout[12],
                    checkout_reference=reference,
                )
            status = (
                PaymentStatus.CANCELED
                if self._expired(checkout)
                else PaymentStatus.REQUIRES_ACTION
                if checkout[9] == "requires_action"
                else PaymentStatus.PENDING
            )
            return Payment(
                reference=reference,
                status=status,
                amount=Money(checkout[2], checkout[3]),
                failure_message=FAILURES.get(checkout[11] or ""),
                checkout_reference=reference,
            )

        return await self._store.read(work)

    async def read_saved_method(self, reference: str) -> SavedMethod:
        await self._pause()
        row = await self._store.read(
            lambda db: db.execute(
                "SELECT reference, customer_reference, card, expires FROM saved_methods WHERE reference = ?",
                (reference,),
            ).fetchone()
        )
        if row is None:
            raise NotFound("saved method", reference)
        return SavedMethod(row[0], row[1], json.loads(row[2])["summary"], row[3])

    # Charging and refunding -------------------------------------------------------------------------

    async def charge_saved_method(self, charge: OffSessionCharge, idempotency_key: str) -> Payment:
        """Charge a saved card with the patient away; a declining test card is ``Refused``."""
        await self._pause()
        if charge.amount.amount <= 0:
            raise Refused("invalid_amount", "A payment must be more than zero.")

        def work(db: sqlite3.Connection) -> Payment | Refused:
            row = db.execute(
                "SELECT card FROM saved_methods WHERE reference = ? AND customer_reference = ?",
                (charge.method_reference, charge.customer_reference),
            ).fetchone()
            if row is None:
                raise NotFound("saved method", charge.method_reference)
            card = json.loads(row[0])
            code = {"declines_off_session": "card_declined", "insufficient_funds": "insufficient_funds"}.get(
                card["behaviour"]
            )
            refusal = Refused(code, FAILURES[code]) if code else None
            payment = self._record_payment(
                db,
                status=PaymentStatus.FAILED if refusal else PaymentStatus.SUCCEEDED,
                amount=charge.amount,
                card=card,
                customer_reference=charge.customer_reference,
                saved_method_reference=charge.method_reference,
                failure_message=refusal.message if refusal else None,
            )
            # A decline is an outcome (the charge was attempted): returned, so a retry gets it again.
            return refusal or payment

        payment: Payment = await self._store.once("gateway.charge_saved_method", idempotency_key, charge, Payment, work)
        return payment

    async def refund(self, request: RefundRequest, idempotency_key: str) -> Refund:
        """Refund part or all of a payment; never more than is left of it."""
        await self._pause()
        if request.amount.amount <= 0:
            raise Refused("invalid_amount", "A refund must be more than zero.")

        def work(db: sqlite3.Connection) -> Refund:
            row = db.execute(
                f"SELECT {_PAYMENT} FROM gateway_payments WHERE reference = ?",  # noqa: S608
                (request.payment_reference,),
            ).fetchone()
            if row is None:
                raise NotFound("payment", request.payment_reference)
            if row[2] != PaymentStatus.SUCCEEDED:
                raise Refused("not_refundable", "Only a successful payment can be refunded.")
            if row[4] != request.amount.currency:
                raise Refused("currency_mismatch", "A refund must be in the currency of the payment.")
            if request.amount.amount > row[3] - row[8]:
                raise Refused("refund_exceeds_payment", "A refund cannot be more than what is left of the payment.")
            refund = Refund(
                f"re_test_{secrets.token_hex(12)}", request.payment_reference, request.amount, PaymentStatus.SUCCEEDED
            )
            db.execute(
                "INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?)",
                (
                    refund.reference,
                    refund.payment_reference,
                    request.amount.amount,
                    request.amount.currency,
                    request.reason,
                    self._now().isoformat(),
                ),
            )
            db.execute(
                "UPDATE gateway_payments SET refunded = refunded + ? WHERE reference = ?",
                (request.amount.amount, request.payment_reference),
            )
            self._event(db, "refund.succeeded", payment=self._payment_row(row), refund=refund)
            return refund

        refund: Refund = await self._store.once("gateway.refund", idempotency_key, request, Refund, work)
        return refund

    # Webhooks ---------------------------------------------------------------------------------------

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify ``Sandbox-Signature`` (HMAC-SHA256, five minutes' tolerance) and read the event."""
        await self._pause()
        header = next((value for name, value in headers.items() if name.lower() == SIGNATURE_HEADER.lower()), None)
        if not header:
            raise WebhookRejected(f"the {SIGNATURE_HEADER} header is missing")
        fields: dict[str, list[str]] = {}
        for item in header.split(","):
            name, _, value = item.strip().partition("=")
            fields.setdefault(name, []).append(value)
        try:
            timestamp = int(fields["t"][0])
        except (KeyError, ValueError):
            raise WebhookRejected("the signature has no valid timestamp") from None
        if abs(self._now().timestamp() - timestamp) > SIGNATURE_TOLERANCE_SECONDS:
            raise WebhookRejected("the signature's timestamp is outside the tolerance")
        expected = sign_webhook(body, self._webhook_secret, timestamp).partition(",v1=")[2]
        if not any(hmac.compare_digest(expected.encode(), given.encode()) for given in fields.get("v1", [])):
            raise WebhookRejected("the signature does not match the body")
        try:
            event = json.loads(body)
            data = event["data"]
            kind = event["type"]
            return WebhookEvent(
                id=str(event["id"]),
                kind=kind if kind in _EVENT_KINDS else "other",
                created_at=datetime.fromtimestamp(int(event["created"]), UTC),
                payment=codec.from_plain(Payment, data["payment"]) if "payment" in data else None,
                saved_method=codec.from_plain(SavedMethod, data["saved_method"]) if "saved_method" in data else None,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise WebhookRejected(f"the body is not a sandbox event: {type(error).__name__}") from None

    # The hosted pages -------------------------------------------------------------------------------

    def check_card_form(self, number: str, expiry: str, cvc: str) -> CardForm:
        """The checkout form's fields, checked against the test cards and today's date."""
        return read_card_form(number, expiry, cvc, self._today())

    def _view(self, row: Any) -> CheckoutView:
        pending = json.loads(row[10])["summary"] if row[10] else None
        return CheckoutView(
            reference=row[0],
            purpose=row[1],
            amount=Money(row[2], row[3]),
            description=row[4],
            status="expired" if self._expired(row) else row[9],
            cancel_url=row[7],
            pending_card=pending,
            last_error=row[11],
        )

    @property
    def is_open(self) -> bool:
        return self._store.is_open

    async def checkout_view(self, reference: str) -> CheckoutView | None:
        """The checkout as its page shows it, or None when it is not this gateway's."""
        row = await self._store.read(
            lambda db: db.execute(f"SELECT {_CHECKOUT} FROM checkouts WHERE reference = ?", (reference,)).fetchone()  # noqa: S608
        )
        return None if row is None else self._view(row)

    def _complete(self, db: sqlite3.Connection, row: Any, card: dict[str, str]) -> str:
        """Pay or save with an accepted card; the URL to send the browser back to."""
        reference, customer = row[0], row[5]
        saved = self._save_method(db, customer, card) if row[1] == "setup" or row[8] else None
        if row[1] == "payment":
            self._record_payment(
                db,
                status=PaymentStatus.SUCCEEDED,
                amount=Money(row[2], row[3]),
                card=card,
                customer_reference=customer,
                checkout_reference=reference,
                saved_method_reference=saved.reference if saved else None,
            )
        db.execute(
            "UPDATE checkouts SET status = 'succeeded', pending_card = NULL, last_error = NULL, "
            "saved_method_reference = ? WHERE reference = ?",
            (saved.reference if saved else None, reference),
        )
        return _with_checkout(row[6], reference)

    def _decline(self, db: sqlite3.Connection, row: Any, card: dict[str, str], code: str) -> Outcome:
        if row[1] == "payment":
            self._record_payment(
                db,
                status=PaymentStatus.FAILED,
                amount=Money(row[2], row[3]),
                card=card,
                customer_reference=row[5],
                checkout_reference=row[0],
                failure_message=FAILURES[code],
            )
        db.execute(
            "UPDATE checkouts SET status = 'open', pending_card = NULL, last_error = ? WHERE reference = ?",
            (code, row[0]),
        )
        return Outcome(error=code)

    async def submit_card(self, reference: str, card: TestCard, expires: str) -> Outcome:
        """Act on a test card typed into the checkout page (a resubmit of a paid checkout pays nothing)."""

        def work(db: sqlite3.Connection) -> Outcome:
            row = db.execute(f"SELECT {_CHECKOUT} FROM checkouts WHERE reference = ?", (reference,)).fetchone()  # noqa: S608
            if row is None:
                raise NotFound("checkout", reference)
            if row[9] == "succeeded":
                return Outcome(redirect=_with_checkout(row[6], reference))
            if self._expired(row):
                return Outcome(redirect=f"/-/sandbox/checkout/{reference}")
            summary = {"summary": card.summary, "behaviour": card.behaviour, "expires": expires}
            setup = row[1] == "setup"
            if card.behaviour == "authenticate":
                db.execute(
                    "UPDATE checkouts SET status = 'requires_action', pending_card = ?, last_error = NULL "
                    "WHERE reference = ?",
                    (json.dumps(summary), reference),
                )
                return Outcome(redirect=f"/-/sandbox/checkout/{reference}/authenticate")
            if card.behaviour == "declined" or (card.behaviour == "declines_off_session" and not setup):
                return self._decline(db, row, summary, "card_declined")
            if card.behaviour == "insufficient_funds" and not setup:
                return self._decline(db, row, summary, "insufficient_funds")
            return Outcome(redirect=self._complete(db, row, summary))

        return await self._store.write(work)

    async def finish_authentication(self, reference: str, approved: bool) -> Outcome:
        """The test 3-D Secure page's answer: pay (or save) with the waiting card, or decline it."""

        def work(db: sqlite3.Connection) -> Outcome:
            row = db.execute(f"SELECT {_CHECKOUT} FROM checkouts WHERE reference = ?", (reference,)).fetchone()  # noqa: S608
            if row is None:
                raise NotFound("checkout", reference)
            if row[9] == "succeeded":
                return Outcome(redirect=_with_checkout(row[6], reference))
            if row[9] != "requires_action" or self._expired(row):
                return Outcome(redirect=f"/-/sandbox/checkout/{reference}")
            card = json.loads(row[10])
            if not approved:
                self._decline(db, row, card, "authentication_failed")
                return Outcome(redirect=f"/-/sandbox/checkout/{reference}")
            return Outcome(redirect=self._complete(db, row, card))

        return await self._store.write(work)


_EVENT_KINDS = frozenset({"payment.succeeded", "payment.failed", "method.saved", "refund.succeeded"})

# The hosted pages find the gateway that owns a checkout here: a route handler is built before any
# adapter exists, and cannot be handed one. Weak references let a discarded gateway go.
_LIVE: dict[Path, weakref.ref[SandboxGateway]] = {}


async def find_checkout(reference: str) -> tuple[SandboxGateway, CheckoutView] | None:
    """The live gateway that knows the checkout, and the checkout; None when none does."""
    for ref in list(_LIVE.values()):
        gateway = ref()
        if gateway is not None and gateway.is_open and (view := await gateway.checkout_view(reference)) is not None:
            return gateway, view
    return None


def make_gateway(context: AdapterContext) -> SandboxGateway:
    """The adapter factory registered as the ``sandbox`` payment gateway."""
    return SandboxGateway(context)
