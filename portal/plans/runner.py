"""The installment runner: charges due autopay installments exactly once (PROMISES.md 12), retries a
decline on the policy's days, counts missed installments, defaults a plan, and sends reminders.

It runs as a job of ``portal.jobs`` (in the web process, or in any number of ``carefront worker``
processes). Exactly once comes from keys, not from the job running once:

1. An installment is leased with a conditional update, so two runners rarely work on one at once.
2. The attempt row, with the idempotency key ``plan-installment:<installment>:<attempt number>``
   (unique), is committed BEFORE the gateway is called; a second runner racing for the same attempt
   number fails on the key and leaves it.
3. The gateway gets that key; a request repeated with it returns the first call's result.
4. An attempt still ``started`` when its lease runs out (its process died before or after the gateway
   answered) is reconciled first, by sending the very same request with the same key: the gateway
   answers with what it did, or does it now if it never got the first call.
5. Recording a success flips the installment to ``paid`` with a conditional update, in the same
   transaction as the ledger row and the outbox messages that post it to the EHR and send the
   receipt; whoever flips it emits the events, after the commit.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carefront_sdk.errors import NotFound, Refused, Unavailable
from carefront_sdk.models import Checkout, CheckoutRequest, Money, OffSessionCharge, Payment, PaymentStatus

from portal.database import transaction
from portal.identity import accounts
from portal.payments import attempts as payment_attempts
from portal.payments import settlement
from portal.plans.agreements import (
    LIVE,
    Actor,
    charge_moment,
    emit_change,
    enqueue_notice,
    parse_uuid,
    record_change,
    today_in,
)
from portal.plans.tables import InstallmentAttempt, PaymentPlan, PlanChange, PlanInstallment
from portal.plugin_host import PluginHost
from portal.settings import Settings

log = logging.getLogger("carefront.plans")

BATCH = 100
"""Installments one pass works on at most, per step."""
LEASE_FLOOR = timedelta(seconds=5)
UNKNOWN_RETRY = timedelta(minutes=1)
"""When the gateway did not answer: ask again (with the same key) this much later."""
CHECKOUT_RECHECK = timedelta(minutes=10)
"""How often an unfinished checkout of an installment is asked about (until the gateway lets it expire)."""
DESCRIPTION = "Payment plan installment"
SYSTEM = Actor("system")


def lease_length(settings: Settings) -> timedelta:
    """Long enough for the gateway call (it times out) and the writes around it; a crashed runner's
    installments are taken up again after it."""
    return max(timedelta(seconds=settings.adapter_timeout_seconds * 4), LEASE_FLOOR)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one charge did: ``paid``, ``declined``, ``unknown`` (ask again later) or ``skipped``."""

    result: str
    message: str | None = None


async def run_installments(host: PluginHost, settings: Settings, now: datetime) -> dict[str, int]:
    """One pass: reminders, then charges (and reconciliations), then missed installments and defaults."""
    reminded = await send_reminders(settings, now)
    outcomes = await charge_due(host, settings, now)
    missed = await count_missed(host, settings, now)
    return {"reminded": reminded, "missed": missed, **{name: outcomes.count(name) for name in set(outcomes)}}


# --- Reminders -------------------------------------------------------------------------------------


