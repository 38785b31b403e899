"""The work queue of billing questions, for representatives and supervisors.

Filters by status, category, assignee and overdue; open questions come first, the longest overdue
at the top, each with the charge line it is about read from the statement. A question's page has its
whole thread — internal notes included, marked — and the forms to reply, note, assign and change its
status. A representative takes a question ("assign to me"); a supervisor gives it to anyone. Every
view and change writes an audit row.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from carefront_sdk.errors import NotFound, Unavailable
from carefront_sdk.models import ChargeLine
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import ACTING_ROLES, staff_with
from portal.audit.access import record_access
from portal.billing.statements import statement_of
from portal.console.staff import staff_members
from portal.i18n import N_, I18n
from portal.identity.sessions import viewer
from portal.plugin_host import PluginHost
from portal.questions import service
from portal.settings import Settings

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
QUEUE = "/console/questions"
ENTER_MESSAGE = N_("Write the reply or the note first.")


@dataclass
class MessageForm:
    message: str = ""
    internal: str = ""


@dataclass
class AssignForm:
    assignee: str = ""


@dataclass
class StatusForm:
    status: str = ""


async def _line_of(plugin_host: PluginHost, question: dict[str, Any]) -> ChargeLine | None:
    """The charge line the question is about, read as the patient's own; None when there is none to show."""
    if not question["statement_id"] or not question["line_id"]:
        return None
    try:
        read = await statement_of(
            plugin_host, question["patient_id"], question["statement_id"], now=plugin_host.clock()
        )
    except (NotFound, Unavailable):
        return None
    return next((line for line in read.value.lines if line.id == question["line_id"]), None)


def _me(request: HTMXRequest) -> tuple[str, str]:
    current = viewer(request)
    if current is None or not current.account_id or not current.role:
        raise PermissionDeniedException()
    return current.account_id, current.role


class QueueController(Controller):
    path = QUEUE
    guards = [staff_with(*ACTING_ROLES)]

    @get(name="console-questions")
    async def queue_page(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        status: FromQuery[str] = "open",
        category: FromQuery[str] = "",
        assignee: FromQuery[str] = "",
        overdue: FromQuery[bool] = False,
        page: FromQuery[int] = 1,
    ) -> Template:
        me, role = _me(request)
        now = plugin_host.clock()
        filters = service.QueueFilter(
            status=status,
            category=category,
            assignee=me if assignee == "me" else assignee,
            overdue=overdue,
            page=max(1, page),
        )
        rows, more = await service.queue(filters, now)
        lines = await asyncio.gather(*(_line_of(plugin_host, row) for row in rows))
        for row in rows:
            await record_access(request, "question.read", str(row["public_id"]))
        staff = await staff_members()
        query = {"status": status, "category": category, "assignee": assignee, "overdue": "true" if overdue else ""}
        return Template(
            "console/questions.html",
            context={
                "rows": [
                    {"question": row, "line": line, "overdue": service.is_overdue(row, now)}
                    for row, line in zip(rows, lines, strict=True)
                ],
                "filters": {**query, "page": filters.page},
                "previous_url": f"{QUEUE}?{urlencode({**query, 'page': filters.page - 1})}"
                if filters.page > 1
                else None,
                "next_url": f"{QUEUE}?{urlencode({**query, 'page': filters.page + 1})}" if more else None,
                "overdue_count": await service.overdue_count(now) if role == "supervisor" else None,
                "staff": staff,
                "staff_names": {member["public_id"]: member["name"] for member in staff},
                "categories": service.CATEGORIES,
                "statuses": service.STATUSES,
            },
        )

    @get("/{question_id:str}", name="console-question")
    async def question_page(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], question_id: FromPath[str]
    ) -> Template:
        question = await self._question(question_id)
        await record_access(request, "question.read", question_id)
        return await self._page(request, plugin_host, question, MessageForm(), {})

    @post("/{question_id:str}/messages", name="console-question-message")
    async def write(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        question_id: FromPath[str],
        data: Annotated[MessageForm, FORM],
    ) -> Template | Redirect:
        """A reply the patient sees (and is told of), or an internal note for staff only."""
        question = await self._question(question_id)
        me, _role = _me(request)
        if not service.plain(data.message) or len(data.message) > service.MAX_MESSAGE:
            i18n: I18n = request.app.state["i18n"]
            errors = {"message": i18n.gettext(ENTER_MESSAGE)}
            return await self._page(request, plugin_host, question, data, errors, status=422)
        internal = data.internal == "on"
        await service.staff_writes(
            question,
            me,
            data.message,
            plugin_host.clock(),
            internal=internal,
            link=f"{settings.public_url}/questions/{question_id}",
            hospital=settings.hospital.name,
        )
        await record_access(request, "question.note" if internal else "question.reply", question_id)
        return Redirect(f"{QUEUE}/{question_id}", status_code=303)

    @post("/{question_id:str}/assign", name="console-question-assign")
    async def assign(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        question_id: FromPath[str],
        data: Annotated[AssignForm, FORM],
    ) -> Redirect:
        """A representative takes a question or lets it go; a supervisor gives it to anyone."""
        question = await self._question(question_id)
        me, role = _me(request)
        if data.assignee == "me":
            assignee: str | None = me
        elif data.assignee == "none":
            assignee = None
            if role != "supervisor" and question["assignee"] not in {None, me}:
                raise PermissionDeniedException()
        elif role == "supervisor" and data.assignee in {member["public_id"] for member in await staff_members()}:
            assignee = data.assignee
        else:
            raise PermissionDeniedException()
        await service.assign(question, assignee, plugin_host.clock())
        await record_access(request, "question.assign", question_id, detail={"assignee": assignee or "none"})
        return Redirect(f"{QUEUE}/{question_id}", status_code=303)

    @post("/{question_id:str}/status", name="console-question-status")
    async def change_status(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        question_id: FromPath[str],
        data: Annotated[StatusForm, FORM],
    ) -> Redirect:
        question = await self._question(question_id)
        if data.status not in service.STATUSES:
            return Redirect(f"{QUEUE}/{question_id}", status_code=303)
        await service.set_status(question, data.status, plugin_host.clock())
        await record_access(request, "question.status", question_id, detail={"status": data.status})
        return Redirect(f"{QUEUE}/{question_id}", status_code=303)

    @staticmethod
    async def _question(question_id: str) -> dict[str, Any]:
        question = await service.find(question_id)
        if question is None:
            raise NotFoundException()
        return question

    @staticmethod
    async def _page(
        request: HTMXRequest,
        plugin_host: PluginHost,
        question: dict[str, Any],
        form: MessageForm,
        errors: dict[str, str],
        status: int = 200,
    ) -> Template:
        me, role = _me(request)
        try:
            patient = await plugin_host.ehr.read_patient(question["patient_id"])
        except (NotFound, Unavailable):
            patient = None
        staff = await staff_members()
        return Template(
            "console/question.html",
            context={
                "question": question,
                "patient": patient,
                "line": await _line_of(plugin_host, question),
                "messages": await service.thread(question["id"], for_staff=True),
                "overdue": service.is_overdue(question, plugin_host.clock()),
                "form": form,
                "errors": errors,
                "me": me,
                "is_supervisor": role == "supervisor",
                "staff": staff,
                "staff_names": {member["public_id"]: member["name"] for member in staff},
                "categories": service.CATEGORIES,
                "statuses": service.STATUSES,
            },
            status_code=status,
        )


ROUTES = [QueueController]
