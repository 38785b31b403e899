"""Payment plan agreements: making one, reading one, and every change a patient or staff member makes.

A service: no HTTP. Every function that reads a plan takes the patient the session acts for, and a
plan of someone else's is ``NotFound`` exactly like a missing one (PROMISES.md 2). Each change is one
transaction: the plan's rows, a line in its history, and the confirmation email through the outbox;
the event hook is emitted after the commit.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from carefront_sdk.errors import NotFound, Refused
from carefront_sdk.models import Money, PlanEvent

from portal.database import transaction
from portal.outbox.relay import enqueue
from portal.plans.schedule import Installment, Problem, build_schedule, max_months
from portal.plans.tables import PaymentPlan, PlanChange, PlanInstallment, PlanStatement
from portal.plugin_host import PluginHost
from portal.settings import Settings

AGREEMENT_VERSION = "2026-11"
"""The agreement text's version (templates/plans/agreement.html), kept with each plan."""
NOTICE = "plans.notice"
"""The outbox kind of every email about a plan (portal.plans.notices delivers it)."""
LIVE = ("active", "paused")
OPEN_INSTALLMENTS = ("scheduled", "missed")
"""Installments still owed."""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: ``account:<public id>`` (or ``system``), whether they are staff, and staff's reason."""

    who: str
    staff: bool = False
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """An installment as a page shows it."""

    due_on: date
    money: Money
    down_payment: bool = False
    status: str = "scheduled"
    failure_message: str | None = None


def rows_of(installments: Sequence[Any], currency: str = "USD") -> list[Row]:
    """Installment rows (or a proposed schedule's :class:`Installment`) as :class:`Row`."""
    rows = []
    for item in installments:
        if isinstance(item, Installment):
            rows.append(Row(item.due_on, Money(item.amount, currency), item.down_payment))
        else:
            rows.append(
                Row(
                    item["due_on"],
                    Money(item["amount"], currency),
                    item["down_payment"],
                    item["status"],
                    item["failure_message"],
                )
            )
    return rows


@dataclass(frozen=True, slots=True)
class PlanView:
    """A plan as its page shows it."""

    plan: dict[str, Any]
    installments: list[dict[str, Any]]
    """Every installment that is or was owed (superseded ones left out), by date."""
    statements: list[dict[str, Any]]
    history: list[dict[str, Any]]
    paid: int
    remaining: int
    next_due: dict[str, Any] | None

    @property
    def public_id(self) -> str:
        return str(self.plan["public_id"])

    @property
    def rows(self) -> list[Row]:
        return rows_of(self.installments, self.plan["currency"])

    def money(self, amount: int) -> Money:
        return Money(amount, self.plan["currency"])


def today_in(settings: Settings, now: datetime) -> date:
    return now.astimezone(ZoneInfo(settings.hospital.time_zone)).date()


def charge_moment(settings: Settings, due_on: date) -> datetime:
    """When an autopay installment is charged: the start of its day in the hospital's time zone."""
    return datetime.combine(due_on, time(0), tzinfo=ZoneInfo(settings.hospital.time_zone)).astimezone(UTC)


def parse_uuid(text: str) -> uuid.UUID | None:
    """``text`` as a UUID, or None when it is not one."""
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


async def live_plan_of(patient_id: str) -> dict[str, Any] | None:
    """The patient's active or paused plan, if any."""
    row: dict[str, Any] | None = (
        await PaymentPlan.select()
        .where((PaymentPlan.patient_id == patient_id) & PaymentPlan.status.is_in(list(LIVE)))
        .first()
        .run()
    )
    return row


async def plans_of(patient_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await PaymentPlan.select()
        .where(PaymentPlan.patient_id == patient_id)
        .order_by(PaymentPlan.created_at, ascending=False)
        .run()
    )
    return rows


async def find_plan(plan_id: str) -> dict[str, Any] | None:
    """A plan by its public id, whoever's it is: for staff pages and the runner only."""
    wanted = parse_uuid(plan_id)
    if wanted is None:
        return None
    row: dict[str, Any] | None = await PaymentPlan.select().where(PaymentPlan.public_id == wanted).first().run()
    return row


async def made_with(creation_key: str, patient_id: str) -> dict[str, Any] | None:
    """The patient's plan that the builder form with this key created, if it did."""
    row: dict[str, Any] | None = (
        await PaymentPlan.select()
        .where((PaymentPlan.creation_key == creation_key) & (PaymentPlan.patient_id == patient_id))
        .first()
        .run()
    )
    return row


