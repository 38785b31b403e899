"""The billing services without HTTP: pages of a list, a statement's standing, and a statement grouped
by visit with sums that add up."""

from __future__ import annotations

from datetime import date

import pytest
from carefront_sdk.errors import NotFound
from carefront_sdk.models import Adjustment, ChargeLine, Money, Statement, StatementSummary, Visit

from portal.billing.balances import Standing, StatementDue, standing_of
from portal.billing.dictionary import Dictionary
from portal.billing.explained import FIRST_LINES, explain, find_visit
from portal.billing.statements import page_of

TODAY = date(2026, 3, 10)


def test_pages_of_a_list() -> None:
    items = list(range(23))
    assert page_of(items, 1).items == tuple(range(10))
    last = page_of(items, 3)
    assert (last.items, last.number, last.count) == ((20, 21, 22), 3, 3)
    assert page_of([], 1).count == 1, "an empty list has one empty page"
    with pytest.raises(NotFound):
        page_of(items, 4)
    with pytest.raises(NotFound):
        page_of(items, 0)


@pytest.mark.parametrize(
    ("left", "due_on", "standing"),
    [
        (0, TODAY, Standing.PAID),
        (-500, TODAY, Standing.CREDIT),
        (500, TODAY, Standing.DUE),
        (500, date(2026, 3, 9), Standing.OVERDUE),
    ],
)
def test_a_statement_stands_paid_credit_due_or_overdue(left: int, due_on: date, standing: Standing) -> None:
    assert standing_of(Money(left), due_on, TODAY) is standing


def charge(number: int, visit_id: str, *adjustments: Adjustment) -> ChargeLine:
    reductions = sum(a.amount.amount for a in adjustments if a.group_code != "PR")
    return ChargeLine(
        f"ln-{number}",
        visit_id,
        TODAY,
        "99213",
        "CPT",
        "Office visit",
        "Dr Who",
        1,
        Money(10_000),
        Money(6_000),
        adjustments,
        Money(10_000 - 6_000 - reductions),
    )


def test_a_statement_is_grouped_by_visit_with_sums_that_add_up() -> None:
    stay = Visit("vi-1", date(2026, 1, 2), "Inpatient stay", "Medicine", "Dr Who", date(2026, 1, 9))
    office = Visit("vi-2", date(2026, 2, 1), "Office visit", "Family medicine", "Dr Who")
    contractual = Adjustment(Money(3_000), "CO", "45", ("N381",))
    deductible = Adjustment(Money(1_000), "PR", "1")
    lines = (
        *(charge(n, "vi-1", contractual, deductible) for n in range(12)),
        charge(12, "vi-2"),
        charge(13, "vi-gone"),
    )
    owed = sum(line.patient_owes.amount for line in lines)
    summary = StatementSummary(
        "st-1",
        "pt-1",
        "A1",
        "CODE1234",
        TODAY,
        TODAY,
        Money(140_000),
        Money(84_000),
        Money(36_000),
        Money(0),
        Money(owed),
    )
    due = StatementDue(summary, Money(0), summary.balance, Standing.DUE)
    words = Dictionary({("CARC", "45"): "The agreed price", ("CAGC", "PR"): "Your share"}, lambda text: text)
    shown = explain(Statement(summary, (stay, office), lines), words, due, (), expanded={"vi-2"})

    assert [group.key for group in shown.visits] == ["vi-1", "vi-2", "other"], "lines of no known visit come last"
    long_stay = find_visit(shown, "vi-1")
    assert long_stay is not None
    assert (len(long_stay.shown), long_stay.hidden) == (FIRST_LINES, 12 - FIRST_LINES)
    assert long_stay.adjustments == Money(12 * 3_000), "only reductions, not the patient's share"
    assert long_stay.charged - long_stay.insurance_paid - long_stay.adjustments == long_stay.patient_owes
    assert sum(group.patient_owes.amount for group in shown.visits) == summary.balance.amount
    first = long_stay.lines[0]
    assert [a.reason for a in first.reductions] == ["The agreed price"]
    assert [a.reason for a in first.shares] == ["Adjustment reason 1"], "the patient's share; a code nobody describes"
    assert [a.group for a in first.reductions + first.shares] == ["CO", "Your share"]
    assert first.reductions[0].remarks == ("Remark N381",)
    assert find_visit(shown, "vi-2").hidden == 0
    printed = explain(Statement(summary, (stay, office), lines), words, due, ())
    assert all(group.hidden == 0 for group in printed.visits), "the PDF expands every visit"
