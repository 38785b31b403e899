"""The payment ledger as other domains read it: what a patient paid through the portal.

Statements show these beside the EHR's balance ("pending" until the EHR acknowledges a payment),
and the pay page subtracts :func:`unposted_total` from what the EHR says is owed, so the same money
cannot be paid twice while the posting is on its way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from carefront_sdk.models import Money

from portal.payments.tables import PaymentAttempt

PortalPaymentStatus = Literal["processing", "received", "posted", "failed"]

TAKEN = ("processing", "succeeded")
"""Attempt statuses where the money is (or is being) taken but the EHR has not acknowledged it."""

_SHOWN: dict[str, PortalPaymentStatus] = {
    "processing": "processing",
    "succeeded": "received",
    "posted": "posted",
    "failed": "failed",
}
"""Attempt status -> what a patient sees; an ``open`` attempt (checkout not finished) is no payment yet."""


@dataclass(frozen=True, slots=True)
class PortalPayment:
    id: str
    """The attempt's public id, as the receipt URL names it."""
    amount: Money
    status: PortalPaymentStatus
    method_summary: str | None
    created_at: datetime
    statement_id: str | None


def shown_status(attempt_status: str) -> PortalPaymentStatus | None:
    """What a patient sees for an attempt's status; None for an attempt that is no payment yet."""
    return _SHOWN.get(attempt_status)


async def portal_payments(patient_id: str, statement_id: str | None = None) -> list[PortalPayment]:
    """The patient's payments (only those towards ``statement_id`` when given), newest first."""
    where = (PaymentAttempt.patient_id == patient_id) & PaymentAttempt.status.is_in(list(_SHOWN))
    if statement_id is not None:
        where &= PaymentAttempt.statement_id == statement_id
    rows = (
        await PaymentAttempt.select(
            PaymentAttempt.public_id,
            PaymentAttempt.amount,
            PaymentAttempt.currency,
            PaymentAttempt.status,
            PaymentAttempt.method_summary,
            PaymentAttempt.created_at,
            PaymentAttempt.statement_id,
        )
        .where(where)
        .order_by(PaymentAttempt.created_at, ascending=False)
        .order_by(PaymentAttempt.id, ascending=False)
        .run()
    )
    return [
        PortalPayment(
            id=str(row["public_id"]),
            amount=Money(row["amount"], row["currency"]),
            status=_SHOWN[row["status"]],
            method_summary=row["method_summary"],
            created_at=row["created_at"],
            statement_id=row["statement_id"],
        )
        for row in rows
    ]


async def unposted_total(patient_id: str, statement_id: str | None = None, currency: str = "USD") -> Money:
    """Money taken (succeeded, or processing) that the EHR has not acknowledged yet.

    Without ``statement_id``: every such payment of the patient, whole-balance ones included.
    """
    where = (
        (PaymentAttempt.patient_id == patient_id)
        & PaymentAttempt.status.is_in(list(TAKEN))
        & (PaymentAttempt.currency == currency)
    )
    if statement_id is not None:
        where &= PaymentAttempt.statement_id == statement_id
    rows = await PaymentAttempt.select(PaymentAttempt.amount).where(where).run()
    return Money(sum(row["amount"] for row in rows), currency)
