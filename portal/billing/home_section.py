"""The billing section of the home page: what is due, by when, and a Pay button."""

from __future__ import annotations

from datetime import datetime

from litestar.plugins.htmx import HTMXRequest

from portal.audit.access import record_access
from portal.billing.balances import account_due, hospital_today
from portal.billing.pages import PAY_ROUTE
from portal.billing.statements import statements_of
from portal.home.sections import HomeSection
from portal.identity.sessions import Viewer
from portal.plugin_host import PluginHost
from portal.web.errors import route_path


async def billing_section(
    request: HTMXRequest, viewer: Viewer, plugin_host: PluginHost, now: datetime
) -> HomeSection | None:
    if viewer.acting_for is None:
        return None
    read = await statements_of(plugin_host, viewer.acting_for, now=now)
    due = await account_due(
        viewer.acting_for, read.value, hospital_today(now, request.app.state["settings"].hospital.time_zone)
    )
    await record_access(request, "statement.list", None)
    return HomeSection(
        "billing/home_section.html",
        {"read": read, "due": due, "pay_url": route_path(request.app, PAY_ROUTE)},
        order=10,
    )
