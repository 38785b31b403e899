"""A payment plan's schedule from a balance and the hospital's policy: pure functions, no I/O.

Amounts are integer minor units (cents). The installments of a schedule add up to the balance
exactly: equal monthly amounts, the last carrying the remainder; a down payment, when the policy asks
for one, comes first, on the start date. Every installment falls on the chosen day of the month,
strictly after the one before. A request the policy does not allow gets a :class:`Problem` naming
the rule (an English msgid, translated where it is shown), never a schedule that breaks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from portal.i18n import N_
from portal.settings import Plans

NO_BALANCE = N_("There is no balance to spread over a plan.")
TOO_LARGE = N_("This balance is too large to set up online. Call the billing office to arrange a plan.")
CHOOSE_ONE = N_("Choose a number of months or a monthly amount.")
DAY_NOT_ALLOWED = N_("Choose one of the days offered.")
TOO_MANY_MONTHS = N_("A plan for this balance can last at most %(months)s months.")
TOO_FEW_MONTHS = N_("Choose at least 1 month.")
BELOW_MINIMUM = N_("Each monthly payment must be at least %(minimum)s.")
MONTHLY_TOO_SMALL = N_("At this monthly amount the plan would last more than %(months)s months.")


@dataclass(frozen=True, slots=True)
class Installment:
    due_on: date
    amount: int
    down_payment: bool = False


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a schedule cannot be made: ``message`` (a msgid) with ``values`` to fill it, and the form field."""

    field: str
    message: str
    values: tuple[tuple[str, int], ...] = ()


def max_months(balance: int, policy: Plans, *, staff: bool = False) -> int | None:
    """The longest plan the policy allows for ``balance``; None when no tier covers it (staff: their limit)."""
    if staff:
        return policy.staff_max_months
    for tier in policy.tiers:
        if tier.up_to is None or balance <= tier.up_to:
            return tier.max_months
    return None


def down_payment(balance: int, policy: Plans) -> int:
    """What the policy asks to be paid when the plan starts (rounded up to the cent), never above the balance."""
    if policy.down_payment_percent:
        return min(balance, -(-balance * policy.down_payment_percent // 100))
    return min(balance, policy.down_payment_amount)


def next_day(after: date, day: int) -> date:
    """The first date strictly after ``after`` that falls on ``day`` of its month (1 to 28)."""
    year, month = after.year, after.month
    if after.day >= day:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return date(year, month, day)


def month_dates(first: date, count: int) -> list[date]:
    """``count`` dates a month apart from ``first`` (whose day is 1 to 28), ``first`` included."""
    dates = []
    year, month = first.year, first.month
    for _ in range(count):
        dates.append(date(year, month, first.day))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return dates


def longest_allowed(rest: int, policy: Plans, limit: int) -> int:
    """The most months ``rest`` may be spread over while each installment stays at or above the minimum."""
    return max(1, min(limit, rest // policy.minimum_monthly))


def build_schedule(
    balance: int,
    policy: Plans,
    *,
    day: int,
    start: date,
    months: int | None = None,
    monthly: int | None = None,
    staff: bool = False,
    with_down_payment: bool = True,
) -> list[Installment] | Problem:
    """The installments for ``balance``, over ``months`` or at ``monthly`` a month, on ``day`` of each month.

    ``start`` is today in the hospital's time zone: the down payment is due then, the first monthly
    installment on the next ``day`` after it. ``staff`` widens the limits to ``staff_max_months``
    and lets a representative choose any day of the month. ``with_down_payment`` False for a
    schedule recomputed on a plan that already started.
    """
    if balance <= 0:
        return Problem("statements", NO_BALANCE)
    limit = max_months(balance, policy, staff=staff)
    if limit is None:
        return Problem("statements", TOO_LARGE)
    if not (1 <= day <= 28) or (not staff and day not in policy.days_of_month):
        return Problem("day", DAY_NOT_ALLOWED)
    if (months is None) == (monthly is None):
        return Problem("months", CHOOSE_ONE)
    down = down_payment(balance, policy) if with_down_payment else 0
    rest = balance - down
    schedule = [Installment(start, down, down_payment=True)] if down else []
    if rest == 0:
        return schedule
    if months is not None:
        if months < 1:
            return Problem("months", TOO_FEW_MONTHS)
        if months > limit:
            return Problem("months", TOO_MANY_MONTHS, (("months", limit),))
        if months > 1 and rest // months < policy.minimum_monthly:
            return Problem("months", BELOW_MINIMUM, (("minimum", policy.minimum_monthly),))
        base = rest // months
        amounts = [base] * (months - 1) + [rest - base * (months - 1)]
    else:
        assert monthly is not None
        if monthly < policy.minimum_monthly and monthly < rest:
            return Problem("monthly", BELOW_MINIMUM, (("minimum", policy.minimum_monthly),))
        count = -(-rest // monthly)
        if count > limit:
            return Problem("monthly", MONTHLY_TOO_SMALL, (("months", limit),))
        amounts = [monthly] * (count - 1) + [rest - monthly * (count - 1)]
    dates = month_dates(next_day(start, day), len(amounts))
    return schedule + [Installment(due_on, amount) for due_on, amount in zip(dates, amounts, strict=True)]
