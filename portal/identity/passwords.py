"""Passwords: argon2id hashes, and the rule that length matters more than complexity.

Following NIST SP 800-63B: at least 12 characters, no composition rules, and no password that
appears in a list of common ones (zxcvbn's 30,000 most used passwords, shipped with the package, so
nothing is looked up over the network) or that is built from the holder's own name or email.
"""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from portal.i18n import N_

MIN_LENGTH = 12
MAX_LENGTH = 256

# argon2-cffi's defaults are RFC 9106's second recommendation: argon2id, 64 MiB, 3 passes.
_hasher = PasswordHasher()


@cache
def _common() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches; a missing hash still costs one hashing, so timing tells nothing."""
    if password_hash is None:
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str, *personal: str) -> str | None:
    """Why ``password`` is refused (an English msgid to translate when shown), or None."""
    if len(password) < MIN_LENGTH:
        return N_("Use at least 12 characters. A few unrelated words make a strong password.")
    if len(password) > MAX_LENGTH:
        return N_("Use at most 256 characters.")
    lowered = password.lower()
    if lowered in _common() or len(set(lowered)) <= 2:
        return N_("That password is one of the most common ones. Choose something less predictable.")
    for word in personal:
        word = word.lower().strip()
        if len(word) >= 4 and word in lowered and len(lowered) - len(word) < 6:
            return N_("Your password should not be mostly your name or email address.")
    return None
