"""An appointment as an iCalendar file (RFC 5545) the patient adds to their own calendar.

Written here rather than with a library: one event, a handful of properties. Times are UTC
(``DTSTART:20261124T150000Z``), so the file needs no time-zone definitions; text is escaped (3.3.11)
and lines are folded at 75 octets (3.1), with CRLF line ends. The event says only what the patient's
appointment page shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlsplit

from carefront_sdk.models import AppointmentStatus

from portal.scheduling.records import Visit

_LINE_OCTETS = 75


def escape_text(text: str) -> str:
    """A TEXT value: backslash, semicolon and comma escaped, line breaks as ``\\n``."""
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def fold(line: str) -> str:
    """Split a content line into lines of at most 75 octets, never inside a UTF-8 character."""
    pieces: list[str] = []
    current, size = "", 0
    limit = _LINE_OCTETS
    for character in line:
        width = len(character.encode())
        if size + width > limit:
            pieces.append(current)
            # A continuation line starts with one space, which counts towards its 75 octets.
            current, size, limit = character, width, _LINE_OCTETS - 1
        else:
            current += character
            size += width
    pieces.append(current)
    return "\r\n ".join(pieces)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def ics(visit: Visit, *, summary: str, description: str, public_url: str, now: datetime) -> bytes:
    """The calendar file of one appointment; ``summary`` and ``description`` are already in the reader's language."""
    appointment = visit.appointment
    host = urlsplit(public_url).hostname or "carefront"
    place = visit.location
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Carefront//Appointments//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        # The same appointment always has the same UID, so adding it twice updates one event.
        f"UID:appointment-{escape_text(appointment.id)}@{host}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(appointment.starts_at)}",
        f"DTEND:{_utc(appointment.ends_at)}",
        f"SUMMARY:{escape_text(summary)}",
        *([f"LOCATION:{escape_text(f'{place.name}, {place.address}')}"] if place else []),
        *([f"DESCRIPTION:{escape_text(description)}"] if description else []),
        f"STATUS:{'CANCELLED' if appointment.status is AppointmentStatus.CANCELLED else 'CONFIRMED'}",
        "TRANSP:OPAQUE",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return ("\r\n".join(fold(line) for line in lines) + "\r\n").encode()
