"""Sending one-time codes under limits per destination and per address (PROMISES.md 5).

Five codes to one email address or phone, and twenty from one network address, in fifteen minutes:
enough for a person who mistyped or lost a message, too few to flood someone's inbox.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from carefront_sdk.errors import CarefrontError, Refused, Unavailable

from portal.identity import codes, throttle
from portal.identity.codes import Purpose
from portal.identity.patient_pages.contacts import Contact, account_reached_at
from portal.identity.patient_pages.notices import Notices

log = logging.getLogger("carefront.identity")

DESTINATION_LIMIT = throttle.Limit(attempts=5, window=timedelta(minutes=15))
ADDRESS_LIMIT = throttle.Limit(attempts=20, window=timedelta(minutes=15))


async def may_send(contacts: list[Contact], address: str, now: datetime) -> throttle.Verdict:
    """Count one sending to each of ``contacts`` from ``address``; refused when any limit is passed."""
    verdicts = [await throttle.attempt(f"code:address:{address}", ADDRESS_LIMIT, now)]
    for contact in contacts:
        verdicts.append(await throttle.attempt(f"code:destination:{contact.address}", DESTINATION_LIMIT, now))
    refused = [verdict for verdict in verdicts if not verdict.allowed]
    if refused:
        return throttle.Verdict(False, max(verdict.retry_after for verdict in refused))
    return throttle.Verdict(True, timedelta(0))


async def send(
    notices: Notices,
    contact: Contact,
    purpose: Purpose,
    *,
    secret_key: str,
    language: str,
    now: datetime,
    account_id: int | None = None,
) -> None:
    """Issue a new code for ``contact`` (the previous one stops working) and send it."""
    code = await codes.issue(purpose, contact.address, secret_key=secret_key, now=now, account_id=account_id)
    await notices.send_code(contact, purpose, code, language)


@dataclass(frozen=True, slots=True)
class Sending:
    """What became of sending codes to addresses someone is verifying: all sent, or why not."""

    wait: timedelta | None = None
    """A limit was reached: how long until the window ends."""
    undeliverable: Contact | None = None
    """The notifier refused this address (it can never receive a message)."""
    unavailable: bool = False
    """The notifier did not answer."""

    @property
    def sent(self) -> bool:
        return self.wait is None and self.undeliverable is None and not self.unavailable


async def send_verification_codes(
    notices: Notices, contacts: list[Contact], *, address: str, secret_key: str, language: str, now: datetime
) -> Sending:
    """Under the limits, a code to each address being verified; stops at the first that fails."""
    verdict = await may_send(contacts, address, now)
    if not verdict.allowed:
        return Sending(wait=verdict.retry_after)
    for contact in contacts:
        try:
            await send(notices, contact, contact.verify_purpose, secret_key=secret_key, language=language, now=now)
        except Refused:
            return Sending(undeliverable=contact)
        except Unavailable:
            return Sending(unavailable=True)
    return Sending()


async def send_if_reachable(
    notices: Notices, contact: Contact, purpose: Purpose, *, secret_key: str, language: str, now: datetime
) -> None:
    """Send a code when a patient account verified ``contact``, and nothing otherwise.

    Run after the answer is sent, so the answer takes as long, and says the same, either way.
    """
    account = await account_reached_at(contact)
    if account is None:
        return
    try:
        await send(
            notices, contact, purpose, secret_key=secret_key, language=language, now=now, account_id=account["id"]
        )
    except CarefrontError as error:
        # Nobody waits on this: the person asks for a new code if none arrives. No address in the log.
        log.warning("identity code not sent: %s", type(error).__name__)
