"""The payment plan section of the home page: the live plan's standing and next charge, if any."""

from __future__ import annotations

from datetime import datetime

from litestar.plugins.htmx import HTMXRequest

from portal.audit.access import record_access
from portal.home.sections import HomeSection
from portal.identity.sessions import Viewer
from portal.plans import agreements
from portal.plugin_host import PluginHost


async def plan_section(
    request: HTMXRequest, viewer: Viewer, plugin_host: PluginHost, now: datetime
) -> HomeSection | None:
    """Shown only while the patient has an active or paused plan (the billing section offers one otherwise)."""
    if viewer.acting_for is None:
        return None
    plan = await agreements.live_plan_of(viewer.acting_for)
    if plan is None:
        return None
    view = await agreements.view_of(plan)
    await record_access(request, "plan.read", view.public_id)
    return HomeSection("plans/home_section.html", {"view": view}, order=15)
