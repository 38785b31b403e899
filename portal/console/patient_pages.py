"""The console's patient pages: find the caller, open their record, act as them, send a pay link.

A search shows only the fields that matched, masked; the record opens on purpose, and opening it is
audited (``patient.open``). The search form posts, so what a caller said (a name, a birth date) stays
out of URLs, browser history and server logs (PROMISES.md 18); ``?q=`` works too, for a link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated
from urllib.parse import urlencode

from carefront_sdk.errors import Refused, Unavailable
from carefront_sdk.models import Channel
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException
from litestar.params import Body, FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import ACTING_ROLES, staff_with
from portal.audit.access import record_access
from portal.billing.statements import statements_of
from portal.console import acting, patients
from portal.i18n import N_, I18n
from portal.identity import accounts, sessions
from portal.identity.sessions import Viewer, viewer
from portal.payments.pay_links import send_pay_link
from portal.plugin_host import PluginHost
from portal.questions import service as questions
from portal.settings import Settings

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
PATIENTS = "/console/patients"
HOME = "/home"


@dataclass
class SearchForm:
    q: str = ""


@dataclass
class ActForm:
    reason: str = ""
    note: str = ""
    checks: list[str] = field(default_factory=list)


@dataclass
class PayLinkForm:
    statement: str = ""
    channel: str = "email"
    to: str = ""


def _staff(request: HTMXRequest) -> Viewer:
    """The staff member asking (the controllers' guard admits no one else)."""
    current = viewer(request)
    if current is None or not current.account_id or not current.role:
        raise NotAuthorizedException("Please sign in to continue.")
    return current


def _gettext(request: HTMXRequest, message: str) -> str:
    i18n: I18n = request.app.state["i18n"]
    return i18n.gettext(message)


class ConsolePatientsController(Controller):
    path = PATIENTS
    guards = [staff_with(*ACTING_ROLES)]

    @get(name="console-patients")
    async def search_page(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], q: FromQuery[str] = ""
    ) -> Template:
        return await self._search(request, plugin_host, q)

    @post()
    async def search(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], data: Annotated[SearchForm, FORM]
    ) -> Template:
        return await self._search(request, plugin_host, data.q)

    @staticmethod
    async def _search(request: HTMXRequest, plugin_host: PluginHost, text: str) -> Template:
        text = text.strip()[:200]
        results = await patients.find(plugin_host, text) if text else []
        if text:
            # What was typed is the caller's data: the log keeps only how many were found.
            await record_access(request, "patient.search", None, detail={"results": str(len(results))})
        return Template(
            "console/patients.html",
            context={
                "q": text,
                "searched": bool(text),
                "understood": bool(patients.read_query(text)) if text else True,
                "results": results,
                "field_names": patients.FIELD_NAMES,
            },
        )

    @get("/{patient_id:str}", name="console-patient")
    async def patient_page(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        patient_id: FromPath[str],
        ended: FromQuery[str | None] = None,
        sent: FromQuery[str | None] = None,
    ) -> Template:
        """The caller's record: details, statements, questions, and the ways to help them."""
        await record_access(request, "patient.open", patient_id)
        return await self._record(request, plugin_host, patient_id, ActForm(), {}, notice=ended or sent)

    @post("/{patient_id:str}/act", name="console-act")
    async def act(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        patient_id: FromPath[str],
        data: Annotated[ActForm, FORM],
    ) -> Template | Redirect:
        """Begin acting as the patient, with a reason and the caller verified (PROMISES.md 7)."""
        current = _staff(request)
        await plugin_host.ehr.read_patient(patient_id)  # NotFound for an unknown patient
        grounds = acting.Grounds(reason=data.reason, note=data.note, checks=frozenset(data.checks))
        errors = {name: _gettext(request, message) for name, message in acting.problems(grounds).items()}
        try:
            account = await acting.account_to_act_as(patient_id, str(current.account_id))
        except acting.CannotAct as refusal:
            await record_access(request, "acting.start", patient_id, outcome="refused")
            errors["reason"] = _gettext(request, refusal.message)
            return await self._record(request, plugin_host, patient_id, data, errors, status=403)
        if errors:
            return await self._record(request, plugin_host, patient_id, data, errors, status=422)
        now = plugin_host.clock()
        if current.impersonating:
            await _end_acting(request, "replaced")
        record = await acting.begin(
            staff_account=str(current.account_id),
            staff_role=str(current.role),
            patient_id=patient_id,
            grounds=grounds,
            now=now,
            minutes=settings.console.acting_minutes,
        )
        sessions.begin_acting(
            request,
            patient_id=patient_id,
            patient_account=str(account["public_id"]),
            record=str(record["public_id"]),
            until=record["ends_at"],
        )
        await record_access(request, "acting.start", str(record["public_id"]), detail={"reason": data.reason})
        return Redirect(HOME, status_code=303)

    @post("/{patient_id:str}/pay-link", name="console-pay-link")
    async def pay_link(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        patient_id: FromPath[str],
        data: Annotated[PayLinkForm, FORM],
    ) -> Template | Redirect:
        """Send the patient a link to pay one statement, instead of taking a card by phone."""
        current = _staff(request)
        owned = {
            summary.id for summary in (await statements_of(plugin_host, patient_id, now=plugin_host.clock())).value
        }
        problems: dict[str, str] = {}
        if data.statement not in owned:
            problems["statement"] = N_("Choose the statement to pay.")
        if data.channel not in {Channel.EMAIL.value, Channel.SMS.value}:
            problems["channel"] = N_("Choose email or text message.")
        to = (accounts.normal_email(data.to) if data.channel == "email" else accounts.normal_phone(data.to)) or ""
        if not to:
            problems["to"] = N_("Enter the email address or mobile number to send it to.")
        if not problems:
            try:
                await send_pay_link(plugin_host, settings, data.statement, data.channel, to, str(current.account_id))
            except (Refused, Unavailable) as failure:
                problems["to"] = (
                    str(failure) if isinstance(failure, Refused) else N_("The message could not be sent now.")
                )
        if problems:
            errors = {name: _gettext(request, message) for name, message in problems.items()}
            return await self._record(request, plugin_host, patient_id, ActForm(), errors, pay_link=data, status=422)
        return Redirect(f"{PATIENTS}/{patient_id}?{urlencode({'sent': 'pay-link'})}", status_code=303)

    @staticmethod
    async def _record(
        request: HTMXRequest,
        plugin_host: PluginHost,
        patient_id: FromPath[str],
        form: ActForm,
        errors: dict[str, str],
        *,
        pay_link: PayLinkForm | None = None,
        notice: str | None = None,
        status: int = 200,
    ) -> Template:
        patient = await plugin_host.ehr.read_patient(patient_id)
        try:
            statements = (await statements_of(plugin_host, patient_id, now=plugin_host.clock())).value
        except Unavailable:
            statements = None
        account = await accounts.find_by_patient(patient_id)
        return Template(
            "console/patient.html",
            context={
                "patient": patient,
                "statements": statements,
                "account": account,
                "questions": await questions.questions_of(patient_id),
                "categories": questions.CATEGORIES,
                "statuses": questions.STATUSES,
                "form": form,
                "errors": errors,
                "reasons": acting.REASONS,
                "identity_checks": acting.IDENTITY_CHECKS,
                "one_more_check": acting.ONE_MORE_CHECK,
                "pay_link": pay_link or PayLinkForm(to=patient.email or ""),
                "notice": notice,
            },
            status_code=status,
        )


async def _end_acting(request: HTMXRequest, how: str) -> str | None:
    """Stop acting: the record says how, the audit log has a row, the session gets a new key."""
    current = viewer(request)
    if current is None or not current.impersonating:
        return None
    record = request.session.get(sessions.ACTING_RECORD)
    plugin_host: PluginHost = request.app.state["plugin_host"]
    await acting.finish(record, how, plugin_host.clock())
    await record_access(request, "acting.end", record, outcome=how)
    sessions.end_acting(request)
    return current.acting_for


class ActingController(Controller):
    path = "/console/acting"
    guards = [staff_with(*ACTING_ROLES)]

    @post("/end", name="acting-end")
    async def end(self, request: HTMXRequest) -> Redirect:
        """The End button of the banner: back to the console, on the patient's record."""
        patient_id = await _end_acting(request, "ended")
        target = f"{PATIENTS}/{patient_id}?{urlencode({'ended': 'ended'})}" if patient_id else PATIENTS
        return Redirect(target, status_code=303)
