"""The installment runner: a year of installments charged exactly once, declines retried on the
policy's days then missed and defaulted, reminders sent once, every success in the payments ledger."""

from __future__ import annotations

import json
import secrets
import sqlite3
from contextlib import closing
from datetime import timedelta

import pytest
from carefront_sandbox.gateway import TEST_CARDS
from carefront_sdk.models import SaveMethodRequest

from portal import jobs
from portal.outbox.tables import OutboxMessage
from portal.payments.tables import PaymentAttempt
from portal.plans import agreements, runner
from portal.plans.agreements import Actor, NewPlan
from portal.plans.schedule import Problem, build_schedule
from portal.plans.tables import InstallmentAttempt, PlanInstallment

GOOD_CARD = "4242424242424242"
DECLINES_LATER = "4000000000000341"


def host_of(portal):
    return portal.state["plugin_host"]


async def saved_card(host, customer: str, number: str = GOOD_CARD) -> tuple[str, str]:
    """Save a test card at the sandbox gateway, as the hosted page would."""
    request = SaveMethodRequest(customer_reference=customer, return_url="/r", cancel_url="/c")
    checkout = await host.gateway.start_saving_method(request, idempotency_key=f"save:{secrets.token_hex(8)}")
    await host.gateway.submit_card(checkout.reference, TEST_CARDS[number], "12/2035")
    payment = await host.gateway.read_payment(checkout.reference)
    return payment.saved_method_reference, payment.method_summary


async def make_plan(host, *, balance: int, months: int, card: str | None = GOOD_CARD, day: int = 1) -> dict:
    today = agreements.today_in(host.settings, host.clock())
    schedule = build_schedule(balance, host.settings.plans, day=day, start=today, months=months)
    assert not isinstance(schedule, Problem), schedule
    patient = f"pt-plan-{secrets.token_hex(5)}"
    customer = f"cf_test_{secrets.token_hex(6)}"
    new = NewPlan(
        patient_id=patient,
        account_number="G-1",
        holder_account_id=f"account-{secrets.token_hex(4)}",
        statements=[("st-1", balance)],
        schedule=schedule,
        day=day,
        autopay=card is not None,
        customer_reference=customer,
    )
    plan_id, created = await agreements.create_plan(host, new, f"test:{secrets.token_hex(8)}", Actor("account:test"))
    assert created
    plan = await agreements.plan_of(patient, plan_id)
    if card:
        reference, summary = await saved_card(host, customer, card)
        await agreements.set_method(host, plan, reference, summary, Actor("account:test"))
    return await agreements.plan_of(patient, plan_id)


def gateway_charges(settings, customer: str) -> list[tuple[str, int]]:
    path = next(settings.data_dir.glob("sandbox-*.sqlite3"))
    with closing(sqlite3.connect(path)) as db:
        return db.execute(
            "SELECT status, amount FROM gateway_payments WHERE customer_reference = ? ORDER BY created_at",
            (customer,),
        ).fetchall()


async def installments_of(plan) -> list[dict]:
    return (
        await PlanInstallment.select()
        .where((PlanInstallment.plan == plan["id"]) & (PlanInstallment.status != "superseded"))
        .order_by(PlanInstallment.due_on)
        .run()
    )


async def run_days(host, clock, days: int, passes: int = 1) -> None:
    for _ in range(days):
        clock.now += timedelta(days=1)
        for _ in range(passes):
            await runner.run_installments(host, host.settings, clock.now)


async def test_a_year_of_installments_each_charged_exactly_once(portal, clock):
    host = host_of(portal)
    plan = await make_plan(host, balance=120_001, months=12)
    await runner.run_installments(host, host.settings, clock.now)
    await run_days(host, clock, 370, passes=2)  # two passes a day: a second pass must find nothing to do

    rows = await installments_of(plan)
    assert len(rows) == 12
    assert all(row["status"] == "paid" for row in rows)
    assert sum(row["amount"] for row in rows) == 120_001
    charges = gateway_charges(host.settings, plan["customer_reference"])
    assert charges == [("succeeded", row["amount"]) for row in rows]
    attempts = await InstallmentAttempt.select().where(InstallmentAttempt.installment.is_in([r["id"] for r in rows]))
    assert len(attempts) == 12
    assert {a["state"] for a in attempts} == {"succeeded"}
    ledger = await PaymentAttempt.select().where(
        PaymentAttempt.idempotency_key.is_in([a["idempotency_key"] for a in attempts])
    )
    assert len(ledger) == 12
    assert {row["status"] for row in ledger} == {"succeeded"}
    assert {row["payer_kind"] for row in ledger} == {"plan"}
    keys = {f"post-payment:{row['public_id']}" for row in ledger}
    assert await OutboxMessage.count().where(OutboxMessage.idempotency_key.is_in(list(keys))) == 12
    assert (await agreements.plan_of(plan["patient_id"], str(plan["public_id"])))["status"] == "completed"


