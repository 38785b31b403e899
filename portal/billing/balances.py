"""What is left to pay: the EHR's balances less the portal's payments the EHR has not posted yet.

A payment made here reaches the EHR through the outbox; until it is posted the EHR's balance still
counts it. Every figure a patient reads as "left to pay" subtracts it
(``portal.payments.ledger.unposted_total``), so nobody pays the same money twice.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from carefront_sdk.models import Money, StatementSummary

from portal.payments.ledger import unposted_total


class Standing(enum.StrEnum):
    """A statement's status in words: paid, a credit, due on its day, or overdue."""

    PAID = "paid"
    CREDIT = "credit"
    DUE = "due"
    OVERDUE = "overdue"


@dataclass(frozen=True, slots=True)
class StatementDue:
    """One statement with what is left to pay on it, and its standing on ``today``."""

    summary: StatementSummary
    being_posted: Money
    """Payments made here towards this statement that the EHR has not posted yet."""
    left_to_pay: Money
    standing: Standing


@dataclass(frozen=True, slots=True)
class AccountDue:
    """What the patient owes across their statements."""

    amount_due: Money
    """The statements' balances less every payment made here that is not posted yet; never negative."""
    being_posted: Money
    earliest_due_on: date | None
    """The due date of the oldest statement still owing, or None when nothing is owed."""
    overdue: bool


def hospital_today(now: datetime, time_zone: str) -> date:
    """Today where the hospital is: a statement due today is not overdue until the hospital's midnight."""
    return now.astimezone(ZoneInfo(time_zone)).date()


def standing_of(left_to_pay: Money, due_on: date, today: date) -> Standing:
    if left_to_pay.amount == 0:
        return Standing.PAID
    if left_to_pay.amount < 0:
        return Standing.CREDIT
    return Standing.OVERDUE if due_on < today else Standing.DUE


async def statement_due(patient_id: str, summary: StatementSummary, today: date) -> StatementDue:
    posted_soon = await unposted_total(patient_id, summary.id, summary.balance.currency)
    left = summary.balance - posted_soon
    return StatementDue(summary, posted_soon, left, standing_of(left, summary.due_on, today))


async def statements_due(patient_id: str, summaries: Sequence[StatementSummary], today: date) -> list[StatementDue]:
    """:func:`statement_due` of each statement, asked side by side."""
    return list(await asyncio.gather(*(statement_due(patient_id, summary, today) for summary in summaries)))


async def account_due(patient_id: str, summaries: Iterable[StatementSummary], today: date) -> AccountDue:
    """The whole account: payments towards the whole balance count here, not on any one statement."""
    owing = [summary for summary in summaries if summary.balance.amount > 0]
    currency = owing[0].balance.currency if owing else "USD"
    total = Money(sum(summary.balance.amount for summary in owing), currency)
    posted_soon = await unposted_total(patient_id, None, currency)
    due = Money(max(0, (total - posted_soon).amount), currency)
    earliest = min((summary.due_on for summary in owing), default=None) if due.amount else None
    return AccountDue(due, posted_soon, earliest, earliest is not None and earliest < today)