async def send_reminders(settings: Settings, now: datetime) -> int:
    """Queue one reminder per installment, ``reminder_days`` before its date (its key makes it once)."""
    today = today_in(settings, now)
    horizon = today + timedelta(days=settings.plans.reminder_days)
    rows = (
        await PlanInstallment.select(PlanInstallment.id)
        .where(
            (PlanInstallment.status == "scheduled")
            & (PlanInstallment.reminded.eq(False))
            & (PlanInstallment.down_payment.eq(False))
            & (PlanInstallment.due_on <= horizon)
            & (PlanInstallment.due_on >= today)
            & (PlanInstallment.plan.status == "active")
        )
        .limit(BATCH)
        .run()
    )
    sent = 0
    for row in rows:
        async with transaction():
            flipped = (
                await PlanInstallment.update({PlanInstallment.reminded: True})
                .where((PlanInstallment.id == row["id"]) & PlanInstallment.reminded.eq(False))
                .returning(*PlanInstallment.all_columns())
                .run()
            )
            if not flipped:
                continue  # another runner reminded it
            installment = flipped[0]
            plan = await PaymentPlan.select().where(PaymentPlan.id == installment["plan"]).first().run()
            assert plan is not None
            values = _installment_values(installment) | {"autopay": bool(plan["method_reference"])}
            await enqueue_notice(
                plan, "reminder", f"reminder:{installment['public_id']}:{installment['due_on']}", now, values
            )
            sent += 1
    return sent


def _installment_values(installment: dict[str, Any]) -> dict[str, Any]:
    return {"amount": installment["amount"], "due_on": installment["due_on"].isoformat()}


# --- Charging --------------------------------------------------------------------------------------


async def charge_due(host: PluginHost, settings: Settings, now: datetime) -> list[str]:
    """Charge every due autopay installment, and settle every attempt whose outcome is unknown."""
    due = (
        await PlanInstallment.select(PlanInstallment.id)
        .where(
            (PlanInstallment.status == "scheduled")
            & (PlanInstallment.next_attempt_at <= now)
            & (PlanInstallment.leased_until.is_null() | (PlanInstallment.leased_until < now))
            & (PlanInstallment.plan.status == "active")
            & PlanInstallment.plan.method_reference.is_not_null()
        )
        .order_by(PlanInstallment.next_attempt_at)
        .limit(BATCH)
        .run()
    )
    # A runner that died mid-charge left its attempt started: whatever the installment's state now.
    unknown = (
        await InstallmentAttempt.select(InstallmentAttempt.installment)
        .where(
            (InstallmentAttempt.state == "started")
            & (InstallmentAttempt.started_at <= now - lease_length(settings))
            & (
                InstallmentAttempt.installment.leased_until.is_null()
                | (InstallmentAttempt.installment.leased_until < now)
            )
        )
        .limit(BATCH)
        .run()
    )
    wanted = list(dict.fromkeys([row["id"] for row in due] + [row["installment"] for row in unknown]))
    outcomes = []
    for installment_id in wanted:
        installment = await _lease(installment_id, now, lease_length(settings))
        if installment is None:
            continue  # another runner has it
        outcomes.append((await _work(host, settings, installment, now)).result)
    return outcomes


async def charge_now(host: PluginHost, settings: Settings, installment: dict[str, Any]) -> Outcome:
    """Charge one installment of a plan with a saved method now (the patient paying ahead)."""
    now = host.clock()
    leased = await _lease(installment["id"], now, lease_length(settings))
    if leased is None:
        return Outcome("unknown")  # a runner is charging it this very moment
    return await _work(host, settings, leased, now, ahead=True)


async def _lease(installment_id: int, now: datetime, length: timedelta) -> dict[str, Any] | None:
    rows = (
        await PlanInstallment.update({PlanInstallment.leased_until: now + length})
        .where(
            (PlanInstallment.id == installment_id)
            & (PlanInstallment.leased_until.is_null() | (PlanInstallment.leased_until < now))
        )
        .returning(*PlanInstallment.all_columns())
        .run()
    )
    return rows[0] if rows else None


async def _release(installment: dict[str, Any], *, until: datetime | None = None, **values: Any) -> None:
    """Let go of the installment (``until``: not before then, to pace a check that has to wait)."""
    await (
        PlanInstallment.update({PlanInstallment.leased_until: until, **values})
        .where(PlanInstallment.id == installment["id"])
        .run()
    )


