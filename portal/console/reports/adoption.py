"""Portal adoption: patient accounts opened each day, accounts on paperless statements, and how
payments were made (self-service or through a pay link a representative sent)."""

from __future__ import annotations

from collections import Counter

from portal.console.reports import charts
from portal.console.reports.catalogue import Report, Table
from portal.console.reports.collected import Collected, by_channel
from portal.console.reports.figures import Column, Figures, Label
from portal.console.reports.period import Period
from portal.i18n import N_
from portal.identity.tables import Account

SIGN_UPS = Label("sign_ups", N_("Sign-ups"))


async def report(period: Period, payments: list[Collected]) -> Report:
    opened = await Account.select(Account.created_at).where(
        (Account.realm == "patient") & (Account.created_at >= period.start) & (Account.created_at < period.end)
    )
    per_day = Counter(period.day_of(row["created_at"]) for row in opened)
    days = period.days()
    sign_ups = Figures(
        (Column("day", N_("Day"), "day"), Column("sign_ups", N_("Sign-ups"), "count")),
        tuple((day, per_day[day]) for day in days),
    )
    chart = charts.columns(days, [SIGN_UPS], lambda day, _: per_day[day], unit="count")
    accounts = await Account.count().where(Account.realm == "patient")
    paperless = await Account.count().where((Account.realm == "patient") & (Account.paperless.eq(True)))
    on_paperless = Figures(
        (
            Column("patient_accounts", N_("Patient accounts"), "count"),
            Column("paperless", N_("On paperless statements"), "count"),
            Column("paperless_percent", N_("Share on paperless"), "percent"),
        ),
        ((accounts, paperless, tenths_of_percent(paperless, accounts)),),
    )
    return Report(
        "adoption",
        (
            Table(
                "sign-ups",
                N_("Sign-ups by day"),
                sign_ups,
                chart,
                (None, len(opened)),
                N_(
                    "Columns, one for each day from %(since)s to %(until)s: patient accounts opened that day. The table "
                    "gives every number."
                ),
            ),
            Table("paperless", N_("Paperless statements today"), on_paperless),
            by_channel(payments),
        ),
        facts={"sign_ups": len(opened)},
    )


def tenths_of_percent(part: int, whole: int) -> int:
    """``part`` of ``whole`` in tenths of a percent, rounded half up, in integers (1 of 3 -> 333)."""
    return (part * 2000 + whole) // (2 * whole) if whole else 0
