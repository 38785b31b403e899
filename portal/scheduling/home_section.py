"""The home page's appointments section: the next booked appointment, and the way to book one."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from litestar.plugins.htmx import HTMXRequest

from portal.audit.access import record_access
from portal.home.sections import HomeSection
from portal.identity.sessions import Viewer
from portal.plugin_host import PluginHost
from portal.scheduling import records
from portal.scheduling.pages import LocalTimes


async def appointments_section(
    request: HTMXRequest, viewer: Viewer, plugin_host: PluginHost, now: datetime
) -> HomeSection | None:
    if not viewer.sees_clinical or viewer.acting_for is None:
        return None  # a billing delegate sees no appointments
    listed = await records.appointments(plugin_host.ehr, viewer.acting_for, now)
    known = await records.catalog(plugin_host.ehr, now)
    upcoming = records.timeline(listed.value, known.value, now).upcoming
    await record_access(request, "appointment.read", upcoming[0].id if upcoming else None, detail={"view": "home"})
    zone = ZoneInfo(plugin_host.settings.hospital.time_zone)
    return HomeSection(
        "scheduling/home_section.html",
        {"next": upcoming[0] if upcoming else None, "read": listed, "at": LocalTimes(zone)},
        order=30,
    )
