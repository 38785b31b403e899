"""What the pay form accepts as an amount (PROMISES.md 13), over every amount and some shapes of typing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.payments.amounts import (
    FRACTION_OF_CENT,
    MISSING,
    MORE_THAN_OWED,
    NOT_A_NUMBER,
    NOT_POSITIVE,
    NOTHING_OWED,
    check_amount,
    parse_amount,
    typed_form,
)  # fmt: skip
from portal.payments.pay_links import make_token, read_token


@given(st.integers(min_value=1, max_value=10**9))
def test_every_positive_amount_in_cents_reads_back_exactly(cents):
    dollars, rest = divmod(cents, 100)
    for text in (f"{dollars}.{rest:02d}", f"${dollars:,}.{rest:02d}", f" {dollars}.{rest:02d} "):
        assert parse_amount(text).amount == cents, text


@given(st.integers(min_value=1, max_value=10**9))
def test_an_amount_put_back_in_the_form_reads_as_the_same_amount(cents):
    assert parse_amount(typed_form(cents)).amount == cents
    assert typed_form(1050) == "10.50"


@given(st.integers(min_value=1, max_value=10**6), st.integers(min_value=1, max_value=9))
def test_a_fraction_of_a_cent_is_refused(cents, extra):
    assert parse_amount(f"{cents // 100}.{cents % 100:02d}{extra}").problem == FRACTION_OF_CENT


@given(st.integers(min_value=0, max_value=10**6))
def test_zero_and_negative_amounts_are_refused(cents):
    assert parse_amount(f"-{cents / 100:.2f}").problem == NOT_POSITIVE
    assert parse_amount("0.00").problem == NOT_POSITIVE


@given(st.text(alphabet=st.characters(blacklist_categories=["Nd"]), min_size=1, max_size=30).filter(str.strip))
def test_text_without_digits_is_not_a_number(text):
    assert parse_amount(text).problem in (NOT_A_NUMBER, NOT_POSITIVE)


@given(st.integers(min_value=1, max_value=10**7), st.integers(min_value=-10, max_value=10**7))
def test_never_more_than_is_owed(amount, owed):
    problem = check_amount(amount, owed)
    assert (problem is None) == (owed > 0 and amount <= owed)
    if owed <= 0:
        assert problem == NOTHING_OWED
    elif amount > owed:
        assert problem == MORE_THAN_OWED


@pytest.mark.parametrize("text", ["", "   "])
def test_nothing_typed_asks_for_an_amount(text):
    assert parse_amount(text).problem == MISSING


@pytest.mark.parametrize("text", ["1e5", "1.2.3", "1,23,4", "25.", ".5", "NaN", "Infinity", "12$", "0x10", "1_000"])
def test_odd_shapes_are_not_numbers(text):
    assert parse_amount(text).problem == NOT_A_NUMBER


def test_a_pay_link_token_reads_back_and_any_change_breaks_it():
    import uuid
    from datetime import UTC, datetime

    link, expires = uuid.uuid4(), datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    token = make_token("k" * 40, link, expires)
    assert read_token("k" * 40, token) == (link, expires)
    assert read_token("j" * 40, token) is None
    assert read_token("k" * 40, token[:10] + ("A" if token[10] != "A" else "B") + token[11:]) is None
    assert read_token("k" * 40, "!!") is None
