"""The Stripe payment gateway: PaymentIntents with the Payment Element, SetupIntents for autopay,
off-session charges, refunds and verified webhooks, through the official library's async client.

- A checkout is a PaymentIntent; the portal mounts Stripe's Payment Element with its client secret
  and the publishable key, so card data goes from the browser to Stripe and never to Carefront.
  3-D Secure happens inside the element (Stripe.js returns the patient to the portal's return URL).
- Saving a method for a plan is a SetupIntent mounted the same way; a checkout with ``save_method``
  keeps its card too (``setup_future_usage=off_session``).
- Each ``customer_reference`` (a guarantor) has one Stripe Customer, carrying the reference in its
  metadata, created under an idempotency key derived from the reference and remembered in the ledger.
- Every mutating call sends Stripe an ``Idempotency-Key`` derived from the portal's key, and the
  ledger answers a repeated key as the first call did, also after Stripe's 24 hours.
- Each call is bounded by ``timeout_seconds``; Stripe errors become the SDK's tiers
  (:func:`~carefront_stripe.translate.vendor_error`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import stripe
from carefront_sdk.adapters import AdapterContext
from carefront_sdk.errors import NotFound, Refused, Unavailable
from carefront_sdk.models import (
    Checkout,
    CheckoutRequest,
    Health,
    OffSessionCharge,
    Payment,
    PaymentStatus,
    Refund,
    RefundRequest,
    SavedMethod,
    SaveMethodRequest,
    WebhookEvent,
)

from carefront_stripe.ledger import Ledger, Outcome
from carefront_stripe.settings import StripeSettings
from carefront_stripe.translate import (
    CUSTOMER_KEY,
    DESCRIPTION_KEY,
    FLOW_KEY,
    SAVE_KEY,
    CardRefusal,
    Flow,
    card_refusal,
    checkout_from_intent,
    payment_from_charge,
    payment_from_intent,
    payment_from_setup_intent,
    refund_from,
    saved_method_from,
    vendor_error,
)
from carefront_stripe.webhooks import read_event, verify_signature

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCreateParams, SetupIntentCreateParams

__all__ = ["HEALTH_TIMEOUT_SECONDS", "StripeGateway", "make_gateway", "stripe_idempotency_key"]

T = TypeVar("T")

HEALTH_TIMEOUT_SECONDS = 2.0
"""The health check is one cheap read: it should answer fast or count as down."""

_INTENT_EXPANSIONS = ["payment_method", "latest_charge"]
_METADATA_VALUE_LIMIT = 500
_STRIPE_KEY_LIMIT = 255
_IDS = {
    "payment_intent": re.compile(r"pi_[A-Za-z0-9_]{1,250}"),
    "setup_intent": re.compile(r"seti_[A-Za-z0-9_]{1,250}"),
    "payment_method": re.compile(r"pm_[A-Za-z0-9_]{1,250}"),
}


def _is(kind: str, reference: str) -> bool:
    """Whether ``reference`` looks like a Stripe id of ``kind``; anything else is unknown without asking."""
    return _IDS[kind].fullmatch(reference) is not None


def stripe_idempotency_key(operation: str, key: str) -> str:
    """The ``Idempotency-Key`` sent to Stripe for the portal's ``key`` in ``operation``: one key per
    operation, since Stripe refuses a key reused on another endpoint or with other parameters."""
    candidate = f"carefront:{operation}:{key}"
    if len(candidate) <= _STRIPE_KEY_LIMIT:
        return candidate
    return f"carefront:{operation}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _quiet_stripe_logger() -> None:
    """Keep the library's DEBUG records out of the portal's logs: they hold whole request and
    response bodies (client secrets, card brand, last four and expiry, metadata)."""
    library = logging.getLogger("stripe")
    if library.level < logging.INFO:
        library.setLevel(logging.INFO)


class StripeGateway:
    """The :class:`~carefront_sdk.adapters.PaymentGateway` for Stripe."""

    def __init__(
        self,
        settings: StripeSettings,
        ledger: Ledger,
        clock: Callable[[], datetime],
        *,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        _quiet_stripe_logger()
        self._settings = settings
        self._ledger = ledger
        self._clock = clock
        self._http = http_client or stripe.HTTPXClient(timeout=settings.timeout_seconds)
        self._client = stripe.StripeClient(
            settings.secret_key,
            base_addresses={"api": settings.api_base},
            http_client=self._http,
            # One retry on a dropped connection, 409 or 5xx is safe: every write carries its key.
            max_network_retries=1,
        )
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def aclose(self) -> None:
        """Close the HTTP connections and the ledger; the portal calls it once when it stops."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # stripe leaves it unannotated
        self._ledger.close()

    # --- Plumbing ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def _bounded(self, operation: str) -> AsyncIterator[None]:
        """Bound ``operation`` in time, and turn an answer of an unexpected shape into ``Unavailable``."""
        limit = self._settings.timeout_seconds
        try:
            async with asyncio.timeout(limit):
                yield
        except TimeoutError:
            raise Unavailable(f"stripe {operation}: no answer within {limit:g} s") from None
        except (KeyError, TypeError, ValueError) as error:
            raise Unavailable(f"stripe {operation}: unexpected answer ({type(error).__name__})") from None

    async def _stripe(
        self, operation: str, call: Awaitable[stripe.StripeObject], missing: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """Await one Stripe call and return its object as a dict; ``missing`` is the ``NotFound``
        for an HTTP 404 (otherwise a 404 is a fault of ours, hence ``Unavailable``)."""
        try:
            return (await call).to_dict()
        except stripe.StripeError as error:
            if missing is not None and error.http_status == 404:
                raise NotFound(*missing) from None
            raise vendor_error(error, operation) from None

    def _lock(self, *parts: str) -> asyncio.Lock:
        name = "\x1f".join(parts)
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    async def _once(
        self,
        operation: str,
        idempotency_key: str,
        act: Callable[[str], Awaitable[tuple[str, T]]],
        read: Callable[[str], Awaitable[T]],
    ) -> T:
        """Run ``act`` once per key: it gets Stripe's key and returns ``(stripe id, result)``; a
        repeated key reads the result back by id, or raises the first call's card refusal again.

        Any other error is not kept: nothing happened at Stripe, so a retry may act.
        """
        # Same-key calls in this process wait for each other; Stripe's key guards across processes.
        async with self._lock(operation, idempotency_key):
            outcome = await self._ledger.recall(operation, idempotency_key)
            if outcome is None:
                try:
                    stripe_id, result = await act(stripe_idempotency_key(operation, idempotency_key))
                except CardRefusal as refusal:
                    refused = Outcome(refusal=(refusal.code, refusal.message))
                    outcome = await self._ledger.record(operation, idempotency_key, refused, self._clock())
                else:
                    outcome = await self._ledger.record(operation, idempotency_key, Outcome(stripe_id), self._clock())
                    if outcome.stripe_id == stripe_id:
                        return result
            if outcome.refusal is not None:
                raise CardRefusal(*outcome.refusal)
            assert outcome.stripe_id is not None
            return await read(outcome.stripe_id)

    async def _customer(self, customer_reference: str) -> str:
        """The Stripe Customer of ``customer_reference``, created the first time it pays or saves."""
        async with self._lock("customer", customer_reference):
            known = await self._ledger.customer(customer_reference)
            if known is not None:
                return known
            customer = await self._stripe(
                "create customer",
                self._client.v1.customers.create_async(
                    {"metadata": {CUSTOMER_KEY: customer_reference}},
                    {"idempotency_key": stripe_idempotency_key("customer", customer_reference)},
                ),
            )
            return await self._ledger.remember_customer(customer_reference, str(customer["id"]), self._clock())

    def _metadata(self, portal: Mapping[str, str], customer_reference: str, flow: str) -> dict[str, str]:
        # The portal's own keys first, so they can never overwrite the adapter's.
        return {**portal, CUSTOMER_KEY: customer_reference, FLOW_KEY: flow}

    async def _intent(self, reference: str) -> dict[str, Any]:
        return await self._stripe(
            "retrieve payment",
            self._client.v1.payment_intents.retrieve_async(reference, {"expand": _INTENT_EXPANSIONS}),
            missing=("payment", reference),
        )

    async def _setup_intent(self, reference: str) -> dict[str, Any]:
        return await self._stripe(
            "retrieve setup",
            self._client.v1.setup_intents.retrieve_async(reference, {"expand": ["payment_method"]}),
            missing=("payment", reference),
        )

    async def _saved_method(self, reference: str) -> tuple[SavedMethod, str]:
        """The saved method and the id of the Stripe Customer it is attached to."""
        if not _is("payment_method", reference):
            raise NotFound("saved payment method", reference)
        method = await self._stripe(
            "retrieve payment method",
            self._client.v1.payment_methods.retrieve_async(reference, {"expand": ["customer"]}),
            missing=("saved payment method", reference),
        )
        saved = saved_method_from(method)
        if saved is None:  # not attached to a customer of ours: not a saved method
            raise NotFound("saved payment method", reference)
        return saved, str(method["customer"]["id"])

    # --- The PaymentGateway protocol ----------------------------------------------------------------

    async def health(self) -> Health:
        # Listing one customer needs only a permission the adapter needs anyway (a restricted key
        # may lack the balance), and costs Stripe next to nothing.
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
                await self._client.v1.customers.list_async({"limit": 1}, {"max_network_retries": 0})
        except TimeoutError:
            return Health(ok=False, detail=f"stripe: no answer within {HEALTH_TIMEOUT_SECONDS:g} s")
        except stripe.StripeError as error:
            return Health(ok=False, detail=str(vendor_error(error, "health")))
        mode = "live" if self._settings.secret_key.startswith(("sk_live_", "rk_live_")) else "test"
        return Health(ok=True, detail=f"stripe answered ({mode} key)")

    async def start_checkout(self, request: CheckoutRequest, idempotency_key: str) -> Checkout:
        async def act(stripe_key: str) -> tuple[str, Checkout]:
            if request.amount.amount <= 0:
                raise Refused("invalid_amount", "Enter an amount above zero.")
            metadata = self._metadata(request.metadata, request.customer_reference, Flow.CHECKOUT)
            metadata[DESCRIPTION_KEY] = request.description[:_METADATA_VALUE_LIMIT]
            params: PaymentIntentCreateParams = {
                "amount": request.amount.amount,
                "currency": request.amount.currency.lower(),
                "customer": await self._customer(request.customer_reference),
                "metadata": metadata,
            }
            if request.save_method:
                metadata[SAVE_KEY] = "true"
                params["payment_method_options"] = {"card": {"setup_future_usage": "off_session"}}
            if self._settings.statement_descriptor:
                params["statement_descriptor_suffix"] = self._settings.statement_descriptor
            intent = await self._stripe(
                "start checkout", self._client.v1.payment_intents.create_async(params, {"idempotency_key": stripe_key})
            )
            return str(intent["id"]), checkout_from_intent(intent, self._settings.publishable_key)

        async def read(reference: str) -> Checkout:
            return checkout_from_intent(await self._intent(reference), self._settings.publishable_key)

        async with self._bounded("start checkout"):
            return await self._once("start_checkout", idempotency_key, act, read)

    async def read_payment(self, reference: str) -> Payment:
        async with self._bounded("read payment"):
            if _is("payment_intent", reference):
                return payment_from_intent(await self._intent(reference))
            if _is("setup_intent", reference):
                return payment_from_setup_intent(await self._setup_intent(reference), self._settings.currency)
            raise NotFound("payment", reference)

    async def start_saving_method(self, request: SaveMethodRequest, idempotency_key: str) -> Checkout:
        async def act(stripe_key: str) -> tuple[str, Checkout]:
            customer = await self._customer(request.customer_reference)
            params: SetupIntentCreateParams = {
                "customer": customer,
                "usage": "off_session",
                "metadata": self._metadata({}, request.customer_reference, Flow.SAVE_METHOD),
            }
            setup = await self._stripe(
                "start saving method",
                self._client.v1.setup_intents.create_async(params, {"idempotency_key": stripe_key}),
            )
            return str(setup["id"]), checkout_from_intent(setup, self._settings.publishable_key)

        async def read(reference: str) -> Checkout:
            return checkout_from_intent(await self._setup_intent(reference), self._settings.publishable_key)

        async with self._bounded("start saving method"):
            return await self._once("start_saving_method", idempotency_key, act, read)

    async def read_saved_method(self, reference: str) -> SavedMethod:
        async with self._bounded("read saved method"):
            saved, _ = await self._saved_method(reference)
            return saved

    async def charge_saved_method(self, charge: OffSessionCharge, idempotency_key: str) -> Payment:
        async def act(stripe_key: str) -> tuple[str, Payment]:
            method, customer = await self._saved_method(charge.method_reference)
            if method.customer_reference != charge.customer_reference:
                raise Refused("method_not_owned", "That payment method belongs to someone else.")
            if charge.amount.amount <= 0:
                raise Refused("invalid_amount", "Enter an amount above zero.")
            metadata = self._metadata(charge.metadata, charge.customer_reference, Flow.OFF_SESSION)
            metadata[DESCRIPTION_KEY] = charge.description[:_METADATA_VALUE_LIMIT]
            params: PaymentIntentCreateParams = {
                "amount": charge.amount.amount,
                "currency": charge.amount.currency.lower(),
                "customer": customer,
                "payment_method": charge.method_reference,
                "confirm": True,
                "off_session": True,
                "metadata": metadata,
                "expand": _INTENT_EXPANSIONS,
            }
            if self._settings.statement_descriptor:
                params["statement_descriptor_suffix"] = self._settings.statement_descriptor
            intent = await self._stripe(
                "charge saved method",
                self._client.v1.payment_intents.create_async(params, {"idempotency_key": stripe_key}),
            )
            payment = payment_from_intent(intent)
            if payment.status is PaymentStatus.REQUIRES_ACTION:
                # Off session nobody can answer 3-D Secure: the patient must pay this one themselves.
                raise card_refusal({"code": "authentication_required"})
            if payment.status is PaymentStatus.FAILED:
                raise card_refusal(intent.get("last_payment_error") or {})
            return str(intent["id"]), payment

        async def read(reference: str) -> Payment:
            return payment_from_intent(await self._intent(reference))

        async with self._bounded("charge saved method"):
            return await self._once("charge_saved_method", idempotency_key, act, read)

    async def refund(self, request: RefundRequest, idempotency_key: str) -> Refund:
        async def act(stripe_key: str) -> tuple[str, Refund]:
            if not _is("payment_intent", request.payment_reference):
                raise NotFound("payment", request.payment_reference)
            intent = await self._intent(request.payment_reference)
            if intent["status"] != "succeeded":
                raise Refused("not_refundable", "Only a completed payment can be refunded.")
            if request.amount.currency != str(intent["currency"]).upper():
                raise Refused("invalid_amount", "A refund must be in the currency of the payment.")
            charge = intent["latest_charge"]
            # Stripe refuses an over-refund itself; checking first gives the same answer on any Stripe.
            left = int(charge["amount"]) - int(charge.get("amount_refunded") or 0)
            if request.amount.amount <= 0 or request.amount.amount > left:
                raise Refused("refund_exceeds_payment", "The refund is more than what is left of the payment.")
            refund = await self._stripe(
                "refund",
                self._client.v1.refunds.create_async(
                    {"payment_intent": request.payment_reference, "amount": request.amount.amount},
                    {"idempotency_key": stripe_key},
                ),
            )
            return str(refund["id"]), refund_from(refund)

        async def read(reference: str) -> Refund:
            return refund_from(await self._stripe("read refund", self._client.v1.refunds.retrieve_async(reference)))

        async with self._bounded("refund"):
            return await self._once("refund", idempotency_key, act, read)

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        settings = self._settings
        verify_signature(body, headers, settings.webhook_secret, settings.webhook_tolerance_seconds, self._clock())
        event = read_event(body)
        async with self._bounded("parse webhook"):
            return await self._webhook_event(event.id, event.type, event.created_at, event.object)

    async def _webhook_event(
        self, event_id: str, event_type: str, created_at: datetime, subject: Mapping[str, Any]
    ) -> WebhookEvent:
        """The SDK's reading of one Stripe event; types the portal does not act on are ``other``."""
        if event_type.startswith("payment_intent."):
            kinds = {
                "payment_intent.succeeded": "payment.succeeded",
                "payment_intent.payment_failed": "payment.failed",
                "payment_intent.canceled": "payment.failed",
            }
            payment = payment_from_intent(subject)
            return WebhookEvent(event_id, kinds.get(event_type, "other"), created_at, payment=payment)
        if event_type.startswith("setup_intent."):
            payment = payment_from_setup_intent(subject, self._settings.currency)
            saved = None
            if event_type == "setup_intent.succeeded" and payment.saved_method_reference:
                # The event names the method by id only; its summary is read now. A method already
                # removed again is reported as nothing saved.
                try:
                    saved, _ = await self._saved_method(payment.saved_method_reference)
                except NotFound:
                    saved = None
            kind = "method.saved" if saved is not None else "other"
            return WebhookEvent(event_id, kind, created_at, payment=payment, saved_method=saved)
        if event_type == "charge.refunded":
            return WebhookEvent(event_id, "refund.succeeded", created_at, payment=payment_from_charge(subject))
        return WebhookEvent(event_id, "other", created_at)


def make_gateway(context: AdapterContext) -> StripeGateway:
    """The factory the portal calls with the resolved ``[adapters.stripe]`` settings."""
    settings = StripeSettings.from_config(context.config)
    ledger = Ledger(context.data_dir / context.name / "ledger.sqlite3")
    return StripeGateway(settings, ledger, context.clock)
