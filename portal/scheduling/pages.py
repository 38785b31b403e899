"""The appointment pages: the list, booking (visit type, then place, then day and time, then confirm), one
appointment with its calendar file, cancelling and moving it.

Controllers only: reading the EHR is ``records``, changing it ``booking``, the estimate ``estimates``.
The booking steps are plain GET forms whose answers travel in the query (ids only, no PHI), so every
step works without JavaScript; the day-and-time step is also an htmx partial, one day at a time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from carefront_sdk.errors import NotFound, Refused
from carefront_sdk.models import Location, Provider, SchedulingCatalog, Slot, SlotQuery, VisitType
from litestar import Controller, Response, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import Body, FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import patients_only
from portal.audit.access import record_access
from portal.i18n import N_, I18n
from portal.identity.acting_for import acting_for_allowed, clinical_access
from portal.identity.sessions import Viewer, viewer
from portal.plugin_host import PluginHost
from portal.scheduling import booking, calendar, estimates, records
from portal.scheduling.records import Visit
from portal.settings import Settings

URL_ENCODED = Body(media_type=RequestEncodingType.URL_ENCODED)
LIST = "/appointments"
FIRST_OPEN_DAY_WITHIN = 14
"""Without a day asked for, the slot picker opens on the first day with open times within this many days."""

DONE = {
    "booked": N_("Your appointment is booked."),
    "rescheduled": N_("Your appointment has been moved. The old time is cancelled."),
    "rescheduled-pending": N_(
        "Your appointment has been moved. We are still cancelling the old time with the hospital; it will show as cancelled shortly."
    ),
    "cancelled": N_("Your appointment is cancelled."),
    "cancel-pending": N_(
        "We are sending your cancellation to the hospital. It will show as cancelled shortly; you do not need to do anything."
    ),
}
"""What the appointment page says after a change, by its ``done`` query value."""


# --- Shared ------------------------------------------------------------------------------------------


def clinical_objects(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """On a route that names an appointment, a viewer who may not see appointments (a billing delegate)
    gets the same 404 as for someone else's appointment, which a 403 would not (PROMISES.md 2)."""
    current = viewer(connection)
    if current is not None and not current.sees_clinical:
        raise NotFoundException()


@dataclass(frozen=True, slots=True)
class LocalTimes:
    """Days and times in the hospital's zone and the reader's language, for templates."""

    zone: ZoneInfo

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def day(self, value: date | datetime) -> str:
        on = self.local(value).date() if isinstance(value, datetime) else value
        return format_date(on, format="full", locale=I18n.current())

    def time(self, moment: datetime) -> str:
        return format_time(self.local(moment).time(), format="short", locale=I18n.current())


def _choice(value: object) -> str:
    """One step's choice as the journey keeps it: ids are short and printable, so the rest is no id's
    (and PostgreSQL refuses NUL in text)."""
    return "".join(filter(str.isprintable, str(value).strip()[:200]))


@dataclass(frozen=True, slots=True)
class Journey:
    """Where the patient is in booking: the choices so far, as they travel in the query."""

    visit_type: str = ""
    location: str = ""
    provider: str = ""
    day: str = ""
    slot: str = ""
    replaces: str = ""

    @classmethod
    def of(cls, request: HTMXRequest) -> Journey:
        query = request.query_params
        values = {item.name: _choice(query.get(item.name, "")) for item in fields(cls)}
        # The place step's one radio group: "location:<id>" or "provider:<id>".
        kind, _, ident = str(query.get("where", "")).partition(":")
        if kind in {"location", "provider"} and ident:
            values.update({"location": "", "provider": "", kind: ident[:200]})
        return cls(**values)

    def query(self, **changes: str) -> str:
        chosen = replace(self, **changes)
        return urlencode({item.name: getattr(chosen, item.name) for item in fields(self) if getattr(chosen, item.name)})

    def url(self, path: str, **changes: str) -> str:
        query = self.query(**changes)
        return f"{path}?{query}" if query else path

    @property
    def has_place(self) -> bool:
        return bool(self.location or self.provider)

    def asked_day(self) -> date | None:
        try:
            return date.fromisoformat(self.day)
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class Places:
    """Where a visit type can be booked: its locations and its clinicians."""

    locations: tuple[Location, ...]
    providers: tuple[Provider, ...]


