"""Booking, cancelling and moving appointments, and the hospital's cut-off for changes made online.

A booking is asked of the EHR at once, since the patient waits for its answer: the EHR adapter makes
one slot bookable once (PROMISES.md 16) and the confirm form's token, as the idempotency key, makes a
double submit book once. The portal's ``Booking`` row is written first, so the booking is known (for
reminders) whatever happens next.

A cancellation is a change bound for the EHR and goes through the outbox (PROMISES.md 14): its row
and its message are written in one transaction, then delivered at once; if the EHR does not answer,
the relay retries it. A reschedule books the new slot first and asks to cancel the old appointment
only once the new one is confirmed, so the patient never ends with neither.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carefront_sdk.errors import Refused, Unavailable
from carefront_sdk.models import Appointment, AppointmentEvent

from portal.database import transaction
from portal.outbox.relay import Delivery, enqueue
from portal.plugin_host import PluginHost
from portal.scheduling import records
from portal.scheduling.records import Visit
from portal.scheduling.tables import Booking, Cancellation

log = logging.getLogger("carefront.scheduling")

CANCEL = "scheduling.cancel"
"""The outbox kind of a cancellation bound for the EHR."""
SLOT_TAKEN = "slot_taken"
_REASONS = {
    "patient": "Cancelled by the patient through the patient portal",
    "rescheduled": "Moved by the patient to another time through the patient portal",
}
_ALREADY_CANCELLED = "already_cancelled"
"""The sandbox's refusal for an appointment cancelled already (by phone, say): the cancellation holds."""


def booking_key(patient_id: str, form_token: str) -> str:
    """The idempotency key of a booking: one per confirm form and patient."""
    return hashlib.sha256(f"booking:{patient_id}:{form_token}".encode()).hexdigest()


def inside_cutoff(visit: Visit, now: datetime, cutoff_hours: int) -> bool:
    """Is the visit too close to change online (the hospital's ``cancel_cutoff_hours``)?"""
    return visit.appointment.starts_at - now < timedelta(hours=cutoff_hours)


@dataclass(frozen=True, slots=True)
class Booked:
    appointment: Appointment
    cancellation_pending: bool = False
    """A reschedule whose old appointment the EHR has not yet confirmed cancelled (the relay retries)."""


async def book(
    host: PluginHost,
    *,
    patient_id: str,
    account_id: str,
    slot_id: str,
    form_token: str,
    replaces: Visit | None = None,
) -> Booked:
    """Book ``slot_id`` for the patient, and on a reschedule then cancel what it replaces.

    Raises ``Refused`` (``slot_taken`` when someone else has the slot) and ``Unavailable`` from the EHR;
    in either case nothing the patient had is changed.
    """
    now = host.clock()
    key = booking_key(patient_id, form_token)
    await (
        Booking.insert(
            Booking(
                idempotency_key=key,
                patient_id=patient_id,
                account_id=account_id,
                slot_id=slot_id,
                replaces_appointment_id=replaces.id if replaces else None,
                state="pending",
                created_at=now,
            )
        )
        .on_conflict(target=Booking.idempotency_key, action="DO NOTHING")
        .run()
    )
    try:
        appointment = await host.ehr.book(patient_id, slot_id, key)
    except Refused:
        await Booking.update({Booking.state: "refused"}).where(Booking.idempotency_key == key).run()
        raise
    first_time = await (
        Booking.update(
            {Booking.state: "booked", Booking.appointment_id: appointment.id, Booking.starts_at: appointment.starts_at}
        )
        .where((Booking.idempotency_key == key) & (Booking.state != "booked"))
        .returning(Booking.id)
        .run()
    )
    await records.changed(patient_id)
    if not first_time:
        # A double submit: the first request already did the rest.
        return Booked(appointment, cancellation_pending=not await _cancelled(replaces))
    host.emit(
        "carefront_appointment_booked",
        AppointmentEvent(appointment, now, previous_appointment_id=replaces.id if replaces else None),
    )
    if replaces is None:
        return Booked(appointment)
    acknowledged = await cancel(host, replaces, reason="rescheduled")
    return Booked(appointment, cancellation_pending=not acknowledged)


async def _cancelled(visit: Visit | None) -> bool:
    if visit is None:
        return True
    return (
        await Cancellation.exists()
        .where((Cancellation.appointment_id == visit.id) & Cancellation.acknowledged_at.is_not_null())
        .run()
    )


async def cancel(host: PluginHost, visit: Visit, *, reason: str = "patient") -> bool:
    """Ask the EHR to cancel ``visit`` through the outbox, and try once right away.

    True when the EHR has confirmed it; False when the relay will keep trying.
    """
    now = host.clock()
    appointment = visit.appointment
    key = f"cancel:{appointment.id}"
    payload = {"appointment_id": appointment.id, "patient_id": appointment.patient_id, "reason": reason}
    async with transaction():
        await (
            Cancellation.insert(
                Cancellation(
                    appointment_id=appointment.id,
                    patient_id=appointment.patient_id,
                    idempotency_key=key,
                    reason=reason,
                    requested_at=now,
                )
            )
            .on_conflict(target=Cancellation.appointment_id, action="DO NOTHING")
            .run()
        )
        await Booking.update({Booking.state: "cancelled"}).where(Booking.appointment_id == appointment.id).run()
        await enqueue(CANCEL, payload, key, now=now)
    try:
        await deliver_cancellation(host, payload, key)
    except (Refused, Unavailable) as error:
        log.warning("cancellation %s not confirmed yet (%s); the outbox relay will retry", key, type(error).__name__)
        return False
    return True


async def deliver_cancellation(host: PluginHost, payload: Mapping[str, Any], idempotency_key: str) -> None:
    """The outbox delivery of ``scheduling.cancel``: cancel in the EHR, record its acknowledgement, tell plugins."""
    done = (
        await Cancellation.exists()
        .where((Cancellation.idempotency_key == idempotency_key) & Cancellation.acknowledged_at.is_not_null())
        .run()
    )
    if done:
        return
    try:
        appointment = await host.ehr.cancel(payload["appointment_id"], _REASONS[payload["reason"]], idempotency_key)
    except Refused as refusal:
        if refusal.code != _ALREADY_CANCELLED:
            raise
        appointment = None
    now = host.clock()
    first = await (
        Cancellation.update({Cancellation.acknowledged_at: now})
        .where((Cancellation.idempotency_key == idempotency_key) & Cancellation.acknowledged_at.is_null())
        .returning(Cancellation.id)
        .run()
    )
    await records.changed(payload["patient_id"])
    if first and appointment is not None:
        host.emit("carefront_appointment_cancelled", AppointmentEvent(appointment, now))


DELIVERIES: dict[str, Delivery] = {CANCEL: deliver_cancellation}
"""Merged into ``portal.jobs.DELIVERIES``."""
