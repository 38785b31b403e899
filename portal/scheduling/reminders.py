"""Reminders before appointments booked through the portal: a periodic job of ``portal.jobs``.

Which appointments: those in the portal's own ``Booking`` rows (booked here, not cancelled), so the
portal knows whom to tell: the account that booked, by its verified email (else its verified mobile),
in that account's language. Appointments made by phone are the hospital's own reminder system's.

When: ``[scheduling] reminder_hours`` before the visit (24 and 2 by default). A reminder whose time
came before the booking was made is not sent (the patient has just booked); when several are due at
once (the jobs were stopped), only the nearest to the visit is sent and the others are skipped.

Exactly once: a ``Reminder`` row with the unique key ``<appointment>:<hours>`` is written before the
message is sent, with a short lease; the notifier gets ``reminder:<key>`` as its idempotency key, so a
pass that dies mid-send leaves the row to a later pass, whose resend the notifier recognises.
Before sending, the appointment is checked in the EHR (through its snapshot): one cancelled by phone
meanwhile is skipped.
"""

from __future__ import annotations

import functools
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.support import NullTranslations
from carefront_sdk.errors import Refused, Unavailable
from carefront_sdk.models import AppointmentStatus, Channel, Message

from portal.i18n import N_, I18n
from portal.identity import accounts
from portal.plugin_host import PluginHost
from portal.scheduling import records
from portal.scheduling.tables import Booking, Reminder
from portal.settings import Settings

log = logging.getLogger("carefront.scheduling")

LEASE = timedelta(minutes=5)
SUBJECT = N_("Reminder: your appointment on %(day)s")
TEXT = N_("You have an appointment on %(day)s at %(time)s at %(place)s, %(address)s.")
CHANGES = N_(
    "To see what to bring, or to cancel or move it, sign in to the %(hospital)s patient portal: %(url)s. "
    "Questions? Call %(phone)s."
)


@functools.lru_cache(maxsize=4)
def _catalogs(languages: tuple[str, ...], default: str) -> I18n:
    return I18n(languages, default)


async def send_reminders(host: PluginHost, settings: Settings, now: datetime) -> int:
    """Send every reminder that is due; the number sent."""
    hours = settings.scheduling.reminder_hours
    if not hours:
        return 0
    bookings = (
        await Booking.select()
        .where(
            (Booking.state == "booked")
            & (Booking.starts_at > now)
            & (Booking.starts_at <= now + timedelta(hours=max(hours)))
        )
        .order_by(Booking.starts_at)
        .run()
    )
    sent = 0
    for booking in bookings:
        due = sorted(
            hour
            for hour in hours
            if booking["starts_at"] - timedelta(hours=hour) <= now < booking["starts_at"]
            and booking["created_at"] < booking["starts_at"] - timedelta(hours=hour)
        )
        if not due:
            continue
        for passed in due[1:]:
            await _note(booking["appointment_id"], passed, "skipped", now)
        if not await _claim(booking["appointment_id"], due[0], now):
            continue
        try:
            sent += await _send(host, settings, booking, due[0], now)
        except Unavailable:
            # The row keeps its lease: a pass after it runs out sends again, under the same key.
            log.warning(
                "reminder for appointment %s not sent yet: the EHR or notifier is not answering",
                booking["appointment_id"],
            )
    return sent


def _key(appointment_id: str, hours: int) -> str:
    return f"{appointment_id}:{hours}"


async def _note(appointment_id: str, hours: int, state: str, now: datetime) -> None:
    await (
        Reminder.insert(
            Reminder(
                key=_key(appointment_id, hours),
                appointment_id=appointment_id,
                hours_before=hours,
                state=state,
                created_at=now,
            )
        )
        .on_conflict(target=Reminder.key, action="DO NOTHING")
        .run()
    )


async def _claim(appointment_id: str, hours: int, now: datetime) -> bool:
    """Write the reminder's row, or take over one whose sender died; False when it is done or in hand."""
    key = _key(appointment_id, hours)
    inserted = await (
        Reminder.insert(
            Reminder(
                key=key,
                appointment_id=appointment_id,
                hours_before=hours,
                state="sending",
                leased_until=now + LEASE,
                created_at=now,
            )
        )
        .on_conflict(target=Reminder.key, action="DO NOTHING")
        .returning(Reminder.id)
        .run()
    )
    if inserted:
        return True
    taken = await (
        Reminder.update({Reminder.leased_until: now + LEASE})
        .where((Reminder.key == key) & (Reminder.state == "sending") & (Reminder.leased_until < now))
        .returning(Reminder.id)
        .run()
    )
    return bool(taken)


async def _finish(appointment_id: str, hours: int, state: str, now: datetime) -> None:
    await (
        Reminder.update({Reminder.state: state, Reminder.sent_at: now if state == "sent" else None})
        .where(Reminder.key == _key(appointment_id, hours))
        .run()
    )


async def _send(host: PluginHost, settings: Settings, booking: dict[str, Any], hours: int, now: datetime) -> int:
    appointment_id = booking["appointment_id"]
    listed = await records.appointments(host.ehr, booking["patient_id"], now)
    appointment = next((item for item in listed.value if item.id == appointment_id), None)
    account = await _account(booking["account_id"])
    message_to = _address(account, host) if account else None
    if appointment is None or appointment.status is not AppointmentStatus.BOOKED or message_to is None:
        await _finish(appointment_id, hours, "skipped", now)
        return 0
    known = (await records.catalog(host.ehr, now)).value
    visit = records.visit_of(appointment, known)
    language = account["language"] if account and account["language"] in settings.hospital.languages else "en"
    i18n = _catalogs(settings.hospital.languages, settings.hospital.default_language)
    _ = i18n.catalogs.get(language, NullTranslations()).gettext
    local = appointment.starts_at.astimezone(ZoneInfo(settings.hospital.time_zone))
    day = format_date(local.date(), format="full", locale=language)
    place = visit.location
    phone = settings.scheduling.phone or (place.phone if place else settings.hospital.billing_phone)
    text = " ".join(
        [
            _(TEXT)
            % {
                "day": day,
                "time": format_time(local.time(), format="short", locale=language),
                "place": place.name if place else settings.hospital.name,
                "address": place.address if place else "",
            },
            _(CHANGES)
            % {"hospital": settings.hospital.name, "url": f"{settings.public_url}/appointments", "phone": phone},
        ]
    )
    channel, address = message_to
    message = Message(
        channel=channel,
        to=address,
        subject=_(SUBJECT) % {"day": day} if channel is Channel.EMAIL else "",
        text=text,
        language=language,
    )
    try:
        await host.notifier.send(message, idempotency_key=f"reminder:{_key(appointment_id, hours)}")
    except Refused:
        log.warning("reminder for appointment %s refused by the notifier; not retried", appointment_id)
        await _finish(appointment_id, hours, "skipped", now)
        return 0
    await _finish(appointment_id, hours, "sent", now)
    return 1


async def _account(account_id: str) -> dict[str, Any] | None:
    try:
        uuid.UUID(account_id)
    except ValueError:
        return None
    return await accounts.find(account_id)


def _address(account: dict[str, Any], host: PluginHost) -> tuple[Channel, str] | None:
    """The verified way to reach the account: email first, then a mobile number the notifier can text."""
    if account["email"] and account["email_verified_at"]:
        return Channel.EMAIL, account["email"]
    if account["phone"] and account["phone_verified_at"] and Channel.SMS in host.notifier.channels:
        return Channel.SMS, account["phone"]
    return None