async def _work(
    host: PluginHost, settings: Settings, installment: dict[str, Any], now: datetime, *, ahead: bool = False
) -> Outcome:
    plan = await PaymentPlan.select().where(PaymentPlan.id == installment["plan"]).first().run()
    assert plan is not None
    attempt = (
        await InstallmentAttempt.select()
        .where((InstallmentAttempt.installment == installment["id"]) & (InstallmentAttempt.state == "started"))
        .order_by(InstallmentAttempt.number, ascending=False)
        .first()
        .run()
    )
    if attempt is None:
        due = installment["next_attempt_at"] is not None and installment["next_attempt_at"] <= now
        chargeable = installment["status"] == "scheduled" or (ahead and installment["status"] == "missed")
        if not (chargeable and plan["status"] == "active" and plan["method_reference"] and (due or ahead)):
            await _release(installment)
            return Outcome("skipped")
        attempt = await _begin_attempt(plan, installment, now)
        if attempt is None:
            await _release(installment)
            return Outcome("skipped")  # a racing runner wrote this attempt first
    if attempt["via"] == "checkout":
        return await _settle_checkout(host, settings, plan, installment, attempt, now)
    charge = OffSessionCharge(
        method_reference=attempt["method_reference"],
        customer_reference=plan["customer_reference"],
        amount=Money(attempt["amount"], plan["currency"]),
        description=DESCRIPTION,
        metadata={
            "carefront_plan": str(plan["public_id"]),
            "carefront_installment": str(installment["public_id"]),
            "carefront_attempt": str(attempt["number"]),
        },
    )
    try:
        payment = await host.gateway.charge_saved_method(charge, idempotency_key=attempt["idempotency_key"])
    except Refused as refusal:
        return await _declined(host, settings, plan, installment, attempt, refusal.code, refusal.message, now)
    except NotFound:
        message = "The saved card could not be found. Please add a card again."
        return await _declined(host, settings, plan, installment, attempt, "method_missing", message, now)
    except Unavailable:
        # Outcome unknown: the attempt stays started and is asked about again, with the same key.
        await _release(installment, next_attempt_at=now + UNKNOWN_RETRY)
        return Outcome("unknown")
    if payment.status is PaymentStatus.SUCCEEDED:
        return await _succeeded(host, plan, installment, attempt, payment, now)
    if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        code = "card_declined"
        return await _declined(host, settings, plan, installment, attempt, code, payment.failure_message or "", now)
    if payment.status is PaymentStatus.REQUIRES_ACTION:
        message = "Your bank wants you to confirm this payment. Please pay this installment yourself."
        return await _declined(host, settings, plan, installment, attempt, "authentication_required", message, now)
    await _release(installment, next_attempt_at=now + UNKNOWN_RETRY)  # pending at the gateway: ask again later
    return Outcome("unknown")


async def _begin_attempt(
    plan: dict[str, Any], installment: dict[str, Any], now: datetime, *, via: str = "saved_method"
) -> dict[str, Any] | None:
    """Write (and commit) the next attempt before the gateway is called; None if another runner did."""
    number = installment["attempts"] + 1
    inserted = (
        await InstallmentAttempt.insert(
            InstallmentAttempt(
                installment=installment["id"],
                number=number,
                idempotency_key=f"plan-installment:{installment['public_id']}:{number}",
                via=via,
                method_reference=plan["method_reference"] if via == "saved_method" else "",
                amount=installment["amount"],
                state="started",
                started_at=now,
            )
        )
        .on_conflict(target=InstallmentAttempt.idempotency_key, action="DO NOTHING")
        .returning(*InstallmentAttempt.all_columns())
        .run()
    )
    if not inserted:
        return None
    await (
        PlanInstallment.update({PlanInstallment.attempts: number}).where(PlanInstallment.id == installment["id"]).run()
    )
    row: dict[str, Any] = inserted[0]
    return row