async def plan_of(patient_id: str | None, plan_id: str) -> dict[str, Any]:
    """The patient's plan ``plan_id``; ``NotFound`` for a malformed, missing or someone else's id."""
    row = await find_plan(plan_id)
    if row is None or patient_id is None or row["patient_id"] != patient_id:
        raise NotFound("plan", plan_id)
    return row


async def view_of(plan: dict[str, Any]) -> PlanView:
    installments = (
        await PlanInstallment.select()
        .where((PlanInstallment.plan == plan["id"]) & (PlanInstallment.status != "superseded"))
        .order_by(PlanInstallment.due_on)
        .order_by(PlanInstallment.id)
        .run()
    )
    statements = await PlanStatement.select().where(PlanStatement.plan == plan["id"]).order_by(PlanStatement.id).run()
    history = (
        await PlanChange.select()
        .where(PlanChange.plan == plan["id"])
        .order_by(PlanChange.occurred_at, ascending=False)
        .order_by(PlanChange.id, ascending=False)
        .run()
    )
    paid = sum(row["amount"] for row in installments if row["status"] == "paid")
    remaining = sum(row["amount"] for row in installments if row["status"] in OPEN_INSTALLMENTS)
    upcoming = [row for row in installments if row["status"] == "scheduled"]
    return PlanView(plan, installments, statements, history, paid, remaining, upcoming[0] if upcoming else None)


# --- Making a plan ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewPlan:
    """What the builder agreed to: the statements and their amounts, the schedule, the day and autopay."""

    patient_id: str
    account_number: str
    holder_account_id: str
    statements: Sequence[tuple[str | None, int]]
    schedule: Sequence[Installment]
    day: int
    autopay: bool
    customer_reference: str


async def create_plan(host: PluginHost, new: NewPlan, creation_key: str, actor: Actor) -> tuple[str, bool]:
    """Store the plan once per ``creation_key``: ``(public id, True)``, or an earlier submit's ``(id, False)``.

    ``Refused("plan_exists")`` when the patient already has a live plan.
    """
    now = host.clock()
    settings = host.settings
    existing = await PaymentPlan.select(PaymentPlan.public_id).where(PaymentPlan.creation_key == creation_key).first()
    if existing is not None:
        return str(existing["public_id"]), False
    public_id = uuid.uuid4()
    try:
        async with transaction():
            if await live_plan_of(new.patient_id) is not None:
                raise Refused("plan_exists", "You already have a payment plan.")
            inserted = (
                await PaymentPlan.insert(
                    PaymentPlan(
                        public_id=public_id,
                        creation_key=creation_key,
                        patient_id=new.patient_id,
                        account_number=new.account_number,
                        holder_account_id=new.holder_account_id,
                        status="active",
                        total=sum(amount for _, amount in new.statements),
                        day_of_month=new.day,
                        autopay=new.autopay,
                        customer_reference=new.customer_reference,
                        agreement_version=AGREEMENT_VERSION,
                        created_at=now,
                    )
                )
                .on_conflict(target=PaymentPlan.creation_key, action="DO NOTHING")
                .returning(PaymentPlan.id)
                .run()
            )
            if not inserted:
                raise _AlreadyMade()
            plan_pk = inserted[0]["id"]
            for statement_id, amount in new.statements:
                await PlanStatement.insert(
                    PlanStatement(plan=plan_pk, statement_id=statement_id, amount=amount, added_at=now)
                ).run()
            await _add_installments(settings, plan_pk, new.schedule, autopay=new.autopay)
            plan = await PaymentPlan.select().where(PaymentPlan.id == plan_pk).first().run()
            assert plan is not None
            await record_change(plan, "created", actor, now, {"installments": len(new.schedule)})
    except _AlreadyMade:
        found = await PaymentPlan.select(PaymentPlan.public_id).where(PaymentPlan.creation_key == creation_key).first()
        assert found is not None
        return str(found["public_id"]), False
    host.emit("carefront_plan_created", PlanEvent(str(public_id), new.patient_id, "created", now))
    return str(public_id), True


class _AlreadyMade(Exception):
    """A concurrent submit of the same form stored the plan first."""


async def _add_installments(
    settings: Settings, plan_pk: int, schedule: Sequence[Installment], *, autopay: bool
) -> None:
    for item in schedule:
        await PlanInstallment.insert(
            PlanInstallment(
                public_id=uuid.uuid4(),
                plan=plan_pk,
                due_on=item.due_on,
                amount=item.amount,
                down_payment=item.down_payment,
                status="scheduled",
                next_attempt_at=charge_moment(settings, item.due_on) if autopay else None,
            )
        ).run()


