"""The sandbox's identifiers: database keys as opaque strings, and the numbers printed on paper.

MRNs, guarantor account numbers and statement codes are affine permutations of a row's index,
offset by the seed: unique by construction (no retry loop, no lookup), scrambled enough to look
issued rather than counted, and computable without the database (the demo personas need them).
"""

from __future__ import annotations

__all__ = [
    "STATEMENT_CODE_ALPHABET",
    "account_number",
    "format_id",
    "mrn",
    "name_key",
    "normalize_code",
    "parse_id",
    "statement_code",
]

STATEMENT_CODE_ALPHABET = "ACDEFHJKMNPRTUVWXY3479"
"""No 0/O/Q, 1/I/L, 2/Z, 5/S, 6/G or 8/B: a code read aloud or typed from paper cannot be misread."""

_CODE_LENGTH = 8
_CODE_SPACE = len(STATEMENT_CODE_ALPHABET) ** _CODE_LENGTH
_MRN_SPACE = 90_000_000
_ACCOUNT_SPACE = 9_000_000_000

# Each multiplier is coprime with its space, so index -> number is a bijection.
_MRN_STEP = 7_919_113
_ACCOUNT_STEP = 4_294_967_311
_CODE_STEP = 48_271_246_817


def _offset(seed: int, space: int, salt: int) -> int:
    return (seed * 2_654_435_761 + salt) % space


def mrn(seed: int, index: int) -> str:
    """The eight-digit medical record number of the patient at ``index``."""
    return str(10_000_000 + (index * _MRN_STEP + _offset(seed, _MRN_SPACE, 17)) % _MRN_SPACE)


def account_number(seed: int, index: int) -> str:
    """The guarantor account number (ten digits) of the household of the patient at ``index``."""
    return str(1_000_000_000 + (index * _ACCOUNT_STEP + _offset(seed, _ACCOUNT_SPACE, 29)) % _ACCOUNT_SPACE)


def statement_code(seed: int, index: int) -> str:
    """The code printed on the paper bill of the statement at ``index``."""
    value = (index * _CODE_STEP + _offset(seed, _CODE_SPACE, 43)) % _CODE_SPACE
    base = len(STATEMENT_CODE_ALPHABET)
    letters = []
    for _ in range(_CODE_LENGTH):
        value, digit = divmod(value, base)
        letters.append(STATEMENT_CODE_ALPHABET[digit])
    return "".join(letters)


def normalize_code(text: str) -> str:
    """What a person typed from paper, without spaces, dashes or case."""
    return "".join(text.split()).replace("-", "").upper()


def name_key(given_name: str, family_name: str) -> str:
    """How names are compared when matching a patient: case and spacing do not count."""
    return f"{' '.join(family_name.split())}|{' '.join(given_name.split())}".casefold()


def format_id(prefix: str, key: int) -> str:
    """The opaque string id of database row ``key``, e.g. ``pt-12``."""
    return f"{prefix}-{key}"


def parse_id(prefix: str, text: str) -> int | None:
    """The row key an id names, or None when it is not one of ours (the caller answers NotFound)."""
    head, _, tail = text.partition("-")
    if head != prefix or not tail.isdigit() or not tail.isascii():
        return None
    return int(tail)