async def _succeeded(
    host: PluginHost,
    plan: dict[str, Any],
    installment: dict[str, Any],
    attempt: dict[str, Any],
    payment: Payment,
    now: datetime,
) -> Outcome:
    holder = await accounts.find(plan["holder_account_id"]) if parse_uuid(plan["holder_account_id"]) else None
    settled_row: dict[str, Any] | None = None
    completed = False
    async with transaction():
        await (
            InstallmentAttempt.update(
                {
                    InstallmentAttempt.state: "succeeded",
                    InstallmentAttempt.payment_reference: payment.reference,
                    InstallmentAttempt.finished_at: now,
                }
            )
            .where((InstallmentAttempt.id == attempt["id"]) & (InstallmentAttempt.state == "started"))
            .run()
        )
        flipped = (
            await PlanInstallment.update(
                {
                    PlanInstallment.status: "paid",
                    PlanInstallment.paid_at: now,
                    PlanInstallment.leased_until: None,
                    PlanInstallment.next_attempt_at: None,
                    PlanInstallment.failure_message: None,
                }
            )
            .where((PlanInstallment.id == installment["id"]) & (PlanInstallment.status != "paid"))
            .returning(PlanInstallment.id)
            .run()
        )
        if flipped:
            intent = payment_attempts.Intent(
                patient_id=plan["patient_id"],
                amount=Money(attempt["amount"], plan["currency"]),
                statement_id=None,
                payer=payment_attempts.Payer(
                    "plan",
                    account_id=plan["holder_account_id"],
                    language=holder["language"] if holder else host.settings.hospital.default_language,
                ),
            )
            begun = await payment_attempts.begin(intent, attempt["idempotency_key"], now=now)
            settled = await settlement.settle(begun.attempt, payment, now=now)
            settled_row = settled.attempt
            await (
                PlanInstallment.update({PlanInstallment.payment_id: str(settled_row["public_id"])})
                .where(PlanInstallment.id == installment["id"])
                .run()
            )
            await _history(plan, "installment_paid", now, installment, attempt)
            still_owed = await PlanInstallment.count().where(
                (PlanInstallment.plan == plan["id"]) & PlanInstallment.status.is_in(["scheduled", "missed"])
            )
            if not still_owed and plan["status"] in LIVE:
                completed = True
                await (
                    PaymentPlan.update({PaymentPlan.status: "completed", PaymentPlan.ended_at: now})
                    .where(PaymentPlan.id == plan["id"])
                    .run()
                )
                await record_change(plan, "completed", SYSTEM, now, {})
    if settled_row is not None:
        settlement.announce(host, settled_row, plan_id=str(plan["public_id"]))
    if completed:
        emit_change(host, plan, "completed", now)
    return Outcome("paid")


async def _history(
    plan: dict[str, Any], change: str, now: datetime, installment: dict[str, Any], attempt: dict[str, Any]
) -> None:
    """A runner's line in the plan's history (no email: notices are queued separately)."""
    await PlanChange.insert(
        PlanChange(
            plan=plan["id"],
            change=change,
            actor=SYSTEM.who,
            detail=json.dumps({"installment": str(installment["public_id"]), "attempt": attempt["number"]}),
            occurred_at=now,
        )
    ).run()


async def _declined(
    host: PluginHost,
    settings: Settings,
    plan: dict[str, Any],
    installment: dict[str, Any],
    attempt: dict[str, Any],
    code: str,
    message: str,
    now: datetime,
) -> Outcome:
    retries = settings.plans.retry_days
    retry = attempt["number"] <= len(retries) and code != "authentication_required"
    retry_on = installment["due_on"] + timedelta(days=retries[attempt["number"] - 1]) if retry else None
    next_at = charge_moment(settings, retry_on) if retry_on else None
    async with transaction():
        changed = (
            await InstallmentAttempt.update(
                {
                    InstallmentAttempt.state: "declined",
                    InstallmentAttempt.decline_code: code[:64],
                    InstallmentAttempt.finished_at: now,
                }
            )
            .where((InstallmentAttempt.id == attempt["id"]) & (InstallmentAttempt.state == "started"))
            .returning(InstallmentAttempt.id)
            .run()
        )
        await _release(installment, next_attempt_at=next_at, failure_message=message[:500])
        if changed:
            await _history(plan, "installment_declined", now, installment, attempt)
            values = _installment_values(installment) | {
                "retry_on": retry_on.isoformat() if retry_on else None,
                "message": message[:500],
            }
            await enqueue_notice(plan, "declined", f"declined:{attempt['idempotency_key']}", now, values)
    return Outcome("declined", message)