async def record_change(plan: dict[str, Any], change: str, actor: Actor, now: datetime, detail: dict[str, Any]) -> None:
    """The history line and the confirmation email of a change, in the change's transaction."""
    await PlanChange.insert(
        PlanChange(
            plan=plan["id"],
            change=change,
            actor=actor.who,
            staff=actor.staff,
            reason=actor.reason,
            detail=json.dumps(detail, sort_keys=True),
            occurred_at=now,
        )
    ).run()
    await enqueue_notice(plan, change, f"{change}:{secrets.token_hex(8)}", now, detail)


async def enqueue_notice(
    plan: dict[str, Any], kind: str, unique: str, now: datetime, values: dict[str, Any] | None = None
) -> None:
    """Queue an email about ``plan``; ``unique`` makes the key, so the same notice is queued once."""
    payload = {"plan": str(plan["public_id"]), "kind": kind, "values": values or {}}
    await enqueue(NOTICE, payload, f"plan-notice:{plan['public_id']}:{unique}", now=now)


def emit_change(host: PluginHost, plan: dict[str, Any], change: str, now: datetime) -> None:
    host.emit("carefront_plan_changed", PlanEvent(str(plan["public_id"]), plan["patient_id"], change, now))


# --- Changes ---------------------------------------------------------------------------------------


async def _open_rows(plan: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await PlanInstallment.select()
        .where((PlanInstallment.plan == plan["id"]) & (PlanInstallment.status == "scheduled"))
        .order_by(PlanInstallment.due_on)
        .run()
    )
    return rows


async def _fresh(plan: dict[str, Any]) -> dict[str, Any]:
    row = await PaymentPlan.select().where(PaymentPlan.id == plan["id"]).first().run()
    if row is None:
        raise NotFound("plan", str(plan["public_id"]))
    return row


def _refuse_unless_live(plan: dict[str, Any], *, paused_ok: bool = True) -> None:
    if plan["status"] not in (LIVE if paused_ok else ("active",)):
        raise Refused("plan_closed", "This plan is no longer active.")


