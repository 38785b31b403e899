"""Accounts: creating them, finding them, and checking a password with limits per account and address.

A service: it knows the tables and the rules, nothing of HTTP.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from portal.audit.log import Entry, record_here
from portal.identity import throttle
from portal.identity.passwords import hash_password, needs_rehash, verify_password
from portal.identity.tables import Account, SignInEvent

# PROMISES.md 5: limits per account and per address. Ten wrong passwords lock an account for
# fifteen minutes; an address may try thirty times in fifteen minutes across all accounts.
ACCOUNT_LIMIT = throttle.Limit(attempts=10, window=timedelta(minutes=15))
ADDRESS_LIMIT = throttle.Limit(attempts=30, window=timedelta(minutes=15))

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")


def normal_email(text: str) -> str | None:
    """The address lower-cased and trimmed, or None when it cannot be an email address."""
    email = text.strip().lower()
    return email if len(email) <= 254 and _EMAIL.match(email) else None


def normal_phone(text: str) -> str | None:
    """A US or international number as E.164 (+15550100123), or None when it cannot be one."""
    digits = re.sub(r"[^\d+]", "", text.strip())
    if digits.startswith("+"):
        number = "+" + digits[1:].replace("+", "")
    elif len(digits) == 10:
        number = "+1" + digits
    elif len(digits) == 11 and digits.startswith("1"):
        number = "+" + digits
    else:
        return None
    return number if 8 <= len(number) <= 16 else None


async def find(public_id: str) -> dict[str, Any] | None:
    return await Account.select().where(Account.public_id == public_id).first().run()


async def find_by_email(realm: str, email: str) -> dict[str, Any] | None:
    if "\x00" in email:  # nobody's address, and PostgreSQL cannot compare text holding NUL
        return None
    return await Account.select().where((Account.realm == realm) & (Account.email == email)).first().run()


async def find_by_patient(patient_id: str) -> dict[str, Any] | None:
    return await Account.select().where((Account.realm == "patient") & (Account.patient_id == patient_id)).first().run()


async def create(now: datetime, **values: Any) -> dict[str, Any] | None:
    """Insert an account and return it, or None when its email, patient or id is already taken.

    The unique indexes decide, so two sign-ups finishing at the same instant cannot both win.
    """
    rows = (
        await Account.insert(Account(created_at=now, **values))
        .on_conflict(action="DO NOTHING")
        .returning(*Account.all_columns())
        .run()
    )
    return rows[0] if rows else None


async def update(public_id: str, **values: Any) -> None:
    await (
        Account.update({getattr(Account, name): value for name, value in values.items()})
        .where(Account.public_id == public_id)
        .run()
    )


class Outcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    WRONG_SECRET = "wrong_secret"  # noqa: S105 (an outcome, not a secret)
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    outcome: Outcome
    account: dict[str, Any] | None = None
    retry_after: timedelta = timedelta(0)


async def check_password(
    realm: str, email: str, password: str, *, address: str, user_agent: str, now: datetime
) -> PasswordCheck:
    """Check a sign-in by password under both limits. The answer never tells whether the account exists."""
    by_address = await throttle.attempt(f"sign-in:address:{address}", ADDRESS_LIMIT, now)
    account = await find_by_email(realm, email)
    by_account = await throttle.attempt(f"sign-in:account:{realm}:{email}", ACCOUNT_LIMIT, now)
    if not (by_address.allowed and by_account.allowed):
        # Hash anyway, so a throttled answer takes as long as any other.
        verify_password(None, password)
        if account is not None:
            await record(account["id"], "password", Outcome.THROTTLED, address, user_agent, now)
        return PasswordCheck(Outcome.THROTTLED, retry_after=max(by_address.retry_after, by_account.retry_after))
    # Hash even without an account, so an unknown email answers as slowly as a known one.
    matches = verify_password(account["password_hash"] if account else None, password)
    if account is None or not matches:
        if account is not None:
            await record(account["id"], "password", Outcome.WRONG_SECRET, address, user_agent, now)
        return PasswordCheck(Outcome.WRONG_SECRET)
    await throttle.clear(f"sign-in:account:{realm}:{email}")
    if needs_rehash(account["password_hash"]):
        await update(str(account["public_id"]), password_hash=hash_password(password))
    return PasswordCheck(Outcome.SUCCEEDED, account)


async def record(account_id: int, method: str, outcome: str, address: str, user_agent: str, now: datetime) -> None:
    """Add a line to the account's sign-in history; a failed attempt goes in the audit log too
    (PROMISES.md 8; a successful one is written there when the session opens, portal.identity.signing_in)."""
    if outcome != Outcome.SUCCEEDED:
        holder = (
            await Account.select(Account.public_id, Account.realm, Account.role)
            .where(Account.id == account_id)
            .first()
            .run()
        )
        if holder is not None:
            await record_here(
                Entry(
                    actor=f"account:{holder['public_id']}",
                    actor_role=holder["role"] or holder["realm"],
                    action="sign_in",
                    outcome=str(outcome),
                    address=address[:64],
                    detail={"method": method},
                ),
                now,
            )
    await SignInEvent.insert(
        SignInEvent(
            account=account_id,
            occurred_at=now,
            method=method,
            outcome=outcome,
            address=address[:64],
            user_agent=user_agent[:200],
        )
    ).run()


async def history(account_id: int, limit: int = 20) -> list[dict[str, Any]]:
    return (
        await SignInEvent.select()
        .where(SignInEvent.account == account_id)
        .order_by(SignInEvent.occurred_at, ascending=False)
        .limit(limit)
        .run()
    )
