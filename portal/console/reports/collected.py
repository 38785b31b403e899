"""Payments collected: money the gateway took through the portal, by the hospital's day and by method,
and by who was at the keyboard (self-service, a pay link a representative sent, a plan installment).

Read from the payments ledger (``payment_attempt``): rows that succeeded or are posted to the EHR,
on the day their success was recorded (``settled_at``). Amounts are summed in integer minor units.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date

from carefront_sdk.models import Money

from portal.console.reports import charts
from portal.console.reports.catalogue import Report, Table
from portal.console.reports.figures import Column, Figures, Label
from portal.console.reports.period import Period
from portal.i18n import N_
from portal.payments.tables import PaymentAttempt

COLLECTED = ("succeeded", "posted")
METHODS = {"card": N_("Card"), "ach": N_("Bank account"), "wallet": N_("Digital wallet")}
OTHER_METHOD = N_("Other")
CHANNELS = {"account": "self_service", "guest": "self_service", "pay_link": "staff_assisted", "plan": "plan"}
"""Payer kind to channel: a pay link is always sent by a representative (portal.payments.pay_links)."""
CHANNEL_NAMES = {
    "self_service": N_("Self-service (signed in or as a guest)"),
    "staff_assisted": N_("Staff-assisted (pay link sent by staff)"),
    "plan": N_("Plan installments"),
}


@dataclass(frozen=True, slots=True)
class Collected:
    day: date
    method: str
    channel: str
    amount: Money


async def payments_in(period: Period) -> list[Collected]:
    rows = (
        await PaymentAttempt.select(
            PaymentAttempt.amount,
            PaymentAttempt.currency,
            PaymentAttempt.method,
            PaymentAttempt.payer_kind,
            PaymentAttempt.settled_at,
        )
        .where(
            PaymentAttempt.status.is_in(list(COLLECTED))
            & (PaymentAttempt.settled_at >= period.start)
            & (PaymentAttempt.settled_at < period.end)
        )
        .run()
    )
    return [
        Collected(
            period.day_of(row["settled_at"]),
            row["method"] or "other",
            CHANNELS.get(row["payer_kind"], "self_service"),
            Money(row["amount"], row["currency"]),
        )
        for row in rows
    ]


def main_currency(payments: list[Collected]) -> str:
    """The currency most payments are in: the one the charts draw (the tables list every currency)."""
    counted = Counter(payment.amount.currency for payment in payments)
    return counted.most_common(1)[0][0] if counted else "USD"


def method_label(method: str) -> Label:
    return Label(method, METHODS.get(method, OTHER_METHOD))


def report(period: Period, payments: list[Collected]) -> Report:
    sums: dict[tuple[date, str, str], int] = defaultdict(int)
    counts: Counter[tuple[date, str, str]] = Counter()
    for payment in payments:
        key = (payment.day, payment.method, payment.amount.currency)
        sums[key] += payment.amount.amount
        counts[key] += 1
    order = {method: index for index, method in enumerate(METHODS)}
    keys = sorted(sums, key=lambda key: (key[0], order.get(key[1], len(order)), key[1], key[2]))
    figures = Figures(
        (
            Column("day", N_("Day"), "day"),
            Column("method", N_("Method"), "label"),
            Column("payments", N_("Payments"), "count"),
            Column("collected", N_("Collected"), "money"),
        ),
        tuple((key[0], method_label(key[1]), counts[key], Money(sums[key], key[2])) for key in keys),
    )
    currency = main_currency(payments)
    methods = sorted(
        {payment.method for payment in payments}, key=lambda method: (order.get(method, len(order)), method)
    )
    chart = charts.columns(
        period.days(),
        [method_label(method) for method in methods],
        lambda day, method: sums.get((day, method, currency), 0),
        unit="money",
        currency=currency,
    )
    totals = _totals(payments)
    footer = (None, None, len(payments), totals[0]) if len(totals) == 1 else None
    return Report(
        "payments",
        (
            Table(
                "payments-by-day",
                N_("Payments collected by day and method"),
                figures,
                chart,
                footer,
                N_(
                    "Columns, one for each day from %(since)s to %(until)s: the money collected that day, stacked by "
                    "payment method. The table gives every number."
                ),
            ),
        ),
        facts={"count": len(payments), "totals": totals},
    )


def by_channel(payments: list[Collected]) -> Table:
    """Self-service against staff-assisted payments (and plan installments), for the adoption report."""
    currency = main_currency(payments)
    rows = []
    for channel, name in CHANNEL_NAMES.items():
        mine = [payment for payment in payments if payment.channel == channel and payment.amount.currency == currency]
        rows.append((Label(channel, name), len(mine), Money(sum(payment.amount.amount for payment in mine), currency)))
    figures = Figures(
        (
            Column("channel", N_("Who paid"), "label"),
            Column("payments", N_("Payments"), "count"),
            Column("collected", N_("Collected"), "money"),
        ),
        tuple(rows),
    )
    chart = charts.bars([(label, count) for label, count, _ in rows], unit="count")
    return Table(
        "payments-by-channel",
        N_("Self-service and staff-assisted payments"),
        figures,
        chart,
        (None, len(payments), Money(sum(row[2].amount for row in rows), currency)),
        N_(
            "Bars: payments from %(since)s to %(until)s by who made them: the patient on their own, through a pay "
            "link staff sent, or a plan installment. The table gives every number."
        ),
    )


def _totals(payments: list[Collected]) -> list[Money]:
    sums: dict[str, int] = defaultdict(int)
    for payment in payments:
        sums[payment.amount.currency] += payment.amount.amount
    return [Money(amount, currency) for currency, amount in sorted(sums.items())]