def places_for(known: SchedulingCatalog, visit_type: VisitType) -> Places:
    providers = tuple(person for person in known.providers if visit_type.id in person.visit_type_ids)
    where = {place for person in providers for place in person.location_ids}
    return Places(tuple(place for place in known.locations if place.id in where), providers)


def call_phone(settings: Settings, visit: Visit | None) -> str:
    """Whom to call about an appointment: the configured number, else the place's, else the billing office."""
    if settings.scheduling.phone:
        return settings.scheduling.phone
    if visit is not None and visit.location is not None and visit.location.phone:
        return visit.location.phone
    return settings.hospital.billing_phone


def _today(plugin_host: PluginHost, settings: Settings) -> date:
    return plugin_host.clock().astimezone(ZoneInfo(settings.hospital.time_zone)).date()


def _context(request: HTMXRequest, settings: Settings, **values: Any) -> dict[str, Any]:
    plugin_host: PluginHost = request.app.state["plugin_host"]
    return {
        "nav_items": plugin_host.nav_items("patient", I18n.current()),
        "current_nav": LIST,
        "at": LocalTimes(ZoneInfo(settings.hospital.time_zone)),
        **values,
    }


# --- The list, and booking -----------------------------------------------------------------------


@dataclass
class ConfirmForm:
    visit_type: str = ""
    location: str = ""
    provider: str = ""
    day: str = ""
    slot: str = ""
    replaces: str = ""
    booking_token: str = ""
    starts: str = ""
    """The chosen time (ISO 8601): when it is taken meanwhile, the nearest open times to it are offered."""


@dataclass(frozen=True, slots=True)
class Offer:
    """A slot as the picker shows it, with the names of who and where."""

    slot: Slot
    provider: Provider | None
    location: Location | None


def offers(slots: list[Slot], known: SchedulingCatalog) -> list[Offer]:
    people = {person.id: person for person in known.providers}
    places = {place.id: place for place in known.locations}
    return [Offer(slot, people.get(slot.provider_id), places.get(slot.location_id)) for slot in slots]


@dataclass(frozen=True, slots=True)
class Column:
    """One clinician's open times on the day, at one place."""

    provider: Provider | None
    location: Location | None
    offers: list[Offer] = field(default_factory=list)


def columns(day_offers: list[Offer]) -> list[Column]:
    grouped: dict[tuple[str, str], Column] = {}
    for offer in day_offers:
        key = (offer.slot.provider_id, offer.slot.location_id)
        grouped.setdefault(key, Column(offer.provider, offer.location)).offers.append(offer)
    return list(grouped.values())


