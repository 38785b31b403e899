"""A statement as the patient reads it: lines grouped by visit, every code and adjustment in words.

No HTTP and no I/O: :func:`explain` takes the EHR's statement, the page's dictionary and the
payments made here, and lays them out so that every sum on the page is visibly the sum of the
figures above it (see :class:`carefront_sdk.models.ChargeLine` for how a line adds up).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from carefront_sdk.models import Adjustment, ChargeLine, Money, Statement, StatementSummary, Visit

from portal.billing.balances import StatementDue
from portal.billing.dictionary import PATIENT_OWES_GROUP, Dictionary
from portal.payments.ledger import PortalPayment

FIRST_LINES = 5
"""Lines a collapsed visit shows before "Show all N lines"."""


@dataclass(frozen=True, slots=True)
class ExplainedAdjustment:
    """An adjustment in words: its group ("you don't owe this" or "your share"), its reason and
    its remarks (a code nobody describes reads as the code)."""

    adjustment: Adjustment
    reason: str
    group: str
    remarks: tuple[str, ...]

    @property
    def amount(self) -> Money:
        return self.adjustment.amount


@dataclass(frozen=True, slots=True)
class ExplainedLine:
    line: ChargeLine
    description: str
    reductions: tuple[ExplainedAdjustment, ...]
    """What lowers the charge (every group but PR): nobody owes it."""
    shares: tuple[ExplainedAdjustment, ...]
    """PR adjustments: why the patient owes part of the charge; they do not lower it."""


@dataclass(frozen=True, slots=True)
class VisitCharges:
    """A visit's lines and their sums; ``visit`` is None for lines the EHR gave no known visit."""

    visit: Visit | None
    lines: tuple[ExplainedLine, ...]
    charged: Money
    insurance_paid: Money
    adjustments: Money
    """Reductions (every group but PR): what nobody owes."""
    patient_owes: Money
    expanded: bool

    @property
    def key(self) -> str:
        return self.visit.id if self.visit else "other"

    @property
    def shown(self) -> tuple[ExplainedLine, ...]:
        return self.lines if self.expanded else self.lines[:FIRST_LINES]

    @property
    def hidden(self) -> int:
        return len(self.lines) - len(self.shown)


@dataclass(frozen=True, slots=True)
class ExplainedStatement:
    summary: StatementSummary
    due: StatementDue
    visits: tuple[VisitCharges, ...]
    payments: tuple[PortalPayment, ...]
    """Payments made here towards this statement, newest first."""


def explain_line(line: ChargeLine, dictionary: Dictionary) -> ExplainedLine:
    explained = [
        ExplainedAdjustment(
            adjustment,
            dictionary.reason(adjustment.reason_code),
            dictionary.group(adjustment.group_code),
            tuple(dictionary.remark(code) for code in adjustment.remark_codes),
        )
        for adjustment in line.adjustments
    ]
    return ExplainedLine(
        line,
        dictionary.line(line),
        reductions=tuple(item for item in explained if item.adjustment.group_code != PATIENT_OWES_GROUP),
        shares=tuple(item for item in explained if item.adjustment.group_code == PATIENT_OWES_GROUP),
    )


def _sum(amounts: Iterable[Money], currency: str) -> Money:
    return Money(sum(amount.amount for amount in amounts), currency)


def visit_charges(
    visit: Visit | None, lines: Iterable[ChargeLine], dictionary: Dictionary, *, expanded: bool, currency: str
) -> VisitCharges:
    explained = tuple(explain_line(line, dictionary) for line in lines)
    reductions = (adjustment.amount for line in explained for adjustment in line.reductions)
    return VisitCharges(
        visit=visit,
        lines=explained,
        charged=_sum((line.line.charged for line in explained), currency),
        insurance_paid=_sum((line.line.insurance_paid for line in explained), currency),
        adjustments=_sum(reductions, currency),
        patient_owes=_sum((line.line.patient_owes for line in explained), currency),
        expanded=expanded,
    )


def explain(
    statement: Statement,
    dictionary: Dictionary,
    due: StatementDue,
    payments: Iterable[PortalPayment],
    *,
    expanded: Collection[str] | None = None,
) -> ExplainedStatement:
    """The statement grouped by visit, in the EHR's visit order.

    ``expanded`` names the visits that show every line; None expands them all (the PDF).
    """
    currency = statement.summary.balance.currency
    by_visit: dict[str, list[ChargeLine]] = {}
    for line in statement.lines:
        by_visit.setdefault(line.visit_id, []).append(line)
    known = {visit.id for visit in statement.visits}
    groups = [
        visit_charges(
            visit,
            by_visit.get(visit.id, ()),
            dictionary,
            expanded=expanded is None or visit.id in expanded,
            currency=currency,
        )
        for visit in statement.visits
        if visit.id in by_visit
    ]
    strays = [line for line in statement.lines if line.visit_id not in known]
    if strays:
        groups.append(
            visit_charges(None, strays, dictionary, expanded=expanded is None or "other" in expanded, currency=currency)
        )
    return ExplainedStatement(statement.summary, due, tuple(groups), tuple(payments))


def find_visit(explained: ExplainedStatement, visit_key: str) -> VisitCharges | None:
    return next((group for group in explained.visits if group.key == visit_key), None)
