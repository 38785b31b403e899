"""What the identity domain sends by email and text: one-time codes, and notices to an account's holder.

Each message is written in the language of the person who reads it: the language of the page for a
code someone just asked for, the account's language for a notice its holder did not ask for.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from babel.support import NullTranslations
from carefront_sdk.adapters import Notifier
from carefront_sdk.errors import Refused, Unavailable
from carefront_sdk.models import Channel, Message

from portal.i18n import N_, I18n
from portal.identity.codes import Purpose
from portal.identity.patient_pages.contacts import Contact

log = logging.getLogger("carefront.identity")

_CODE_SUBJECTS = {
    Purpose.VERIFY_EMAIL: N_("Confirm your email address"),
    Purpose.VERIFY_PHONE: N_("Confirm your mobile number"),
    Purpose.SIGN_IN: N_("Your sign-in code"),
    Purpose.RESET_PASSWORD: N_("Your code to choose a new password"),
}
_CODE_TEXTS = {
    Purpose.VERIFY_EMAIL: N_("Your code to confirm this address for the %(hospital)s patient portal is %(code)s."),
    Purpose.VERIFY_PHONE: N_("Your code to confirm this address for the %(hospital)s patient portal is %(code)s."),
    Purpose.SIGN_IN: N_("Your code to sign in to the %(hospital)s patient portal is %(code)s."),
    Purpose.RESET_PASSWORD: N_("Your code to choose a new password for the %(hospital)s patient portal is %(code)s."),
}
_CODE_LIFETIME = N_("It works for 10 minutes. Never share it: hospital staff will never ask you for it.")
_NOT_YOU = N_("If you did not ask for it, you can ignore this message.")

_CHANGE_SUBJECTS = {
    "email": N_("Your email address was changed"),
    "phone": N_("Your mobile number was changed"),
    "password": N_("Your password was changed"),
}
_CHANGE_TEXTS = {
    "email": N_("The email address of your %(hospital)s patient portal account was just changed."),
    "phone": N_("The mobile number of your %(hospital)s patient portal account was just changed."),
    "password": N_("The password of your %(hospital)s patient portal account was just changed."),
}
_CHANGE_NOT_YOU = N_("If you did not make this change, call the billing office right away at %(phone)s.")


@dataclass(frozen=True, slots=True)
class Notices:
    """Writes and sends the identity domain's messages through the notifier port."""

    notifier: Notifier
    i18n: I18n
    hospital: str
    billing_phone: str
    public_url: str

    def _gettext(self, language: str) -> Any:
        return self.i18n.catalogs.get(language, NullTranslations()).gettext

    async def send_code(self, contact: Contact, purpose: Purpose, code: str, language: str) -> None:
        """Send ``code``; raises ``Refused`` for an address that cannot receive it, ``Unavailable`` when down."""
        _ = self._gettext(language)
        text = "\n\n".join(
            [_(_CODE_TEXTS[purpose]) % {"hospital": self.hospital, "code": code}, _(_CODE_LIFETIME), _(_NOT_YOU)]
        )
        message = Message(
            channel=contact.channel,
            to=contact.address,
            subject=_(_CODE_SUBJECTS[purpose]) if contact.channel is Channel.EMAIL else "",
            text=text,
            language=language,
        )
        # Every code is a new message: a random key, so a retry of this very send is the only repeat.
        await self.notifier.send(message, idempotency_key=f"identity-code:{secrets.token_hex(16)}")

    async def warn_of_sign_up_attempt(
        self, account: dict[str, Any], sign_in_path: str, forgot_path: str, now: datetime
    ) -> None:
        """Tell an account's holder that someone tried to sign up with their details (at most once an hour)."""
        if not account["email"]:
            return
        _ = self._gettext(account["language"])
        text = "\n\n".join(
            [
                _(
                    N_(
                        "Someone tried to create a %(hospital)s patient portal account with your name, date of "
                        "birth and a number from your records. You already have an account, so nothing was created."
                    )
                )
                % {"hospital": self.hospital},
                _(
                    N_(
                        "If it was you, sign in at %(sign_in_url)s. If you forgot your password, choose a new one at %(forgot_url)s."
                    )
                )
                % {"sign_in_url": self.public_url + sign_in_path, "forgot_url": self.public_url + forgot_path},
                _(
                    N_(
                        "If it was not you, you do not need to do anything. Questions? Call the billing office at %(phone)s."
                    )
                )
                % {"phone": self.billing_phone},
            ]
        )
        message = Message(
            channel=Channel.EMAIL,
            to=account["email"],
            subject=_(N_("Someone tried to create an account with your details")),
            text=text,
            language=account["language"],
        )
        key = f"identity-sign-up-attempt:{account['public_id']}:{now:%Y-%m-%dT%H}"
        await self._send_quietly(message, key)

    async def tell_of_change(self, account: dict[str, Any], what: str, to: str, now: datetime) -> None:
        """Tell the holder, at their (old) email address ``to``, that ``what`` (email, phone, password) changed."""
        _ = self._gettext(account["language"])
        text = "\n\n".join(
            [
                _(_CHANGE_TEXTS[what]) % {"hospital": self.hospital},
                _(_CHANGE_NOT_YOU) % {"phone": self.billing_phone},
            ]
        )
        message = Message(
            channel=Channel.EMAIL,
            to=to,
            subject=_(_CHANGE_SUBJECTS[what]),
            text=text,
            language=account["language"],
        )
        await self._send_quietly(message, f"identity-change:{account['public_id']}:{what}:{now.isoformat()}")

    async def _send_quietly(self, message: Message, key: str) -> None:
        # A notice nobody waits for: its failure is logged (without the address) and changes nothing.
        try:
            await self.notifier.send(message, idempotency_key=key)
        except (Refused, Unavailable) as error:
            log.warning("identity notice not sent: %s", type(error).__name__)
