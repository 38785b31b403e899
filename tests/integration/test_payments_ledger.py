"""The ledger as statements read it: payments newest first, and money taken but not yet posted."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from carefront_sdk.models import Money

from portal.payments.ledger import portal_payments, unposted_total
from portal.payments.tables import PaymentAttempt


async def _attempt(patient_id: str, amount: int, status: str, when, statement_id: str | None = None) -> str:
    public_id = uuid.uuid4()
    await PaymentAttempt.insert(
        PaymentAttempt(
            public_id=public_id,
            idempotency_key=f"test:{secrets.token_hex(8)}",
            reference_number=secrets.token_hex(6).upper(),
            patient_id=patient_id,
            statement_id=statement_id,
            amount=amount,
            status=status,
            payer_kind="account",
            method_summary="Visa ending 4242" if status != "open" else None,
            created_at=when,
        )
    ).run()
    return str(public_id)


async def test_payments_are_listed_newest_first_and_open_checkouts_are_not_payments(portal, clock):
    patient = f"pt-ledger-{secrets.token_hex(4)}"
    older = await _attempt(patient, 1000, "posted", clock.now - timedelta(days=2), "st-1")
    newer = await _attempt(patient, 2500, "succeeded", clock.now - timedelta(days=1), "st-2")
    failed = await _attempt(patient, 700, "failed", clock.now - timedelta(hours=1), "st-2")
    await _attempt(patient, 900, "open", clock.now, "st-2")
    await _attempt(f"pt-other-{secrets.token_hex(4)}", 100, "succeeded", clock.now, "st-2")

    payments = await portal_payments(patient)
    assert [(p.id, p.status, p.amount) for p in payments] == [
        (failed, "failed", Money(700)),
        (newer, "received", Money(2500)),
        (older, "posted", Money(1000)),
    ]
    assert payments[1].method_summary == "Visa ending 4242"
    assert [p.id for p in await portal_payments(patient, "st-1")] == [older]


async def test_unposted_total_counts_money_taken_that_the_ehr_has_not_acknowledged(portal, clock):
    patient = f"pt-ledger-{secrets.token_hex(4)}"
    await _attempt(patient, 1000, "posted", clock.now, "st-1")
    await _attempt(patient, 2500, "succeeded", clock.now, "st-1")
    await _attempt(patient, 300, "processing", clock.now, None)
    await _attempt(patient, 700, "failed", clock.now, "st-1")
    await _attempt(patient, 900, "open", clock.now, "st-1")

    assert await unposted_total(patient) == Money(2800)
    assert await unposted_total(patient, "st-1") == Money(2500)
    assert await unposted_total(f"pt-none-{secrets.token_hex(4)}") == Money(0)
