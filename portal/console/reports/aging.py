"""A/R aging of patient balances, from the statements the portal has read from the EHR.

Why from the snapshots: the EHR port has no "every open balance" call, and adding one to the
protocol would break every hospital's adapter. So this ages what the portal holds: the newest copy
of each statement it has read (``statements:<patient>`` lists and ``statement:<id>`` copies in
``snapshot``), i.e. the balances of patients who used the portal or whom staff looked up. It is
labelled as such on the page, with when the copies were read. A statement with a balance above
zero is aged by the days from its statement date (``issued_on``) to the hospital's today.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from carefront_sdk import codec
from carefront_sdk.models import Money, StatementSummary

from portal.console.reports import charts
from portal.console.reports.catalogue import Report, Table
from portal.console.reports.figures import Column, Figures, Label
from portal.i18n import N_
from portal.snapshots.tables import Snapshot

BUCKETS = (
    ("0-30", 30, N_("0 to 30 days")),
    ("31-60", 60, N_("31 to 60 days")),
    ("61-90", 90, N_("61 to 90 days")),
    ("91-120", 120, N_("91 to 120 days")),
    ("121+", None, N_("More than 120 days")),
)
"""Code, the last day in the bucket (None: no end), label; days since the statement date."""
_BATCH = 200


@dataclass(frozen=True, slots=True)
class Copy:
    summary: StatementSummary
    read_at: datetime


def bucket_of(issued_on: date, today: date) -> str:
    days = (today - issued_on).days
    return next(code for code, last, _ in BUCKETS if last is None or days <= last)


async def newest_copies() -> dict[str, Copy]:
    """Each statement the portal has read, as its newest copy says it, by statement id."""
    copies: dict[str, Copy] = {}
    after = 0
    where = Snapshot.key.like("statements:%") | Snapshot.key.like("statement:%")
    while True:
        rows = (
            await Snapshot.select(Snapshot.id, Snapshot.key, Snapshot.body, Snapshot.read_at)
            .where(where & (Snapshot.id > after))
            .order_by(Snapshot.id)
            .limit(_BATCH)
            .run()
        )
        if not rows:
            return copies
        for row in rows:
            for summary in _summaries(row["key"], json.loads(row["body"])):
                known = copies.get(summary.id)
                if known is None or known.read_at < row["read_at"]:
                    copies[summary.id] = Copy(summary, row["read_at"])
        after = rows[-1]["id"]


def _summaries(key: str, body: Any) -> list[StatementSummary]:
    if key.startswith("statements:"):
        return [codec.from_plain(StatementSummary, plain) for plain in body]
    return [codec.from_plain(StatementSummary, body["summary"])]


def report(copies: dict[str, Copy], today: date) -> Report:
    owing = [copy for copy in copies.values() if copy.summary.balance.amount > 0]
    currencies = sorted({copy.summary.balance.currency for copy in owing}) or ["USD"]
    sums: dict[tuple[str, str], int] = defaultdict(int)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for copy in owing:
        key = (bucket_of(copy.summary.issued_on, today), copy.summary.balance.currency)
        sums[key] += copy.summary.balance.amount
        counts[key] += 1
    rows = tuple(
        (Label(code, label), counts[(code, currency)], Money(sums[(code, currency)], currency))
        for currency in currencies
        for code, _, label in BUCKETS
    )
    figures = Figures(
        (
            Column("days_since_statement", N_("Days since the statement date"), "label"),
            Column("statements", N_("Statements"), "count"),
            Column("balance", N_("Patient balance"), "money"),
        ),
        rows,
    )
    currency = currencies[0]
    chart = charts.bars(
        [(label, amount.amount) for label, _, amount in rows if amount.currency == currency],
        unit="money",
        currency=currency,
    )
    footer = (
        (None, len(owing), Money(sum(copy.summary.balance.amount for copy in owing), currency))
        if len(currencies) == 1
        else None
    )
    reads = [copy.read_at for copy in owing]
    return Report(
        "aging",
        (
            Table(
                "aging",
                N_("A/R aging of patient balances"),
                figures,
                chart,
                footer,
                N_(
                    "Bars: patient balances by days since the statement date, as of today. The table gives every number."
                ),
            ),
        ),
        facts={
            "patients": len({copy.summary.patient_id for copy in owing}),
            "oldest_read": min(reads) if reads else None,
            "newest_read": max(reads) if reads else None,
            "today": today,
        },
    )
