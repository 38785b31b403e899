"""Guest pages: "pay a bill without an account" opens a guest session for one statement, and the
guest's page for it.

Controllers only: the checks and limits are ``portal.identity.guest``. A guest session is
``realm=guest``, ``access=guest``, ``acting_for`` the statement's patient and ``statement_id`` the
statement; every patient page refuses it unless its handler says ``opt={"guest": True}`` (and then
shows only that statement). It ends after 15 minutes idle like any session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo

from carefront_sdk.errors import Unavailable
from litestar import Controller, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.audit.log import Auditor, Entry
from portal.billing.pages import statement_page
from portal.i18n import N_, I18n
from portal.identity import guest, sessions
from portal.identity.patient_pages.sign_up import date_parts
from portal.identity.patient_pages.web import client_address, translated, wait_minutes
from portal.identity.proxy_pages import URL_ENCODED, birth_date_of
from portal.identity.sessions import Access, Realm, viewer
from portal.plugin_host import PluginHost
from portal.settings import Settings


def guests_only(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The guest's own pages: a guest session, nobody else."""
    current = viewer(connection)
    if current is None:
        raise NotAuthorizedException("Please sign in to continue.")
    if current.realm is not Realm.GUEST:
        raise PermissionDeniedException("This page is for paying a bill without an account.")


@dataclass
class BillForm:
    statement_code: str = ""
    birth_month: str = ""
    birth_day: str = ""
    birth_year: str = ""


class GuestController(Controller):
    @get("/pay-as-guest", name="guest-payment", opt={"public": True})
    async def bill_form(self, request: HTMXRequest) -> Template:
        return _bill_page(request, BillForm(), {})

    @post("/pay-as-guest", opt={"public": True})
    async def find_bill(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[BillForm, URL_ENCODED],
    ) -> Template | Redirect:
        """Open a guest session for the bill the code and birth date name; the same answer for any miss."""
        now = plugin_host.clock()
        today = now.astimezone(ZoneInfo(settings.hospital.time_zone)).date()
        errors: dict[str, str] = {}
        if not guest.normal_code(data.statement_code):
            errors["statement_code"] = N_("Enter the statement code printed on your bill.")
        birth_date, problem = birth_date_of(data, today)
        if problem:
            errors[f"birth_{date_parts(I18n.current())[0]}"] = problem
        if errors or birth_date is None:
            return _bill_page(request, data, errors, status_code=422)
        try:
            found = await guest.find_bill(
                plugin_host.ehr,
                data.statement_code,
                birth_date,
                address=client_address(request),
                now=now,
            )
        except Unavailable:
            return _bill_page(request, data, {}, unavailable=True, status_code=503)
        await _audit(request, found)
        if found.outcome is guest.Outcome.THROTTLED:
            retry = {"Retry-After": str(int(found.retry_after.total_seconds()))}
            wait = wait_minutes(found.retry_after)
            return _bill_page(request, data, {}, wait=wait, status_code=429, headers=retry)
        if found.statement is None:
            return _bill_page(request, data, {}, no_match=True, status_code=422)
        sessions.begin(
            request,
            now,
            realm=Realm.GUEST,
            acting_for=found.statement.patient_id,
            access=Access.GUEST,
            statement_id=found.statement.id,
        )
        return Redirect(request.app.route_reverse("guest"), status_code=303)

    @get("/guest", name="guest", guards=[guests_only], opt={"guest": True})
    async def statement(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], settings: NamedDependency[Settings]
    ) -> Template:
        """The statement the guest session opened, shown as a patient sees it, with the Pay button."""
        current = viewer(request)
        if current is None or current.statement_id is None:
            raise NotFoundException()
        return await statement_page(request, current, plugin_host, settings, current.statement_id)


async def _audit(request: HTMXRequest, found: guest.BillSearch) -> None:
    """One audit row for each try to open a bill as a guest (PROMISES.md 8): ids only, never the code."""
    statement = found.statement
    auditor: Auditor = request.app.state["auditor"]
    await auditor.record(
        Entry(
            actor="guest",
            actor_role="guest",
            action="guest.opened",
            outcome={guest.Outcome.FOUND: "succeeded", guest.Outcome.THROTTLED: "denied"}.get(found.outcome, "failed"),
            acting_as=statement.patient_id if statement else None,
            subject=statement.id if statement else None,
            address=client_address(request),
        )
    )


def _bill_page(
    request: HTMXRequest,
    form: BillForm,
    errors: dict[str, str],
    *,
    no_match: bool = False,
    wait: int = 0,
    unavailable: bool = False,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Template:
    return Template(
        "identity/guest/pay_as_guest.html",
        context={
            "form": form,
            "errors": translated(request, errors),
            "date_parts": date_parts(I18n.current()),
            "no_match": no_match,
            "wait": wait,
            "unavailable": unavailable,
        },
        status_code=status_code,
        headers=headers,
    )


ROUTES = [GuestController]
