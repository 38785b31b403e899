"""Pay links: a representative sends a patient a signed, expiring link to pay one statement.

The token carries the link's id and expiry, signed (HMAC-SHA256) with the portal's secret; the row
records who sent it and when it was used. Opening a valid link starts a guest session for that one
statement; a payment through it uses it up (PROMISES.md 7: a card is never taken over the phone).
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from babel.dates import format_date
from babel.support import NullTranslations
from carefront_sdk.errors import Refused
from carefront_sdk.models import Channel, Message

from portal.audit.log import Auditor, Entry
from portal.i18n import N_
from portal.payments.receipts import catalogs
from portal.payments.tables import PayLink
from portal.plugin_host import PluginHost
from portal.settings import Settings

LINK_PATH = "/pay/link/{token}"

EMAIL_SUBJECT = N_("Pay your %(hospital)s bill online")
EMAIL_TEXT = (
    N_("The billing office at %(hospital)s sent you this link to pay your bill of %(date)s online:"),
    "%(link)s",
    N_("The link works until %(expires)s. If you did not expect it, call the billing office at %(phone)s."),
)
SMS_TEXT = N_("%(hospital)s: pay your bill online at %(link)s (link valid until %(expires)s).")


class LinkState(enum.StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class OpenedLink:
    state: LinkState
    link: dict[str, Any] | None = None


def _signature(secret: str, body: bytes) -> bytes:
    return hmac.new(secret.encode(), b"pay-link:" + body, hashlib.sha256).digest()[:16]


def make_token(secret: str, link_id: uuid.UUID, expires_at: datetime) -> str:
    body = link_id.bytes + struct.pack(">Q", int(expires_at.timestamp()))
    return base64.urlsafe_b64encode(body + _signature(secret, body)).decode().rstrip("=")


def read_token(secret: str, token: str) -> tuple[uuid.UUID, datetime] | None:
    """The link id and expiry a token carries; None unless it is whole and signed by us."""
    if len(token) > 80:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 40 or not hmac.compare_digest(raw[24:], _signature(secret, raw[:24])):
        return None
    (expires,) = struct.unpack(">Q", raw[16:24])
    return uuid.UUID(bytes=raw[:16]), datetime.fromtimestamp(expires, UTC)


async def open_link(settings: Settings, token: str, *, now: datetime) -> OpenedLink:
    """What a pay link is now: valid (with its row), expired, used, or not ours at all."""
    found = read_token(settings.secret_key, token)
    if found is None:
        return OpenedLink(LinkState.INVALID)
    link_id, expires_at = found
    link = await PayLink.select().where(PayLink.public_id == link_id).first().run()
    if link is None:
        return OpenedLink(LinkState.INVALID)
    if link["used_at"] is not None:
        return OpenedLink(LinkState.USED, link)
    if now >= min(expires_at, link["expires_at"]):
        return OpenedLink(LinkState.EXPIRED, link)
    return OpenedLink(LinkState.VALID, link)


async def send_pay_link(
    plugin_host: PluginHost, settings: Settings, statement_id: str, channel: str, to: str, sent_by: str
) -> None:
    """Send a link to pay ``statement_id`` by ``channel`` (``email`` or ``sms``) to ``to``.

    ``sent_by`` is the representative's account public id. ``Refused`` when there is nothing to pay
    or the notifier refuses the address; ``NotFound`` for an unknown statement; ``Unavailable`` when
    the EHR or the notifier is down. One audit row records the link (ids only, never the address).
    """
    now = plugin_host.clock()
    chosen = Channel(channel)
    statement = (await plugin_host.ehr.read_statement(statement_id)).summary
    if statement.balance.amount <= 0:
        raise Refused("nothing_owed", "This statement has nothing left to pay.")
    patient = await plugin_host.ehr.read_patient(statement.patient_id)
    link_id = uuid.uuid4()
    expires_at = now + timedelta(days=settings.payments.pay_link_days)
    await PayLink.insert(
        PayLink(
            public_id=link_id,
            patient_id=statement.patient_id,
            statement_id=statement.id,
            channel=chosen.value,
            sent_by=sent_by,
            expires_at=expires_at,
            created_at=now,
        )
    ).run()
    hospital = settings.hospital
    language = patient.language if patient.language in hospital.languages else hospital.default_language
    gettext = catalogs(tuple(hospital.languages)).get(language, NullTranslations()).gettext
    values = {
        "hospital": hospital.name,
        "link": settings.public_url + LINK_PATH.format(token=make_token(settings.secret_key, link_id, expires_at)),
        "date": format_date(statement.issued_on, format="long", locale=language),
        "expires": format_date(expires_at.date(), format="long", locale=language),
        "phone": hospital.billing_phone,
    }
    if chosen is Channel.EMAIL:
        message = Message(
            channel=chosen,
            to=to,
            subject=gettext(EMAIL_SUBJECT) % values,
            text="\n\n".join(gettext(paragraph) % values for paragraph in EMAIL_TEXT),
            language=language,
        )
    else:
        message = Message(channel=chosen, to=to, text=gettext(SMS_TEXT) % values, language=language)
    outcome = "ok"
    try:
        await plugin_host.notifier.send(message, idempotency_key=f"pay-link:{link_id}")
    except Exception:
        outcome = "failed"
        raise
    finally:
        auditor = Auditor(plugin_host.emit, plugin_host.clock)
        await auditor.record(
            Entry(
                actor=f"account:{sent_by}",
                actor_role="representative",
                action="pay_link.sent",
                outcome=outcome,
                acting_as=statement.patient_id,
                subject=statement.id,
                detail={"link": str(link_id), "channel": chosen.value},
            )
        )