async def test_each_installment_is_charged_on_its_date_not_before(portal, clock):
    host = host_of(portal)
    plan = await make_plan(host, balance=30_000, months=3)
    first = (await installments_of(plan))[0]
    zone_today = agreements.today_in(host.settings, clock.now)
    days_before = (first["due_on"] - zone_today).days - 1
    await run_days(host, clock, days_before)
    assert gateway_charges(host.settings, plan["customer_reference"]) == []
    await run_days(host, clock, 2)
    assert gateway_charges(host.settings, plan["customer_reference"]) == [("succeeded", 10_000)]


async def test_a_decline_is_retried_on_the_policy_days_then_missed_then_the_plan_defaults(portal, clock):
    host = host_of(portal)
    policy = host.settings.plans
    plan = await make_plan(host, balance=60_000, months=6, card=DECLINES_LATER)
    events: list = []
    original_emit = host.emit
    host.emit = lambda name, event: (events.append((name, event)), original_emit(name, event))
    try:
        first = (await installments_of(plan))[0]
        today = agreements.today_in(host.settings, clock.now)
        await run_days(host, clock, (first["due_on"] - today).days)
        assert len(gateway_charges(host.settings, plan["customer_reference"])) == 1
        await run_days(host, clock, policy.retry_days[0])
        assert len(gateway_charges(host.settings, plan["customer_reference"])) == 2
        await run_days(host, clock, policy.retry_days[1] - policy.retry_days[0])
        assert len(gateway_charges(host.settings, plan["customer_reference"])) == 3
        await run_days(host, clock, 120)
    finally:
        host.emit = original_emit

    charges = gateway_charges(host.settings, plan["customer_reference"])
    # Each of the two installments until default: first try and one retry per retry day; all declined.
    assert [status for status, _ in charges] == ["failed"] * (1 + len(policy.retry_days)) * policy.missed_before_default
    rows = await installments_of(plan)
    assert [row["status"] for row in rows][: policy.missed_before_default] == ["missed"] * policy.missed_before_default
    assert {row["status"] for row in rows[policy.missed_before_default :]} == {"cancelled"}
    final = await agreements.plan_of(plan["patient_id"], str(plan["public_id"]))
    assert final["status"] == "defaulted"
    assert final["missed_count"] == policy.missed_before_default
    mine = [event.change for name, event in events if event.plan_id == str(plan["public_id"])]
    assert mine == ["defaulted"]
    notices = await OutboxMessage.select(OutboxMessage.idempotency_key).where(
        OutboxMessage.idempotency_key.like(f"plan-notice:{plan['public_id']}:%")
    )
    kinds = sorted(
        json.loads(row["payload"])["kind"]
        for row in await OutboxMessage.select(OutboxMessage.payload).where(
            OutboxMessage.idempotency_key.is_in([n["idempotency_key"] for n in notices])
        )
    )
    declines = (1 + len(policy.retry_days)) * policy.missed_before_default
    assert kinds.count("declined") == declines
    assert kinds.count("missed") == policy.missed_before_default - 1
    assert kinds.count("defaulted") == 1


async def test_reminders_are_queued_once_each_before_the_date(portal, clock):
    host = host_of(portal)
    plan = await make_plan(host, balance=40_000, months=4)
    for _ in range(3):
        await runner.run_installments(host, host.settings, clock.now)
    await run_days(host, clock, 130, passes=3)
    payloads = [
        json.loads(row["payload"])
        for row in await OutboxMessage.select(OutboxMessage.payload).where(
            OutboxMessage.idempotency_key.like(f"plan-notice:{plan['public_id']}:reminder:%")
        )
    ]
    rows = await installments_of(plan)
    assert sorted(p["values"]["due_on"] for p in payloads) == [row["due_on"].isoformat() for row in rows]
    assert len(rows) == 4
    assert all(p["values"]["autopay"] is True for p in payloads)


async def test_the_relay_sends_plan_notices_once_in_the_holders_language(portal, clock):
    host = host_of(portal)
    plan = await make_plan(host, balance=20_000, months=2)
    await jobs.run_once(host, host.settings)
    await jobs.run_once(host, host.settings)
    delivered = await OutboxMessage.select(OutboxMessage.state).where(
        OutboxMessage.idempotency_key.like(f"plan-notice:{plan['public_id']}:%")
    )
    assert delivered
    assert {row["state"] for row in delivered} == {"delivered"}


async def test_a_second_plan_for_the_same_patient_is_refused(portal, clock):
    host = host_of(portal)
    plan = await make_plan(host, balance=20_000, months=2, card=None)
    today = agreements.today_in(host.settings, clock.now)
    schedule = build_schedule(5_000, host.settings.plans, day=1, start=today, months=1)
    new = NewPlan(plan["patient_id"], "G-1", "account-x", [("st-2", 5_000)], schedule, 1, False, "cf_x")
    with pytest.raises(Exception) as refused:
        await agreements.create_plan(host, new, f"test:{secrets.token_hex(8)}", Actor("account:test"))
    assert getattr(refused.value, "code", None) == "plan_exists"