class AppointmentsController(Controller):
    """``/appointments``: the list and the booking steps. Billing delegates and guests are refused."""

    path = LIST
    guards = [patients_only, clinical_access]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get(name="appointments")
    async def appointments(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template:
        patient_id = _patient(viewer)
        now = plugin_host.clock()
        listed = await records.appointments(plugin_host.ehr, patient_id, now)
        known = await records.catalog(plugin_host.ehr, now)
        await record_access(request, "appointment.read", None, detail={"view": "list"})
        return Template(
            "scheduling/appointments.html",
            context=_context(request, settings, timeline=records.timeline(listed.value, known.value, now), read=listed),
        )

    @get("/book", name="appointments-book")
    async def choose(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        """The first steps: which kind of visit, then where or with whom."""
        journey = Journey.of(request)
        now = plugin_host.clock()
        moving = await _replaced(request, journey, viewer, plugin_host, settings, now)
        if isinstance(moving, Template):
            return moving
        known = (await records.catalog(plugin_host.ehr, now)).value
        if moving is not None:
            journey = replace(journey, visit_type=moving.appointment.visit_type_id)
        visit_type = next((kind for kind in known.visit_types if kind.id == journey.visit_type), None)
        if visit_type is None:
            return Template(
                "scheduling/choose_visit_type.html",
                context=_context(request, settings, visit_types=known.visit_types, journey=journey),
                status_code=422 if journey.visit_type else 200,
            )
        if not visit_type.bookable_online:
            return Template(
                "scheduling/call_to_book.html",
                context=_context(
                    request, settings, visit_type=visit_type, phone=visit_type.call_phone or call_phone(settings, None)
                ),
            )
        return Template(
            "scheduling/choose_place.html",
            context=_context(
                request,
                settings,
                visit_type=visit_type,
                places=places_for(known, visit_type),
                journey=journey,
                moving=moving,
            ),
        )

    @get("/slots", name="appointments-slots")
    async def slots(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        """One day's open times; the whole page, or (htmx) only the day, for the previous and next day links."""
        journey = Journey.of(request)
        now = plugin_host.clock()
        moving = await _replaced(request, journey, viewer, plugin_host, settings, now)
        if isinstance(moving, Template):
            return moving
        known = (await records.catalog(plugin_host.ehr, now)).value
        visit_type = next((kind for kind in known.visit_types if kind.id == journey.visit_type), None)
        if visit_type is None or not visit_type.bookable_online or not journey.has_place:
            return Redirect(
                journey.url(request.app.route_reverse("appointments-book"), day="", slot=""), status_code=303
            )
        today = _today(plugin_host, settings)
        asked = journey.asked_day()
        day = max(asked, today) if asked else today
        found = await records.open_slots(plugin_host.ehr, _query(journey, day))
        if asked is None:
            for _ in range(FIRST_OPEN_DAY_WITHIN):
                if found:
                    break
                day += timedelta(days=1)
                found = await records.open_slots(plugin_host.ehr, _query(journey, day))
        journey = replace(journey, day=day.isoformat())
        context = _context(
            request,
            settings,
            journey=journey,
            visit_type=visit_type,
            day=day,
            previous_day=day - timedelta(days=1) if day > today else None,
            next_day=day + timedelta(days=1),
            columns=columns(offers(found, known)),
            place=_place_name(journey, known),
            moving=moving,
        )
        if request.htmx and not request.htmx.boosted:
            return Template("scheduling/_slots.html", context=context)
        return Template("scheduling/slots.html", context=context)

    @get("/confirm", name="appointments-confirm")
    async def confirm(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        """What is about to be booked, what to bring and what it may cost; taken meanwhile: the nearest times."""
        journey = Journey.of(request)
        now = plugin_host.clock()
        moving = await _replaced(request, journey, viewer, plugin_host, settings, now)
        if isinstance(moving, Template):
            return moving
        return await _confirm_page(request, journey, _patient(viewer), moving, plugin_host, settings)

    @post("/confirm")
    async def book(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[ConfirmForm, URL_ENCODED],
    ) -> Template | Redirect:
        """Book the slot (once, however often the form is sent), then cancel what it replaces."""
        # Trimmed and cut as from a query: the journey goes back into the URLs the pages link to.
        journey = Journey(
            *map(_choice, (data.visit_type, data.location, data.provider, data.day, data.slot, data.replaces))
        )
        now = plugin_host.clock()
        moving = await _replaced(request, journey, viewer, plugin_host, settings, now)
        if isinstance(moving, Template):
            return moving
        patient_id = _patient(viewer)
        if not data.booking_token or not journey.slot:
            return await _confirm_page(request, journey, patient_id, moving, plugin_host, settings)
        try:
            booked = await booking.book(
                plugin_host,
                patient_id=patient_id,
                account_id=str(viewer.account_id),
                slot_id=journey.slot,
                form_token=data.booking_token[:100],
                replaces=moving,
            )
        except NotFound:
            raise NotFoundException() from None
        except Refused as refusal:
            await record_access(
                request, "appointment.book", journey.slot, outcome="refused", detail={"code": refusal.code}
            )
            return await _confirm_page(
                request,
                journey,
                patient_id,
                moving,
                plugin_host,
                settings,
                refusal=refusal,
                wanted=_moment(data.starts),
            )
        await record_access(request, "appointment.book", booked.appointment.id)
        if moving is not None:
            await record_access(
                request, "appointment.cancel", moving.id, outcome="ok" if not booked.cancellation_pending else "queued"
            )
            done = "rescheduled-pending" if booked.cancellation_pending else "rescheduled"
        else:
            done = "booked"
        path = request.app.route_reverse("appointment", appointment_id=booked.appointment.id)
        return Redirect(f"{path}?{urlencode({'done': done})}", status_code=303)


def _patient(current: Viewer) -> str:
    if current.acting_for is None:
        raise NotFoundException()
    return current.acting_for


def _query(journey: Journey, day: date) -> SlotQuery:
    return SlotQuery(journey.visit_type, day, journey.location or None, journey.provider or None)


def _place_name(journey: Journey, known: SchedulingCatalog) -> str:
    if journey.provider:
        return next((person.name for person in known.providers if person.id == journey.provider), "")
    return next((place.name for place in known.locations if place.id == journey.location), "")


async def _replaced(
    request: HTMXRequest, journey: Journey, current: Viewer, plugin_host: PluginHost, settings: Settings, now: datetime
) -> Visit | Template | None:
    """The patient's appointment a reschedule replaces (404 for anyone else's); the refusal page when it is
    too close to move online; None when this is a new booking."""
    if not journey.replaces:
        return None
    visit, _ = await records.patients_visit(plugin_host.ehr, _patient(current), journey.replaces, now)
    if not visit.is_booked or visit.appointment.ends_at <= now:
        raise NotFoundException()
    if booking.inside_cutoff(visit, now, settings.scheduling.cancel_cutoff_hours):
        return _too_late(request, settings, visit, "reschedule")
    return visit


def _too_late(request: HTMXRequest, settings: Settings, visit: Visit, change: str) -> Template:
    """Inside the hospital's cut-off: no change online, and the number to call instead."""
    return Template(
        "scheduling/too_late.html",
        context=_context(
            request,
            settings,
            visit=visit,
            change=change,
            phone=call_phone(settings, visit),
            hours=settings.scheduling.cancel_cutoff_hours,
        ),
        status_code=409,
    )


async def _confirm_page(
    request: HTMXRequest,
    journey: Journey,
    patient_id: str,
    moving: Visit | None,
    plugin_host: PluginHost,
    settings: Settings,
    *,
    refusal: Refused | None = None,
    wanted: datetime | None = None,
) -> Template | Redirect:
    now = plugin_host.clock()
    known = (await records.catalog(plugin_host.ehr, now)).value
    visit_type = next((kind for kind in known.visit_types if kind.id == journey.visit_type), None)
    day = journey.asked_day()
    if visit_type is None or not journey.has_place or day is None or not journey.slot:
        return Redirect(journey.url(request.app.route_reverse("appointments-book"), slot=""), status_code=303)
    slot = None
    if refusal is None or refusal.code != booking.SLOT_TAKEN:
        slot = next(
            (
                item
                for item in await records.open_slots(plugin_host.ehr, _query(journey, day))
                if item.id == journey.slot
            ),
            None,
        )
    if slot is None:
        if wanted is None:
            # Slot ids are opaque: without the time the form carried, the middle of the asked day will do.
            wanted = datetime.combine(day, time(12), ZoneInfo(settings.hospital.time_zone))
        nearest = await records.nearest_open_slots(
            plugin_host.ehr, _query(journey, max(day, _today(plugin_host, settings))), wanted
        )
        return Template(
            "scheduling/taken.html",
            context=_context(request, settings, journey=journey, offers=offers(nearest, known), visit_type=visit_type),
            status_code=409,
        )
    offer = offers([slot], known)[0]
    estimate = await estimates.estimate(
        visit_type, patient_id, day, ehr=plugin_host.ehr, clearinghouse=plugin_host.clearinghouse, now=now
    )
    return Template(
        "scheduling/confirm.html",
        context=_context(
            request,
            settings,
            journey=journey,
            offer=offer,
            visit_type=visit_type,
            estimate=estimate,
            moving=moving,
            booking_token=secrets.token_urlsafe(24),
            refusal=refusal,
        ),
        status_code=409 if refusal is not None else 200,
    )


def _moment(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


# --- One appointment -----------------------------------------------------------------------------


class AppointmentController(Controller):
    """``/appointments/{id}``: one appointment, its calendar file, cancelling and moving it.

    Someone else's appointment, a missing one, and any appointment asked for by a billing delegate all
    answer the same 404.
    """

    path = f"{LIST}/{{appointment_id:str}}"
    guards = [patients_only, clinical_objects]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get(name="appointment")
    async def appointment(
        self,
        request: HTMXRequest,
        appointment_id: FromPath[str],
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template:
        now = plugin_host.clock()
        visit, listed = await records.patients_visit(plugin_host.ehr, _patient(viewer), appointment_id, now)
        await record_access(request, "appointment.read", visit.id)
        done = request.query_params.get("done")
        return Template(
            "scheduling/appointment.html",
            context=_context(
                request,
                settings,
                visit=visit,
                read=listed,
                done=DONE.get(done or ""),
                upcoming=visit.is_booked and visit.appointment.ends_at > now,
                too_late=booking.inside_cutoff(visit, now, settings.scheduling.cancel_cutoff_hours),
                phone=call_phone(settings, visit),
                hours=settings.scheduling.cancel_cutoff_hours,
            ),
        )

    @get("/calendar.ics", name="appointment-calendar")
    async def calendar_file(
        self,
        request: HTMXRequest,
        appointment_id: FromPath[str],
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Response[bytes]:
        now = plugin_host.clock()
        visit, _ = await records.patients_visit(plugin_host.ehr, _patient(viewer), appointment_id, now)
        await record_access(request, "appointment.read", visit.id, detail={"view": "calendar"})
        i18n: I18n = request.app.state["i18n"]
        _ = i18n.gettext
        name = visit.visit_type.name if visit.visit_type else _("Appointment")
        summary = _("%(visit)s at %(hospital)s") % {"visit": name, "hospital": settings.hospital.name}
        lines = []
        if visit.provider:
            lines.append(_("With %(provider)s") % {"provider": visit.provider.name})
        if visit.instructions:
            lines.append(visit.instructions)
        lines.append(_("Questions or changes: %(phone)s") % {"phone": call_phone(settings, visit)})
        body = calendar.ics(
            visit, summary=summary, description="\n".join(lines), public_url=settings.public_url, now=now
        )
        return Response(
            body,
            media_type="text/calendar; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="appointment.ics"',
                "Cache-Control": "no-store",
            },
        )

    @get("/cancel", name="appointment-cancel")
    async def cancel_form(
        self,
        request: HTMXRequest,
        appointment_id: FromPath[str],
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template:
        now = plugin_host.clock()
        visit = await _changeable(viewer, appointment_id, plugin_host, now)
        await record_access(request, "appointment.read", visit.id)
        if booking.inside_cutoff(visit, now, settings.scheduling.cancel_cutoff_hours):
            return _too_late(request, settings, visit, "cancel")
        return Template("scheduling/cancel.html", context=_context(request, settings, visit=visit))

    @post("/cancel")
    async def cancel(
        self,
        request: HTMXRequest,
        appointment_id: FromPath[str],
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        now = plugin_host.clock()
        visit = await _changeable(viewer, appointment_id, plugin_host, now)
        if booking.inside_cutoff(visit, now, settings.scheduling.cancel_cutoff_hours):
            await record_access(request, "appointment.cancel", visit.id, outcome="refused", detail={"code": "cut_off"})
            return _too_late(request, settings, visit, "cancel")
        confirmed = await booking.cancel(plugin_host, visit)
        await record_access(request, "appointment.cancel", visit.id, outcome="ok" if confirmed else "queued")
        path = request.app.route_reverse("appointment", appointment_id=visit.id)
        return Redirect(
            f"{path}?{urlencode({'done': 'cancelled' if confirmed else 'cancel-pending'})}", status_code=303
        )

    @get("/reschedule", name="appointment-reschedule")
    async def reschedule(
        self,
        request: HTMXRequest,
        appointment_id: FromPath[str],
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        """Start moving the appointment: the same kind of visit at the same place, from the day picker."""
        now = plugin_host.clock()
        visit = await _changeable(viewer, appointment_id, plugin_host, now)
        await record_access(request, "appointment.read", visit.id)
        if booking.inside_cutoff(visit, now, settings.scheduling.cancel_cutoff_hours):
            return _too_late(request, settings, visit, "reschedule")
        journey = Journey(
            visit_type=visit.appointment.visit_type_id, location=visit.appointment.location_id, replaces=visit.id
        )
        return Redirect(journey.url(request.app.route_reverse("appointments-slots")), status_code=303)


async def _changeable(current: Viewer, appointment_id: str, plugin_host: PluginHost, now: datetime) -> Visit:
    """The patient's upcoming booked appointment; anything else is 404 (nothing to cancel or move)."""
    visit, _ = await records.patients_visit(plugin_host.ehr, _patient(current), appointment_id, now)
    if not visit.is_booked or visit.appointment.ends_at <= now:
        raise NotFoundException()
    return visit


ROUTES = [AppointmentsController, AppointmentController]
"""Registered by ``portal.app``."""
