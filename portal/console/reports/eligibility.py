"""Eligibility outcomes: the clearinghouse's answers the coverage domain kept (``eligibility_check``)
during the period — active, inactive, and rejected by AAA reject reason code."""

from __future__ import annotations

from collections import Counter

from portal.console.reports import charts
from portal.console.reports.catalogue import Report, Table
from portal.console.reports.figures import Column, Figures, Label
from portal.console.reports.period import Period
from portal.coverage.eligibility import REJECTIONS, UNKNOWN_REJECTION
from portal.coverage.tables import EligibilityCheck
from portal.i18n import N_

OUTCOMES = {"active": N_("Active"), "inactive": N_("Inactive")}
REJECTED = N_("Rejected (reason %(detail)s)")


async def report(period: Period) -> Report:
    rows = await EligibilityCheck.select(EligibilityCheck.outcome, EligibilityCheck.rejection_code).where(
        (EligibilityCheck.checked_at >= period.start) & (EligibilityCheck.checked_at < period.end)
    )
    counted = Counter((row["outcome"], row["rejection_code"] or "") for row in rows)
    lines = [(Label(outcome, name), "", None, counted[(outcome, "")]) for outcome, name in OUTCOMES.items()]
    for (outcome, code), count in sorted(counted.items()):
        if outcome == "rejected":
            meaning = REJECTIONS.get(code, (UNKNOWN_REJECTION, ""))[0]
            lines.append((Label("rejected", REJECTED, code or "?"), code, Label(meaning, meaning), count))
    figures = Figures(
        (
            Column("outcome", N_("Outcome"), "label"),
            Column("reject_reason_code", N_("AAA code"), "label"),
            Column("meaning", N_("What it means"), "label"),
            Column("checks", N_("Checks"), "count"),
        ),
        tuple((label, Label(code, code), meaning or Label("", ""), count) for label, code, meaning, count in lines),
    )
    chart = charts.bars([(label, count) for label, _, _, count in lines], unit="count")
    return Report(
        "eligibility",
        (
            Table(
                "eligibility",
                N_("Eligibility outcomes"),
                figures,
                chart,
                (None, None, None, len(rows)),
                N_(
                    "Bars: eligibility checks from %(since)s to %(until)s by outcome, rejections by reason code. The "
                    "table gives every number."
                ),
            ),
        ),
        facts={"checks": len(rows)},
    )
