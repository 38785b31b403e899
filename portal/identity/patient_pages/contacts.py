"""Where a patient can be reached: an email address or a mobile number, and the account verified there.

Codes to sign in or to choose a new password go only to an address an account holder has verified.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from carefront_sdk.models import Channel

from portal.identity.accounts import normal_email, normal_phone
from portal.identity.codes import Purpose
from portal.identity.sessions import Realm
from portal.identity.tables import Account


@dataclass(frozen=True, slots=True)
class Contact:
    channel: Channel
    address: str
    """Normalised: a lower-cased email address, or a phone number in E.164."""

    @property
    def verify_purpose(self) -> Purpose:
        return Purpose.VERIFY_EMAIL if self.channel is Channel.EMAIL else Purpose.VERIFY_PHONE


def read_email(text: str) -> Contact | None:
    email = normal_email(text)
    return Contact(Channel.EMAIL, email) if email else None


def read_phone(text: str) -> Contact | None:
    phone = normal_phone(text)
    return Contact(Channel.SMS, phone) if phone else None


def read_contact(text: str) -> Contact | None:
    """What a person typed in an "email or mobile number" field, or None when it is neither."""
    return read_email(text) if "@" in text else read_phone(text)


def email_contact(email: str) -> Contact:
    """An email address already normalised (kept in a session or an account)."""
    return Contact(Channel.EMAIL, email)


def phone_contact(phone: str) -> Contact:
    """A phone number already in E.164 (kept in a session or an account)."""
    return Contact(Channel.SMS, phone)


async def account_reached_at(contact: Contact) -> dict[str, Any] | None:
    """The one patient account that verified this address, or None.

    Family members may share a mobile number; a number verified on several accounts names none of
    them, so a code sent to it could not say which account it opens.
    """
    if contact.channel is Channel.EMAIL:
        reached = (Account.email == contact.address) & Account.email_verified_at.is_not_null()
    else:
        reached = (Account.phone == contact.address) & Account.phone_verified_at.is_not_null()
    found = await Account.select().where((Account.realm == Realm.PATIENT) & reached).limit(2).run()
    return found[0] if len(found) == 1 else None
