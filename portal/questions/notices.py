"""Telling a patient that the billing office replied to their question, through the outbox.

The message says only that there is a reply, and where to read it: a reply may speak of the patient's
care, and email and text are not private enough for that. It goes to the patient's own portal
account, in the account's language; a patient without an address to write to is simply not told.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import Any

from babel.support import NullTranslations
from carefront_sdk.models import Channel, Message

from portal.i18n import N_, load_catalogs
from portal.identity import accounts
from portal.outbox.relay import Delivery
from portal.questions.service import REPLY_NOTICE
from portal.questions.tables import QuestionMessage

log = logging.getLogger("carefront.questions")

SUBJECT = N_("You have a reply from the billing office")
TEXT = N_("The %(hospital)s billing office replied to your question. Sign in to the patient portal to read it:")


@functools.cache
def _catalog(language: str) -> NullTranslations:
    return load_catalogs((language,))[language]


def reply_notice(account: Mapping[str, Any], link: str, hospital: str) -> Message | None:
    """The message for the account holder, in their language; None when there is nowhere to send it."""
    _ = _catalog(account["language"] or "en").gettext
    text = f"{_(TEXT) % {'hospital': hospital}}\n{link}"
    if account["email"] and account["email_verified_at"]:
        return Message(Channel.EMAIL, account["email"], text, subject=_(SUBJECT), language=account["language"])
    if account["phone"] and account["phone_verified_at"]:
        return Message(Channel.SMS, account["phone"], text, language=account["language"])
    return None


async def deliver_reply_notice(plugin_host: Any, payload: Mapping[str, Any], idempotency_key: str) -> None:
    account = await accounts.find_by_patient(payload["patient_id"])
    message = reply_notice(account, payload["link"], payload["hospital"]) if account else None
    if message is None:
        log.info("no address to tell of a reply: %s", idempotency_key)
    else:
        await plugin_host.notifier.send(message, idempotency_key=idempotency_key)
    await (
        QuestionMessage.update({QuestionMessage.notified_at: plugin_host.clock()})
        .where(QuestionMessage.public_id == payload["message"])
        .run()
    )


DELIVERIES: dict[str, Delivery] = {REPLY_NOTICE: deliver_reply_notice}
