"""Payment plans: how the live ones stand today, and what happened to plans during the period.

Today: a live plan (active or paused) with an installment missed and not yet paid is behind; else a
paused one is paused and an active one is current. During the period: plans set up, installments
missed (from each plan's history) and plans that ended in default, with what they left unpaid.
"""

from __future__ import annotations

from collections import defaultdict

from carefront_sdk.models import Money

from portal.console.reports import charts
from portal.console.reports.catalogue import Report, Table
from portal.console.reports.figures import Column, Figures, Label
from portal.console.reports.period import Period
from portal.i18n import N_
from portal.plans.agreements import LIVE
from portal.plans.tables import PaymentPlan, PlanChange, PlanInstallment

STANDINGS = {
    "current": N_("Active and up to date"),
    "behind": N_("Behind: an installment missed"),
    "paused": N_("Paused"),
    "defaulted": N_("Ended in default during these days"),
}
UNPAID = ("scheduled", "missed")
LEFT_BY_DEFAULT = ("missed", "cancelled")
"""A defaulted plan's scheduled installments are cancelled; with the missed ones they are what it left unpaid."""


async def report(period: Period) -> Report:
    live = await PaymentPlan.select(PaymentPlan.id, PaymentPlan.status, PaymentPlan.currency).where(
        PaymentPlan.status.is_in(list(LIVE))
    )
    defaulted = await PaymentPlan.select(PaymentPlan.id, PaymentPlan.currency).where(
        (PaymentPlan.status == "defaulted")
        & (PaymentPlan.ended_at >= period.start)
        & (PaymentPlan.ended_at < period.end)
    )
    owed = await PlanInstallment.select(PlanInstallment.plan, PlanInstallment.status, PlanInstallment.amount).where(
        (PlanInstallment.plan.status.is_in(list(LIVE)) & PlanInstallment.status.is_in(list(UNPAID)))
        | (
            (PlanInstallment.plan.status == "defaulted")
            & (PlanInstallment.plan.ended_at >= period.start)
            & (PlanInstallment.plan.ended_at < period.end)
            & PlanInstallment.status.is_in(list(LEFT_BY_DEFAULT))
        )
    )
    left: dict[int, int] = defaultdict(int)
    missed: dict[int, int] = defaultdict(int)
    for installment in owed:
        left[installment["plan"]] += installment["amount"]
        missed[installment["plan"]] += installment["status"] == "missed"
    currency = live[0]["currency"] if live else defaulted[0]["currency"] if defaulted else "USD"
    plans_in: dict[str, list[int]] = {standing: [] for standing in STANDINGS}
    for plan in live:
        standing = "behind" if missed[plan["id"]] else "paused" if plan["status"] == "paused" else "current"
        plans_in[standing].append(plan["id"])
    plans_in["defaulted"] = [plan["id"] for plan in defaulted]
    rows = tuple(
        (
            Label(standing, STANDINGS[standing]),
            len(ids),
            sum(missed[plan_id] for plan_id in ids),
            Money(sum(left[plan_id] for plan_id in ids), currency),
        )
        for standing, ids in plans_in.items()
    )
    figures = Figures(
        (
            Column("standing", N_("Standing"), "label"),
            Column("plans", N_("Plans"), "count"),
            Column("missed_installments", N_("Installments missed, unpaid"), "count"),
            Column("left_to_pay", N_("Left to pay"), "money"),
        ),
        rows,
    )
    chart = charts.bars([(label, count) for label, count, _, _ in rows], unit="count")
    set_up = await PaymentPlan.count().where(
        (PaymentPlan.created_at >= period.start) & (PaymentPlan.created_at < period.end)
    )
    missed_in_period = await PlanChange.count().where(
        (PlanChange.change == "installment_missed")
        & (PlanChange.occurred_at >= period.start)
        & (PlanChange.occurred_at < period.end)
    )
    return Report(
        "plans",
        (
            Table(
                "plans",
                N_("Payment plans by standing"),
                figures,
                chart,
                description=N_(
                    "Bars: how many live payment plans stand each way today, and how many ended in default from "
                    "%(since)s to %(until)s. The table gives every number."
                ),
            ),
        ),
        facts={"live": len(live), "set_up": set_up, "missed_in_period": missed_in_period},
    )
