"""Two-step verification: a time-based code from an authenticator app (TOTP, RFC 6238), asked after a
password or a one-time code, and single-use recovery codes for when the phone is lost.

A service: it knows the account's TOTP columns and the rules, nothing of HTTP. The secret is kept
encrypted (``secrets_at_rest``); a code is accepted one 30-second step either side of now, and each
step's code works once per account. Wrong codes are limited per account and per address
(PROMISES.md 5).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import io
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
import segno
from markupsafe import Markup

from portal.identity import accounts, throttle
from portal.identity.secrets_at_rest import SecretUnreadable, decrypt, encrypt
from portal.identity.tables import RecoveryCode
from portal.settings import Settings

log = logging.getLogger("carefront.two_step")

STEP_SECONDS = 30
DIGITS = 6
# Three steps are accepted at once, so five guesses in fifteen minutes leave an attacker about one
# chance in 66,000: the password has to be known first anyway.
ACCOUNT_LIMIT = throttle.Limit(attempts=5, window=timedelta(minutes=15))
ADDRESS_LIMIT = throttle.Limit(attempts=30, window=timedelta(minutes=15))
# A step's code is accepted until one step after it ends; "used" must outlive that.
_ONCE = throttle.Limit(attempts=1, window=timedelta(seconds=4 * STEP_SECONDS))
RECOVERY_CODES = 10
# No 0/O, 1/I/L: a recovery code is read off paper and typed by hand.
_RECOVERY_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


class Outcome(enum.StrEnum):
    ACCEPTED = "accepted"
    WRONG = "wrong"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class Check:
    outcome: Outcome
    retry_after: timedelta = timedelta(0)


def new_secret() -> str:
    """A random 160-bit secret, in the base32 an authenticator app reads."""
    return pyotp.random_base32(32)


def setup_uri(secret: str, account: dict[str, Any], issuer: str) -> str:
    """The ``otpauth://`` address an authenticator app reads from the QR code."""
    label = account["email"] or f"{account['given_name']} {account['family_name']}"
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(name=label, issuer_name=issuer)


def qr_code_svg(uri: str) -> Markup:
    """``uri`` as an SVG QR code (dark on white), to put straight into the page.

    Markup: segno writes only the code's geometry (no text from ``uri``), so nothing can inject.
    """
    qr = segno.make(uri, error="m", micro=False)
    out = io.BytesIO()
    # 4 px a module: about 200 px square, which a phone's camera reads from a 360 px screen.
    qr.save(out, kind="svg", xmldecl=False, svgns=True, scale=4, border=4, dark="#000", light="#fff")
    return Markup(out.getvalue().decode())  # noqa: S704 (segno's SVG carries no text of ours)


def grouped(secret: str) -> str:
    """The secret in groups of four, easier to type into an app by hand."""
    return " ".join(secret[start : start + 4] for start in range(0, len(secret), 4))


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code ``code`` is, within one step of now; None when it is none of them."""
    candidate = "".join(character for character in code if character.isdigit())
    if len(candidate) != DIGITS:
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    found = None
    for step in (current - 1, current, current + 1):
        # Compare all three, so the time taken says nothing about which one matched.
        if hmac.compare_digest(totp.generate_otp(step), candidate):
            found = step
    return found


async def _first_use(account: dict[str, Any], step: int, now: datetime) -> bool:
    """True the first time ``step``'s code is used for the account, across every app process."""
    return (await throttle.attempt(f"two-step:used:{account['public_id']}:{step}", _ONCE, now)).allowed


async def turn_on(settings: Settings, account: dict[str, Any], secret: str, code: str, now: datetime) -> Check:
    """Enable two-step verification once ``code`` proves the app holds ``secret``."""
    verdict = await throttle.attempt(f"two-step:setup:{account['public_id']}", ACCOUNT_LIMIT, now)
    if not verdict.allowed:
        return Check(Outcome.THROTTLED, verdict.retry_after)
    step = matching_step(secret, code, now)
    if step is None or not await _first_use(account, step, now):
        return Check(Outcome.WRONG)
    await accounts.update(str(account["public_id"]), totp_secret=encrypt(settings, secret), totp_enabled_at=now)
    await throttle.clear(f"two-step:setup:{account['public_id']}")
    return Check(Outcome.ACCEPTED)