# --- Paying an installment by hand, on the gateway's page ------------------------------------------


def checkout_request(
    settings: Settings, plan: dict[str, Any], installment: dict[str, Any], attempt: dict[str, Any]
) -> CheckoutRequest:
    """The checkout for one attempt; the same attempt always gives the same request (a repeat is idempotent)."""
    return_url = f"{settings.public_url}/plans/{plan['public_id']}/paid"
    return CheckoutRequest(
        amount=Money(attempt["amount"], plan["currency"]),
        description=DESCRIPTION,
        customer_reference=plan["customer_reference"],
        return_url=return_url,
        cancel_url=return_url + "?cancelled=1",
        metadata={"carefront_plan": str(plan["public_id"]), "carefront_installment": str(installment["public_id"])},
    )


async def start_checkout_payment(
    host: PluginHost, settings: Settings, plan: dict[str, Any], installment: dict[str, Any]
) -> Checkout | None:
    """The gateway's page to pay ``installment`` now: the attempt is written first, and a second press
    finds it and its checkout. None while a runner is working on the installment."""
    now = host.clock()
    leased = await _lease(installment["id"], now, lease_length(settings))
    if leased is None:
        return None
    try:
        attempt = await _started(leased["id"])
        if attempt is not None and attempt["via"] != "checkout":
            return None  # an autopay charge is in flight: its outcome comes first
        attempt = attempt or await _begin_attempt(plan, leased, now, via="checkout")
        if attempt is None:
            return None
        checkout = await host.gateway.start_checkout(
            checkout_request(settings, plan, leased, attempt), idempotency_key=attempt["idempotency_key"]
        )
        await (
            InstallmentAttempt.update({InstallmentAttempt.method_reference: checkout.reference})
            .where(InstallmentAttempt.id == attempt["id"])
            .run()
        )
        return checkout
    finally:
        await _release(leased)


async def settle_returned(
    host: PluginHost, settings: Settings, plan: dict[str, Any], checkout_reference: str
) -> Outcome:
    """Back from the gateway's page: record what the checkout of one of this plan's installments did."""
    attempt = (
        await InstallmentAttempt.select()
        .where(
            (InstallmentAttempt.via == "checkout")
            & (InstallmentAttempt.method_reference == checkout_reference)
            & (InstallmentAttempt.installment.plan == plan["id"])
        )
        .first()
        .run()
    )
    if attempt is None:
        return Outcome("skipped")
    if attempt["state"] != "started":
        return Outcome("paid" if attempt["state"] == "succeeded" else "declined")
    now = host.clock()
    installment = await _lease(attempt["installment"], now, lease_length(settings))
    if installment is None:
        return Outcome("unknown")
    return await _settle_checkout(host, settings, plan, installment, attempt, now)


async def _started(installment_id: int) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await InstallmentAttempt.select()
        .where((InstallmentAttempt.installment == installment_id) & (InstallmentAttempt.state == "started"))
        .first()
        .run()
    )
    return row


