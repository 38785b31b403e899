"""The home page (``/home``): a welcome, each domain's section, plugin cards, proxies and the account.

``HOME_SECTIONS`` lists the domains' sections; ``portal.home.sections`` says how to add one.
"""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import patients_only
from portal.billing.home_section import billing_section
from portal.coverage.home_section import coverage_section
from portal.home.sections import SectionSource, gather_sections
from portal.i18n import N_, I18n
from portal.identity import proxies, sessions
from portal.identity.acting_for import acting_for_allowed
from portal.identity.patient_pages.web import HOME, signed_in_account, signed_out
from portal.plans.home_section import plan_section
from portal.plugin_host import PluginHost
from portal.scheduling.home_section import appointments_section

HOME_SECTIONS: list[SectionSource] = [
    SectionSource(billing_section, N_("We can't show your bills right now. Please try again in a few minutes."), 10),
    SectionSource(plan_section, N_("We can't show your payment plan right now. Please try again later."), 15),
    SectionSource(coverage_section, N_("We can't show your insurance right now. Please try again later."), 20),
    SectionSource(appointments_section, N_("We can't show your appointments right now. Please try again later."), 30),
]
"""Every domain's home section, in any order (each has its own ``order``)."""


class HomeController(Controller):
    path = HOME
    guards = [patients_only]

    @get(name="home")
    async def home(self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost]) -> Template | Redirect:
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        current = sessions.viewer(request)
        if current is None or current.acting_for is None:
            # A proxy who is not a patient here acts for nobody until they choose someone.
            return Redirect(request.app.route_reverse("switch"), status_code=303)
        # A proxy's home is the patient's: refused here once the grant is revoked.
        viewer = await acting_for_allowed(request, plugin_host)
        language = I18n.current()
        sections = await gather_sections(HOME_SECTIONS, request, viewer, plugin_host, plugin_host.clock())
        return Template(
            "home/home.html",
            context={
                "account": account,
                "sections": sections,
                "nav_items": plugin_host.nav_items("patient", language),
                "cards": plugin_host.dashboard_cards(current.acting_for, language),
                "current_nav": HOME,
                "acts_for_others": await proxies.acts_for_others(account["id"]),
            },
        )


ROUTES = [HomeController]
