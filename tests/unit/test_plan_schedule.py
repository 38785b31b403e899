"""Payment plan schedules: for any balance and policy, the installments add up and keep every rule."""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.plans.schedule import (
    BELOW_MINIMUM,
    DAY_NOT_ALLOWED,
    TOO_LARGE,
    TOO_MANY_MONTHS,
    Problem,
    build_schedule,
    down_payment,
    max_months,
    next_day,
)
from portal.settings import Plans, PlanTier


@st.composite
def policies(draw: st.DrawFn) -> Plans:
    bounds = sorted(draw(st.sets(st.integers(1_000, 2_000_000), min_size=1, max_size=4)))
    open_ended = draw(st.booleans())
    months = draw(st.lists(st.integers(1, 36), min_size=len(bounds) + 1, max_size=len(bounds) + 1))
    tiers = [PlanTier(bound, months[i]) for i, bound in enumerate(bounds)]
    if open_ended:
        tiers.append(PlanTier(None, months[-1]))
    percent = draw(st.sampled_from([0, 0, 10, 25, 33]))
    amount = 0 if percent else draw(st.sampled_from([0, 0, 5_000, 12_345]))
    return Plans(
        tiers=tuple(tiers),
        minimum_monthly=draw(st.integers(1, 10_000)),
        down_payment_percent=percent,
        down_payment_amount=amount,
        days_of_month=tuple(sorted(draw(st.sets(st.integers(1, 28), min_size=1, max_size=6)))),
    )


def _check(schedule: list, balance: int, policy: Plans, start: date, day: int, limit: int) -> None:
    assert sum(item.amount for item in schedule) == balance
    assert all(item.amount > 0 for item in schedule)
    dates = [item.due_on for item in schedule]
    assert dates == sorted(set(dates)), "dates strictly increasing"
    assert dates[0] >= start
    downs = [item for item in schedule if item.down_payment]
    monthly = [item for item in schedule if not item.down_payment]
    if downs:
        assert schedule[0].down_payment
        assert len(downs) == 1
        assert downs[0].amount == down_payment(balance, policy)
        assert downs[0].due_on == start
    assert len(monthly) <= limit
    assert all(item.due_on.day == day and item.due_on > start for item in monthly)
    for earlier, later in itertools.pairwise(monthly):
        months_apart = (later.due_on.year - earlier.due_on.year) * 12 + later.due_on.month - earlier.due_on.month
        assert months_apart == 1
    # Only the last installment, carrying the remainder, may be below the minimum.
    assert all(item.amount >= policy.minimum_monthly for item in monthly[:-1])


@settings(max_examples=400, deadline=None)
@given(
    policy=policies(),
    balance=st.integers(1, 5_000_000),
    start=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
    data=st.data(),
)
def test_schedule_over_a_number_of_months_adds_up_and_keeps_the_rules(policy, balance, start, data):
    day = data.draw(st.sampled_from(policy.days_of_month))
    limit = max_months(balance, policy)
    months = data.draw(st.integers(1, (limit or 12) + 2))
    schedule = build_schedule(balance, policy, day=day, start=start, months=months)
    if limit is None:
        assert schedule == Problem("statements", TOO_LARGE)
        return
    if isinstance(schedule, Problem):
        assert schedule.message in (TOO_MANY_MONTHS, BELOW_MINIMUM)
        return
    _check(schedule, balance, policy, start, day, limit)
    rest = balance - down_payment(balance, policy)
    if rest:
        monthly = [item.amount for item in schedule if not item.down_payment]
        assert len(monthly) == months
        assert len(set(monthly[:-1])) <= 1
        assert monthly[-1] >= monthly[0]


@settings(max_examples=400, deadline=None)
@given(
    policy=policies(),
    balance=st.integers(1, 5_000_000),
    start=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
    data=st.data(),
)
def test_schedule_at_a_monthly_amount_adds_up_and_keeps_the_rules(policy, balance, start, data):
    day = data.draw(st.sampled_from(policy.days_of_month))
    monthly_amount = data.draw(st.integers(1, 1_000_000))
    schedule = build_schedule(balance, policy, day=day, start=start, monthly=monthly_amount)
    limit = max_months(balance, policy)
    if isinstance(schedule, Problem):
        return
    assert limit is not None
    _check(schedule, balance, policy, start, day, limit)
    monthly = [item.amount for item in schedule if not item.down_payment]
    assert all(amount == monthly_amount for amount in monthly[:-1])
    assert not monthly or 0 < monthly[-1] <= monthly_amount


@settings(max_examples=200, deadline=None)
@given(policy=policies(), balance=st.integers(1, 5_000_000), start=st.dates(date(2024, 1, 1), date(2030, 12, 31)))
def test_the_longest_plan_the_policy_offers_is_always_possible(policy, balance, start):
    """What the builder offers as the longest choice is a schedule, not a refusal."""
    limit = max_months(balance, policy)
    if limit is None:
        return
    rest = balance - down_payment(balance, policy)
    months = max(1, min(limit, rest // policy.minimum_monthly))
    schedule = build_schedule(balance, policy, day=policy.days_of_month[0], start=start, months=months)
    assert not isinstance(schedule, Problem)


def test_a_worked_example_the_last_installment_carries_the_remainder():
    policy = Plans(minimum_monthly=2_500, days_of_month=(1, 15))
    schedule = build_schedule(100_000, policy, day=15, start=date(2026, 11, 22), months=3)
    assert [(item.due_on, item.amount) for item in schedule] == [
        (date(2026, 12, 15), 33_333),
        (date(2027, 1, 15), 33_333),
        (date(2027, 2, 15), 33_334),
    ]


def test_a_down_payment_comes_first_on_the_start_date():
    policy = Plans(down_payment_percent=10, days_of_month=(1,))
    schedule = build_schedule(10_001, policy, day=1, start=date(2026, 12, 1), months=2)
    assert [(item.due_on, item.amount, item.down_payment) for item in schedule] == [
        (date(2026, 12, 1), 1_001, True),
        (date(2027, 1, 1), 4_500, False),
        (date(2027, 2, 1), 4_500, False),
    ]


@pytest.mark.parametrize(
    ("after", "day", "expected"),
    [
        (date(2026, 1, 10), 15, date(2026, 1, 15)),
        (date(2026, 1, 15), 15, date(2026, 2, 15)),
        (date(2026, 12, 20), 5, date(2027, 1, 5)),
    ],
)
def test_next_day_is_strictly_after(after, day, expected):
    assert next_day(after, day) == expected


def test_rules_refuse_with_the_field_to_fix():
    policy = Plans(tiers=(PlanTier(50_000, 6),), days_of_month=(1,))
    assert build_schedule(60_000, policy, day=1, start=date(2026, 1, 1), months=2) == Problem("statements", TOO_LARGE)
    assert build_schedule(40_000, policy, day=2, start=date(2026, 1, 1), months=2) == Problem("day", DAY_NOT_ALLOWED)
    assert build_schedule(40_000, policy, day=1, start=date(2026, 1, 1), months=7) == Problem(
        "months", TOO_MANY_MONTHS, (("months", 6),)
    )
    assert build_schedule(40_000, policy, day=1, start=date(2026, 1, 1), monthly=1_000) == Problem(
        "monthly", BELOW_MINIMUM, (("minimum", 2_500),)
    )
    # A representative may stretch it further and pick another day.
    staff = build_schedule(60_000, policy, day=2, start=date(2026, 1, 1), months=12, staff=True)
    assert not isinstance(staff, Problem)
    assert len(staff) == 12
