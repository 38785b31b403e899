"""The emailed receipt: composed in the payer's language and sent once through the outbox.

The notifier gets an idempotency key derived from the payment (``receipt:<payment id>``), so a
relay that retries after a crash sends the same message, not a second one.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from babel.numbers import format_currency, get_currency_precision
from babel.support import NullTranslations
from carefront_sdk.models import Channel, Message

from portal.i18n import N_, load_catalogs
from portal.identity import accounts
from portal.payments.tables import PaymentAttempt
from portal.plugin_host import PluginHost

SUBJECT = N_("Your payment to %(hospital)s")
PARAGRAPHS = (
    N_("Thank you. We received your payment of %(amount)s on %(moment)s."),
    N_("Paid with: %(method)s"),
    N_("Reference number: %(reference)s"),
    N_("It will show on your statement within a few days. Keep this email as your receipt."),
    N_("Questions about your bill? Call the billing office at %(phone)s."),
)


@functools.cache
def catalogs(languages: tuple[str, ...]) -> Mapping[str, NullTranslations]:
    return load_catalogs(languages)


def receipt_message(host: PluginHost, attempt: Mapping[str, Any], to: str) -> Message:
    hospital = host.settings.hospital
    language = attempt["language"] if attempt["language"] in hospital.languages else hospital.default_language
    gettext = catalogs(tuple(hospital.languages)).get(language, NullTranslations()).gettext
    units = Decimal(attempt["amount"]).scaleb(-get_currency_precision(attempt["currency"]))
    values = {
        "hospital": hospital.name,
        "amount": format_currency(units, attempt["currency"], locale=language),
        "moment": format_datetime(
            attempt["settled_at"], format="medium", tzinfo=ZoneInfo(hospital.time_zone), locale=language
        ),
        "method": attempt["method_summary"] or attempt["method"] or "card",
        "reference": attempt["reference_number"],
        "phone": hospital.billing_phone,
    }
    return Message(
        channel=Channel.EMAIL,
        to=to,
        subject=gettext(SUBJECT) % values,
        text="\n\n".join(gettext(paragraph) % values for paragraph in PARAGRAPHS),
        language=language,
    )


async def _address(attempt: Mapping[str, Any]) -> str | None:
    if attempt["receipt_email"]:
        return str(attempt["receipt_email"])
    if attempt["payer_account_id"] and _is_uuid(attempt["payer_account_id"]):
        account = await accounts.find(attempt["payer_account_id"])
        if account and account["email"] and account["email_verified_at"]:
            return str(account["email"])
    return None


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def deliver_receipt(host: PluginHost, payload: Mapping[str, Any], idempotency_key: str) -> None:
    """Email the receipt of a succeeded payment, once; nothing when there is no address to send it to."""
    attempt = await PaymentAttempt.select().where(PaymentAttempt.public_id == payload["payment"]).first().run()
    if attempt is None or attempt["receipt_sent_at"] is not None:
        return
    to = await _address(attempt)
    if to is not None:
        await host.notifier.send(receipt_message(host, attempt, to), idempotency_key=idempotency_key)
    await (
        PaymentAttempt.update({PaymentAttempt.receipt_sent_at: host.clock()})
        .where(PaymentAttempt.id == attempt["id"])
        .run()
    )
