"""One-time codes sent by email or text: to verify an address, to sign in, or to reset a password.

A code is six digits, lives ten minutes, allows five tries, and works once. Only an HMAC of it (keyed
with the portal's secret) is stored, so a copy of the database reveals no usable code. Issuing a new
code for the same purpose and destination retires the previous one.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from portal.identity.tables import OneTimeCode

LIFETIME = timedelta(minutes=10)
MAX_ATTEMPTS = 5


class Purpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    VERIFY_PHONE = "verify_phone"
    SIGN_IN = "sign_in"
    RESET_PASSWORD = "reset_password"  # noqa: S105 (a purpose, not a secret)


def _digest(secret_key: str, purpose: Purpose, destination: str, code: str) -> str:
    message = f"{purpose}\x00{destination}\x00{code}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


async def issue(
    purpose: Purpose, destination: str, *, secret_key: str, now: datetime, account_id: int | None = None
) -> str:
    """A new code for ``destination``; earlier unused codes for the same purpose stop working."""
    await (
        OneTimeCode.update({OneTimeCode.consumed_at: now})
        .where(
            (OneTimeCode.purpose == purpose)
            & (OneTimeCode.destination == destination)
            & OneTimeCode.consumed_at.is_null()
        )
        .run()
    )
    code = f"{secrets.randbelow(1_000_000):06d}"
    await OneTimeCode.insert(
        OneTimeCode(
            purpose=purpose,
            destination=destination,
            code_hash=_digest(secret_key, purpose, destination, code),
            account=account_id,
            expires_at=now + LIFETIME,
            created_at=now,
        )
    ).run()
    return code


async def redeem(purpose: Purpose, destination: str, code: str, *, secret_key: str, now: datetime) -> bool:
    """True once for the right code within its lifetime and tries; every wrong try counts."""
    row = (
        await OneTimeCode.select(OneTimeCode.id, OneTimeCode.code_hash, OneTimeCode.attempts)
        .where(
            (OneTimeCode.purpose == purpose)
            & (OneTimeCode.destination == destination)
            & OneTimeCode.consumed_at.is_null()
            & (OneTimeCode.expires_at > now)
        )
        .order_by(OneTimeCode.id, ascending=False)
        .first()
        .run()
    )
    if row is None or row["attempts"] >= MAX_ATTEMPTS:
        return False
    candidate = "".join(character for character in code if character.isdigit())
    if not hmac.compare_digest(row["code_hash"], _digest(secret_key, purpose, destination, candidate)):
        await (
            OneTimeCode.update({OneTimeCode.attempts: OneTimeCode.attempts + 1})
            .where(OneTimeCode.id == row["id"])
            .run()
        )
        return False
    # Only one of two simultaneous redemptions of the same code gets the row.
    claimed = (
        await OneTimeCode.update({OneTimeCode.consumed_at: now})
        .where((OneTimeCode.id == row["id"]) & OneTimeCode.consumed_at.is_null())
        .returning(OneTimeCode.id)
        .run()
    )
    return bool(claimed)
