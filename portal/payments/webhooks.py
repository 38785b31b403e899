"""Applying the gateway's notifications: verified by the adapter, de-duplicated by event id, and
settled like a return from the gateway's page, so order does not matter (PROMISES.md 11)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from carefront_sdk.models import WebhookEvent

from portal.payments.settlement import Settled, record_unmatched_event, settle
from portal.payments.tables import PaymentAttempt
from portal.plugin_host import PluginHost

SETTLING_KINDS = frozenset({"payment.succeeded", "payment.failed"})


async def receive(host: PluginHost, body: bytes, headers: Mapping[str, str], *, now: datetime) -> Settled | None:
    """Verify and apply one notification; ``WebhookRejected`` (answered 400) when it does not verify.

    Returns what changed for an attempt of ours, or None for an event that names none.
    """
    event: WebhookEvent = await host.gateway.parse_webhook(body, headers)
    payment = event.payment
    if payment is None or event.kind not in SETTLING_KINDS:
        await record_unmatched_event(event.id, event.kind, payment.reference if payment else None, now)
        return None
    references = [reference for reference in (payment.checkout_reference, payment.reference) if reference]
    attempt = (
        await PaymentAttempt.select()
        .where(PaymentAttempt.checkout_reference.is_in(references) | PaymentAttempt.payment_reference.is_in(references))
        .first()
        .run()
    )
    if attempt is None:
        await record_unmatched_event(event.id, event.kind, payment.reference, now)
        return None
    return await settle(attempt, payment, now=now, event_id=event.id, event_kind=event.kind)
