"""The signed-in patient's home page: a welcome, what they can do today, and what plugins add."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import patients_only
from portal.i18n import I18n
from portal.identity import proxies, sessions
from portal.identity.acting_for import acting_for_allowed
from portal.identity.patient_pages.web import HOME, signed_in_account, signed_out
from portal.plugin_host import PluginHost


class HomeController(Controller):
    path = HOME
    guards = [patients_only]

    @get(name="home")
    async def home(self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost]) -> Template | Redirect:
        """No balances here yet: the billing pages arrive with their own issue, and nothing is made up."""
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        current = sessions.viewer(request)
        acting_for = current.acting_for if current else None
        if acting_for is None:
            # A proxy who is not a patient here acts for nobody until they choose someone.
            return Redirect(request.app.route_reverse("switch"), status_code=303)
        # A proxy's cards are the patient's: refused here once the grant is revoked.
        await acting_for_allowed(request, plugin_host)
        language = I18n.current()
        return Template(
            "identity/home.html",
            context={
                "account": account,
                "nav_items": plugin_host.nav_items("patient", language),
                "cards": plugin_host.dashboard_cards(acting_for, language) if acting_for else [],
                "current_nav": HOME,
                "acts_for_others": await proxies.acts_for_others(account["id"]),
            },
        )