async def reschedule(
    host: PluginHost,
    plan: dict[str, Any],
    actor: Actor,
    change: str,
    *,
    day: int | None = None,
    months: int | None = None,
    monthly: int | None = None,
    add: tuple[str | None, int] | None = None,
) -> Problem | None:
    """Recompute what is still scheduled: on another ``day``, over ``months``, at ``monthly``, or with
    a statement added (``add``). Paid and missed installments stay as they are. Returns the policy's
    :class:`Problem`, or None once changed."""
    now = host.clock()
    settings = host.settings
    async with transaction():
        plan = await _fresh(plan)
        _refuse_unless_live(plan)
        scheduled = await _open_rows(plan)
        rest = sum(row["amount"] for row in scheduled) + (add[1] if add else 0)
        count = len(scheduled) or 1
        chosen_day = day or plan["day_of_month"]
        if months is None and monthly is None:
            # Keep the number of payments left, within what the policy allows for the new amount.
            limit = max_months(rest, settings.plans, staff=actor.staff) or 1
            months = max(1, min(count, limit, rest // settings.plans.minimum_monthly or 1))
        schedule = build_schedule(
            rest,
            settings.plans,
            day=chosen_day,
            start=today_in(settings, now),
            months=months,
            monthly=monthly,
            staff=actor.staff,
            with_down_payment=False,
        )
        if isinstance(schedule, Problem):
            return schedule
        await (
            PlanInstallment.update({PlanInstallment.status: "superseded", PlanInstallment.next_attempt_at: None})
            .where((PlanInstallment.plan == plan["id"]) & (PlanInstallment.status == "scheduled"))
            .run()
        )
        await _add_installments(settings, plan["id"], schedule, autopay=bool(plan["method_reference"]))
        values: dict[Any, Any] = {PaymentPlan.day_of_month: chosen_day}
        if add:
            values[PaymentPlan.total] = plan["total"] + add[1]
            await PlanStatement.insert(
                PlanStatement(plan=plan["id"], statement_id=add[0], amount=add[1], added_at=now)
            ).run()
        await PaymentPlan.update(values).where(PaymentPlan.id == plan["id"]).run()
        detail = {"installments": len(schedule), "day": chosen_day, "next_amount": schedule[0].amount}
        if add:
            detail["statement"] = add[0] or ""
        await record_change(plan, change, actor, now, detail)
    emit_change(host, plan, change, now)
    return None


async def add_statement(
    host: PluginHost, plan: dict[str, Any], statement_id: str, amount: int, actor: Actor
) -> Problem | None:
    """Add a new statement's balance to the plan; the schedule recomputes."""
    if not host.settings.plans.allow_adding_statements and not actor.staff:
        raise Refused("adding_not_allowed", "New statements cannot be added to a plan.")
    taken = await PlanStatement.count().where(
        (PlanStatement.plan == plan["id"]) & (PlanStatement.statement_id == statement_id)
    )
    if taken:
        raise Refused("already_in_plan", "This statement is already in your plan.")
    return await reschedule(host, plan, actor, "statement_added", add=(statement_id, amount))


async def set_method(host: PluginHost, plan: dict[str, Any], reference: str, summary: str, actor: Actor) -> None:
    """Autopay from now on with the saved method ``reference``: every scheduled installment is charged on its date."""
    now = host.clock()
    settings = host.settings
    async with transaction():
        plan = await _fresh(plan)
        _refuse_unless_live(plan)
        first = plan["method_reference"] is None
        await (
            PaymentPlan.update(
                {
                    PaymentPlan.method_reference: reference,
                    PaymentPlan.method_summary: summary,
                    PaymentPlan.method_checkout: None,
                    PaymentPlan.autopay: True,
                }
            )
            .where(PaymentPlan.id == plan["id"])
            .run()
        )
        for row in await _open_rows(plan):
            if row["next_attempt_at"] is None:
                await (
                    PlanInstallment.update({PlanInstallment.next_attempt_at: charge_moment(settings, row["due_on"])})
                    .where(PlanInstallment.id == row["id"])
                    .run()
                )
        await record_change(plan, "autopay_started" if first else "method_changed", actor, now, {"method": summary})
    emit_change(host, plan, "method_changed", now)


async def remember_method_checkout(plan: dict[str, Any], checkout_reference: str) -> None:
    await (
        PaymentPlan.update({PaymentPlan.method_checkout: checkout_reference}).where(PaymentPlan.id == plan["id"]).run()
    )


async def cancel(host: PluginHost, plan: dict[str, Any], actor: Actor) -> None:
    """End the plan: nothing more is charged; what is left is owed on the statements again."""
    await _close(host, plan, actor, "cancelled")


async def _close(host: PluginHost, plan: dict[str, Any], actor: Actor, status: str) -> None:
    now = host.clock()
    async with transaction():
        plan = await _fresh(plan)
        _refuse_unless_live(plan)
        await (
            PlanInstallment.update({PlanInstallment.status: "cancelled", PlanInstallment.next_attempt_at: None})
            .where((PlanInstallment.plan == plan["id"]) & (PlanInstallment.status == "scheduled"))
            .run()
        )
        await (
            PaymentPlan.update({PaymentPlan.status: status, PaymentPlan.ended_at: now})
            .where(PaymentPlan.id == plan["id"])
            .run()
        )
        await record_change(plan, status, actor, now, {})
    emit_change(host, plan, status, now)


# --- Staff changes, within wider limits ------------------------------------------------------------


async def pause(host: PluginHost, plan: dict[str, Any], actor: Actor) -> None:
    """Stop charging and counting missed installments until the plan is resumed."""
    now = host.clock()
    async with transaction():
        plan = await _fresh(plan)
        _refuse_unless_live(plan, paused_ok=False)
        await PaymentPlan.update({PaymentPlan.status: "paused"}).where(PaymentPlan.id == plan["id"]).run()
        await record_change(plan, "paused", actor, now, {})
    emit_change(host, plan, "paused", now)


async def resume(host: PluginHost, plan: dict[str, Any], actor: Actor) -> Problem | None:
    """Active again; what is left is rescheduled from today on the plan's day."""
    if plan["status"] != "paused":
        raise Refused("not_paused", "This plan is not paused.")
    await PaymentPlan.update({PaymentPlan.status: "active"}).where(PaymentPlan.id == plan["id"]).run()
    return await reschedule(host, plan, actor, "resumed")


async def skip_month(host: PluginHost, plan: dict[str, Any], actor: Actor) -> None:
    """Move every scheduled installment one month later (the next one is skipped this month)."""
    now = host.clock()
    settings = host.settings
    async with transaction():
        plan = await _fresh(plan)
        _refuse_unless_live(plan)
        for row in await _open_rows(plan):
            due = row["due_on"]
            later = date(due.year + (due.month == 12), due.month % 12 + 1, min(due.day, 28))
            values: dict[Any, Any] = {PlanInstallment.due_on: later, PlanInstallment.reminded: False}
            if row["next_attempt_at"] is not None:
                values[PlanInstallment.next_attempt_at] = charge_moment(settings, later)
            await PlanInstallment.update(values).where(PlanInstallment.id == row["id"]).run()
        await record_change(plan, "skipped", actor, now, {})
    emit_change(host, plan, "skipped", now)