async def turn_off(account: dict[str, Any]) -> None:
    await accounts.update(str(account["public_id"]), totp_secret=None, totp_enabled_at=None)
    await RecoveryCode.delete().where(RecoveryCode.account == account["id"]).run()


def _recovery_digest(settings: Settings, code: str) -> str:
    normal = "".join(character for character in code.upper() if character in _RECOVERY_ALPHABET)
    return hmac.new(settings.secret_key.encode(), f"recovery\x00{normal}".encode(), hashlib.sha256).hexdigest()


async def new_recovery_codes(settings: Settings, account: dict[str, Any], now: datetime) -> list[str]:
    """Ten fresh recovery codes, shown once; the earlier ones stop working."""
    codes = [
        "-".join("".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(4)) for _ in range(2))
        for _ in range(RECOVERY_CODES)
    ]
    await RecoveryCode.delete().where(RecoveryCode.account == account["id"]).run()
    await RecoveryCode.insert(
        *(
            RecoveryCode(account=account["id"], code_hash=_recovery_digest(settings, code), created_at=now)
            for code in codes
        )
    ).run()
    return codes


async def recovery_codes_left(account: dict[str, Any]) -> int:
    return (
        await RecoveryCode.count().where((RecoveryCode.account == account["id"]) & RecoveryCode.used_at.is_null()).run()
    )


def looks_like_recovery_code(code: str) -> bool:
    """Authenticator codes are six digits; recovery codes have letters (XXXX-XXXX)."""
    return any(character.isalpha() for character in code)


async def _use_recovery_code(settings: Settings, account: dict[str, Any], code: str, now: datetime) -> bool:
    # The update claims the code, so two sign-ins racing with one code cannot both pass.
    claimed = (
        await RecoveryCode.update({RecoveryCode.used_at: now})
        .where(
            (RecoveryCode.account == account["id"])
            & (RecoveryCode.code_hash == _recovery_digest(settings, code))
            & RecoveryCode.used_at.is_null()
        )
        .returning(RecoveryCode.id)
        .run()
    )
    return bool(claimed)


async def check_sign_in(
    settings: Settings, account: dict[str, Any], code: str, *, address: str, user_agent: str, now: datetime
) -> Check:
    """The second step of a sign-in, under both limits; every refusal is in the holder's history."""
    by_address = await throttle.attempt(f"two-step:address:{address}", ADDRESS_LIMIT, now)
    by_account = await throttle.attempt(f"two-step:account:{account['public_id']}", ACCOUNT_LIMIT, now)
    if not (by_address.allowed and by_account.allowed):
        await accounts.record(account["id"], "totp", accounts.Outcome.THROTTLED, address, user_agent, now)
        return Check(Outcome.THROTTLED, max(by_address.retry_after, by_account.retry_after))
    if looks_like_recovery_code(code):
        if not await _use_recovery_code(settings, account, code, now):
            await accounts.record(
                account["id"], "recovery_code", accounts.Outcome.WRONG_SECRET, address, user_agent, now
            )
            return Check(Outcome.WRONG)
        await throttle.clear(f"two-step:account:{account['public_id']}")
        return Check(Outcome.ACCEPTED)
    step = None
    if account["totp_secret"]:
        try:
            step = matching_step(decrypt(settings, account["totp_secret"]), code, now)
        except SecretUnreadable:
            # The secret key changed since enrolment: no code can match until the holder enrols again.
            log.warning("account %s: two-step secret unreadable under the current secret key", account["public_id"])
    if step is None or not await _first_use(account, step, now):
        await accounts.record(account["id"], "totp", accounts.Outcome.WRONG_SECRET, address, user_agent, now)
        return Check(Outcome.WRONG)
    await throttle.clear(f"two-step:account:{account['public_id']}")
    return Check(Outcome.ACCEPTED)
