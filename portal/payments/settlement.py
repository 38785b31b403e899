"""Settling an attempt with what the gateway says, and what follows a success.

The return page and the webhook both call :func:`settle`; whichever comes first changes the row and
the other finds it settled. Every change is a conditional update, so the state only moves forward:
a late "failed" never undoes a success, and a repeat changes nothing (PROMISES.md 11). A success
writes, in the same transaction, the outbox messages that post the payment to the EHR and send the
receipt (PROMISES.md 14); the event hook is then emitted once, by the caller that made the change.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carefront_sdk.models import Money, Payment, PaymentEvent, PaymentPosting, PaymentStatus

from portal.billing.statements import forget_statements
from portal.database import transaction
from portal.outbox.relay import enqueue
from portal.payments.tables import GatewayEvent, PayLink, PaymentAttempt
from portal.plugin_host import PluginHost

log = logging.getLogger("carefront.payments")

POST_PAYMENT = "ehr.post_payment"
SEND_RECEIPT = "payments.send_receipt"


class Change(enum.StrEnum):
    SUCCEEDED = "succeeded"
    PROCESSING = "processing"
    FAILED = "failed"
    NONE = "none"
    """Nothing changed: already settled that way (or further), or a duplicate event."""


@dataclass(frozen=True, slots=True)
class Settled:
    change: Change
    attempt: dict[str, Any]
    """The row after the change."""


_MAY_SUCCEED = ["open", "processing", "failed"]
_MAY_PROCESS = ["open"]
_MAY_FAIL = ["open", "processing"]


async def settle(
    attempt: dict[str, Any],
    payment: Payment,
    *,
    now: datetime,
    in_flight: bool = True,
    event_id: str | None = None,
    event_kind: str = "",
) -> Settled:
    """Record ``payment`` (as the gateway reported it) on ``attempt``.

    ``in_flight`` says a pending payment is money on its way (the patient finished the gateway's
    page), not a checkout still waiting for a card. With ``event_id`` (a webhook), the event is
    recorded in the same transaction and a duplicate changes nothing.
    """
    async with transaction():
        if event_id is not None and not await _first_sighting(event_id, event_kind, payment.reference, now):
            return Settled(Change.NONE, attempt)
        change = await _apply(attempt, payment, now, in_flight)
        if change is Change.SUCCEEDED:
            key = str(attempt["public_id"])
            await enqueue(POST_PAYMENT, {"payment": key}, f"post-payment:{key}", now=now)
            await enqueue(SEND_RECEIPT, {"payment": key}, f"receipt:{key}", now=now)
            if attempt["pay_link_id"]:
                await (
                    PayLink.update({PayLink.used_at: now})
                    .where((PayLink.public_id == attempt["pay_link_id"]) & PayLink.used_at.is_null())
                    .run()
                )
        row = await PaymentAttempt.select().where(PaymentAttempt.id == attempt["id"]).first().run()
    return Settled(change, row or attempt)


async def record_unmatched_event(event_id: str, event_kind: str, reference: str | None, now: datetime) -> bool:
    """Remember an event that names no attempt of ours (e.g. another system's charge); False if seen before."""
    async with transaction():
        return await _first_sighting(event_id, event_kind, reference, now)


async def _first_sighting(event_id: str, kind: str, reference: str | None, now: datetime) -> bool:
    inserted = (
        await GatewayEvent.insert(
            GatewayEvent(event_id=event_id, kind=kind[:40], payment_reference=reference, received_at=now)
        )
        .on_conflict(target=GatewayEvent.event_id, action="DO NOTHING")
        .returning(GatewayEvent.id)
        .run()
    )
    return bool(inserted)


async def _apply(attempt: dict[str, Any], payment: Payment, now: datetime, in_flight: bool) -> Change:
    mine = PaymentAttempt.id == attempt["id"]
    if payment.status is PaymentStatus.SUCCEEDED:
        values: dict[Any, Any] = {
            PaymentAttempt.status: "succeeded",
            PaymentAttempt.payment_reference: payment.reference,
            PaymentAttempt.method: payment.method,
            PaymentAttempt.method_summary: payment.method_summary,
            PaymentAttempt.failure_message: None,
            PaymentAttempt.settled_at: now,
        }
        if payment.amount.amount != attempt["amount"] or payment.amount.currency != attempt["currency"]:
            # The ledger keeps what was actually taken; staff reconcile the difference.
            log.error("payment %s: the gateway took another amount than asked", attempt["public_id"])
            values[PaymentAttempt.amount] = payment.amount.amount
            values[PaymentAttempt.currency] = payment.amount.currency
        changed = await _update(values, mine & PaymentAttempt.status.is_in(_MAY_SUCCEED))
        return Change.SUCCEEDED if changed else Change.NONE
    if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        values = {PaymentAttempt.status: "failed", PaymentAttempt.failure_message: payment.failure_message}
        changed = await _update(values, mine & PaymentAttempt.status.is_in(_MAY_FAIL))
        return Change.FAILED if changed else Change.NONE
    if payment.status is PaymentStatus.PENDING and in_flight:
        values = {PaymentAttempt.status: "processing", PaymentAttempt.method_summary: payment.method_summary}
        changed = await _update(values, mine & PaymentAttempt.status.is_in(_MAY_PROCESS))
        return Change.PROCESSING if changed else Change.NONE
    if payment.failure_message:
        # Still open (the patient may try another card), but the page can say why the last one failed.
        await _update(
            {PaymentAttempt.failure_message: payment.failure_message}, mine & (PaymentAttempt.status == "open")
        )
    return Change.NONE


async def _update(values: dict[Any, Any], where: Any) -> bool:
    return bool(await PaymentAttempt.update(values).where(where).returning(PaymentAttempt.id).run())


def announce(host: PluginHost, attempt: dict[str, Any], *, plan_id: str | None = None) -> None:
    """Tell plugins a payment succeeded (``carefront_payment_succeeded``); call once, after :func:`settle`
    reported the change. ``plan_id``: the payment plan an installment belongs to (portal.plans)."""
    host.emit(
        "carefront_payment_succeeded",
        PaymentEvent(
            payment_id=str(attempt["public_id"]),
            patient_id=attempt["patient_id"],
            amount=Money(attempt["amount"], attempt["currency"]),
            gateway_reference=attempt["payment_reference"] or attempt["checkout_reference"] or "",
            occurred_at=attempt["settled_at"],
            plan_id=plan_id,
        ),
    )


# --- Outbox deliveries ---------------------------------------------------------------------------


async def _attempt_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    row = await PaymentAttempt.select().where(PaymentAttempt.public_id == payload["payment"]).first().run()
    if row is None:
        raise LookupError("the payment of an outbox message is gone")
    return row


async def deliver_posting(host: PluginHost, payload: Mapping[str, Any], idempotency_key: str) -> None:
    """Post a succeeded payment to the EHR; mark it posted with the EHR's receipt reference."""
    attempt = await _attempt_of(payload)
    if attempt["status"] == "posted":
        return
    patient = await host.ehr.read_patient(attempt["patient_id"])
    posting = PaymentPosting(
        patient_id=attempt["patient_id"],
        account_number=patient.account_number,
        amount=Money(attempt["amount"], attempt["currency"]),
        gateway_reference=attempt["payment_reference"] or attempt["checkout_reference"],
        paid_at=attempt["settled_at"],
        method=attempt["method"] or "card",
        statement_id=attempt["statement_id"],
    )
    receipt = await host.ehr.post_payment(posting, idempotency_key=idempotency_key)
    await (
        PaymentAttempt.update(
            {
                PaymentAttempt.status: "posted",
                PaymentAttempt.posting_reference: receipt.reference,
                PaymentAttempt.posted_at: receipt.posted_at,
            }
        )
        .where((PaymentAttempt.id == attempt["id"]) & (PaymentAttempt.status == "succeeded"))
        .run()
    )
    statement_ids = [attempt["statement_id"]] if attempt["statement_id"] else []
    await forget_statements(attempt["patient_id"], *statement_ids)
