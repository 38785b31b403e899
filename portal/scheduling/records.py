"""What the appointment pages read from the EHR, each through its snapshot (PROMISES.md 15).

The catalog of visit types, places and clinicians changes rarely and is kept for an hour; a
patient's appointments for the snapshot service's usual half minute, and forgotten after every
booking or cancellation. Open slots are never kept: a copy would offer times already taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from carefront_sdk.adapters import EHR
from carefront_sdk.errors import NotFound
from carefront_sdk.models import (
    Appointment,
    AppointmentStatus,
    Location,
    Provider,
    SchedulingCatalog,
    Slot,
    SlotQuery,
    VisitType,
)

from portal.snapshots.service import Read, forget, read_through

CATALOG_KEY = "scheduling-catalog"
CATALOG_FRESH_FOR = timedelta(hours=1)


def appointments_key(patient_id: str) -> str:
    return f"appointments:{patient_id}"


async def catalog(ehr: EHR, now: datetime) -> Read[SchedulingCatalog]:
    return await read_through(
        CATALOG_KEY, SchedulingCatalog, ehr.read_scheduling_catalog, now=now, max_age=CATALOG_FRESH_FOR
    )


async def appointments(ehr: EHR, patient_id: str, now: datetime) -> Read[tuple[Appointment, ...]]:
    async def fetch() -> tuple[Appointment, ...]:
        return tuple(await ehr.list_appointments(patient_id))

    return await read_through(appointments_key(patient_id), tuple[Appointment, ...], fetch, now=now)


async def changed(patient_id: str) -> None:
    """After a booking or a cancellation: the next read asks the EHR."""
    await forget(appointments_key(patient_id))


@dataclass(frozen=True, slots=True)
class Visit:
    """An appointment with the names the patient reads: what, where and with whom."""

    appointment: Appointment
    visit_type: VisitType | None
    location: Location | None
    provider: Provider | None

    @property
    def id(self) -> str:
        return self.appointment.id

    @property
    def instructions(self) -> str:
        return self.appointment.instructions or (self.visit_type.instructions if self.visit_type else "")

    @property
    def is_booked(self) -> bool:
        return self.appointment.status is AppointmentStatus.BOOKED


def visit_of(appointment: Appointment, known: SchedulingCatalog) -> Visit:
    return Visit(
        appointment,
        next((kind for kind in known.visit_types if kind.id == appointment.visit_type_id), None),
        next((place for place in known.locations if place.id == appointment.location_id), None),
        next((person for person in known.providers if person.id == appointment.provider_id), None),
    )


@dataclass(frozen=True, slots=True)
class Timeline:
    upcoming: tuple[Visit, ...]
    """Booked and still ahead, soonest first."""
    past: tuple[Visit, ...]
    """Everything else (held, missed or cancelled), most recent first."""


def timeline(appointments: tuple[Appointment, ...], known: SchedulingCatalog, now: datetime) -> Timeline:
    visits = [visit_of(appointment, known) for appointment in appointments]
    upcoming = [visit for visit in visits if visit.is_booked and visit.appointment.ends_at > now]
    past = [visit for visit in visits if visit not in upcoming]
    return Timeline(
        tuple(sorted(upcoming, key=lambda visit: visit.appointment.starts_at)),
        tuple(sorted(past, key=lambda visit: visit.appointment.starts_at, reverse=True)),
    )


async def patients_visit(
    ehr: EHR, patient_id: str, appointment_id: str, now: datetime
) -> tuple[Visit, Read[tuple[Appointment, ...]]]:
    """One of the patient's own appointments, or ``NotFound``: someone else's looks like a missing one."""
    listed = await appointments(ehr, patient_id, now)
    known = await catalog(ehr, now)
    for appointment in listed.value:
        if appointment.id == appointment_id and appointment.patient_id == patient_id:
            return visit_of(appointment, known.value), listed
    raise NotFound("appointment", appointment_id)


async def open_slots(ehr: EHR, query: SlotQuery) -> list[Slot]:
    return list(await ehr.find_slots(query))


async def nearest_open_slots(
    ehr: EHR, query: SlotQuery, wanted: datetime, *, count: int = 3, days: int = 7
) -> list[Slot]:
    """The ``count`` open slots nearest to ``wanted``, from the asked day and up to ``days`` days after it."""
    found: list[Slot] = []
    for offset in range(days + 1):
        day: date = query.day + timedelta(days=offset)
        found += await ehr.find_slots(SlotQuery(query.visit_type_id, day, query.location_id, query.provider_id))
        if len(found) >= count and offset >= 1:
            break
    return sorted(found, key=lambda slot: (abs((slot.starts_at - wanted).total_seconds()), slot.starts_at))[:count]