async def _settle_checkout(
    host: PluginHost,
    settings: Settings,
    plan: dict[str, Any],
    installment: dict[str, Any],
    attempt: dict[str, Any],
    now: datetime,
) -> Outcome:
    """A checkout attempt: ask the gateway what became of it (learning its reference again if the
    process died before keeping it)."""
    try:
        reference = attempt["method_reference"]
        if not reference:
            checkout = await host.gateway.start_checkout(
                checkout_request(settings, plan, installment, attempt), idempotency_key=attempt["idempotency_key"]
            )
            reference = checkout.reference
            await (
                InstallmentAttempt.update({InstallmentAttempt.method_reference: reference})
                .where(InstallmentAttempt.id == attempt["id"])
                .run()
            )
        payment = await host.gateway.read_payment(reference)
    except (Unavailable, Refused):
        await _release(installment)
        return Outcome("unknown")
    if payment.status is PaymentStatus.SUCCEEDED:
        return await _succeeded(host, plan, installment, attempt, payment, now)
    if payment.status in (PaymentStatus.FAILED, PaymentStatus.CANCELED):
        await (
            InstallmentAttempt.update(
                {
                    InstallmentAttempt.state: "declined",
                    InstallmentAttempt.decline_code: "checkout_not_paid",
                    InstallmentAttempt.finished_at: now,
                }
            )
            .where((InstallmentAttempt.id == attempt["id"]) & (InstallmentAttempt.state == "started"))
            .run()
        )
        await _release(installment)
        return Outcome("declined", payment.failure_message)
    await _release(installment, until=now + CHECKOUT_RECHECK)  # the patient may still be on the gateway's page
    return Outcome("unknown")


# --- Missed installments and default ---------------------------------------------------------------


async def count_missed(host: PluginHost, settings: Settings, now: datetime) -> int:
    """Mark installments unpaid ``grace_days`` after their date as missed; default a plan after N."""
    cutoff = today_in(settings, now) - timedelta(days=settings.plans.grace_days)
    rows = (
        await PlanInstallment.select(PlanInstallment.id, PlanInstallment.plan)
        .where(
            (PlanInstallment.status == "scheduled")
            & (PlanInstallment.due_on < cutoff)
            & (PlanInstallment.plan.status == "active")
            & (PlanInstallment.leased_until.is_null() | (PlanInstallment.leased_until < now))
        )
        .order_by(PlanInstallment.due_on)
        .limit(BATCH)
        .run()
    )
    counted = 0
    for row in rows:
        in_flight = await InstallmentAttempt.count().where(
            (InstallmentAttempt.installment == row["id"]) & (InstallmentAttempt.state == "started")
        )
        if in_flight:
            continue  # its outcome is not known yet: reconciled first
        defaulted = None
        async with transaction():
            flipped = (
                await PlanInstallment.update({PlanInstallment.status: "missed", PlanInstallment.next_attempt_at: None})
                .where((PlanInstallment.id == row["id"]) & (PlanInstallment.status == "scheduled"))
                .returning(*PlanInstallment.all_columns())
                .run()
            )
            if not flipped:
                continue
            counted += 1
            plan_rows = (
                await PaymentPlan.update({PaymentPlan.missed_count: PaymentPlan.missed_count + 1})
                .where(PaymentPlan.id == row["plan"])
                .returning(*PaymentPlan.all_columns())
                .run()
            )
            plan = plan_rows[0]
            installment = flipped[0]
            await _history(plan, "installment_missed", now, installment, {"number": installment["attempts"]})
            if plan["missed_count"] >= settings.plans.missed_before_default and plan["status"] == "active":
                await (
                    PlanInstallment.update({PlanInstallment.status: "cancelled", PlanInstallment.next_attempt_at: None})
                    .where((PlanInstallment.plan == plan["id"]) & (PlanInstallment.status == "scheduled"))
                    .run()
                )
                await (
                    PaymentPlan.update({PaymentPlan.status: "defaulted", PaymentPlan.ended_at: now})
                    .where(PaymentPlan.id == plan["id"])
                    .run()
                )
                await record_change(plan, "defaulted", SYSTEM, now, {"missed": plan["missed_count"]})
                defaulted = plan
            else:
                values = _installment_values(installment) | {"missed": plan["missed_count"]}
                await enqueue_notice(plan, "missed", f"missed:{installment['public_id']}", now, values)
        if defaulted is not None:
            emit_change(host, defaulted, "defaulted", now)
    return counted
