"""Reading the amount a patient typed, and checking it against what they owe (PROMISES.md 13).

Pure functions, no I/O: the pay page calls them with the typed text and the amount owed, both in
minor units of one currency. Accepted: ``25``, ``25.5``, ``$1,234.56``, ``1234,56`` (a decimal
comma); refused, each with its own message: nothing, not a number, zero or less, a fraction of a
cent, more than owed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from portal.i18n import N_

MAX_TYPED = 20
"""Longer text is not an amount anyone owes; refused before it is parsed."""

_SHAPE = re.compile(r"(?P<sign>[-\u2212])?\s*\$?\s*(?P<sign2>[-\u2212])?(?P<number>[0-9][0-9.,\s]*)")

MISSING = N_("Enter the amount you want to pay.")
NOT_A_NUMBER = N_("Enter an amount in dollars and cents, like 25.00.")
NOT_POSITIVE = N_("Enter an amount of more than zero.")
FRACTION_OF_CENT = N_("Enter an amount in whole cents, like 25.50.")
MORE_THAN_OWED = N_("You can pay at most %(owed)s.")
NOTHING_OWED = N_("There is nothing to pay right now.")


@dataclass(frozen=True, slots=True)
class AmountCheck:
    """The amount in minor units, or the reason (an English msgid) it cannot be paid."""

    amount: int | None
    problem: str | None = None


def parse_amount(text: str, *, minor_digits: int = 2) -> AmountCheck:
    """The typed ``text`` as minor units; not yet compared with what is owed."""
    typed = text.strip()
    if not typed:
        return AmountCheck(None, MISSING)
    if len(typed) > MAX_TYPED:
        return AmountCheck(None, NOT_A_NUMBER)
    shape = _SHAPE.fullmatch(typed)
    if shape is None:
        return AmountCheck(None, NOT_A_NUMBER)
    digits = _plain_decimal(re.sub(r"\s", "", shape["number"]))
    if digits is None:
        return AmountCheck(None, NOT_A_NUMBER)
    try:
        value = Decimal(digits)
    except InvalidOperation:
        return AmountCheck(None, NOT_A_NUMBER)
    if shape["sign"] or shape["sign2"] or value <= 0:
        return AmountCheck(None, NOT_POSITIVE)
    minor = value.scaleb(minor_digits)
    if minor != minor.to_integral_value():
        return AmountCheck(None, FRACTION_OF_CENT)
    return AmountCheck(int(minor))


def typed_form(amount: int, *, minor_digits: int = 2) -> str:
    """``amount`` (minor units) as a patient would type it back into the form: 1050 is ``10.50``."""
    whole, minor = divmod(amount, 10**minor_digits)
    return f"{whole}.{minor:0{minor_digits}d}" if minor_digits else str(whole)


def _plain_decimal(number: str) -> str | None:
    """``1,234.56`` or ``1.234,56`` or ``1234,5`` as ``1234.56``/``1234.5``; None when ambiguous or malformed.

    The last separator is the decimal one when it is followed by one or two digits, or when both
    kinds appear; any other separator must group digits in threes.
    """
    separators = [(index, char) for index, char in enumerate(number) if char in ".,"]
    if not separators:
        return number
    last_index, last = separators[-1]
    tail = number[last_index + 1 :]
    decimal_point = last == "." or len({char for _, char in separators}) == 2 or len(tail) in (1, 2)
    if decimal_point and any(char == last for _, char in separators[:-1]):
        return None  # e.g. 1.2.3: two decimal points
    whole, fraction = (number[:last_index], tail) if decimal_point else (number, "")
    groups = re.split(r"[.,]", whole)
    if len(groups) > 1 and (not 1 <= len(groups[0]) <= 3 or any(len(group) != 3 for group in groups[1:])):
        return None
    if not all(group.isdigit() for group in groups) or (decimal_point and not fraction.isdigit()):
        return None
    return "".join(groups) + (f".{fraction}" if decimal_point else "")


def check_amount(amount: int, owed: int) -> str | None:
    """Why ``amount`` (minor units, already positive) cannot be paid against ``owed``; None when it can."""
    if owed <= 0:
        return NOTHING_OWED
    if amount > owed:
        return MORE_THAN_OWED
    return None
