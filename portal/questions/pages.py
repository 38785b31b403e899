"""The patient's billing questions: ask one about a charge line, a statement or the account, read the
replies, and write back.

Every page shows the patient the session acts for (``viewer.acting_for``): a statement, line or
question of anyone else's is a 404, like a missing one (PROMISES.md 2). Internal notes of the
billing office never reach these pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from carefront_sdk.errors import NotFound
from carefront_sdk.models import ChargeLine, Statement
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import patients_only
from portal.audit.access import record_access
from portal.billing.statements import statement_of
from portal.i18n import I18n
from portal.identity.acting_for import acting_for_allowed
from portal.identity.sessions import Viewer
from portal.plugin_host import PluginHost
from portal.questions import service
from portal.settings import Settings
from portal.snapshots.service import Read

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
QUESTIONS = "/questions"


@dataclass
class QuestionForm:
    category: str = ""
    message: str = ""
    reply_by: str = "email"
    statement: str = ""
    line: str = ""


@dataclass
class ReplyForm:
    message: str = ""


@dataclass(frozen=True, slots=True)
class About:
    """What a question is about, as the form and the thread show it."""

    read: Read[Statement] | None = None
    line: ChargeLine | None = None


async def about(plugin_host: PluginHost, patient_id: str, statement_id: str | None, line_id: str | None) -> About:
    """The statement and line a question names, read as the patient's own; ``NotFound`` otherwise."""
    if not statement_id:
        if line_id:
            raise NotFound("line", line_id)
        return About()
    if "\x00" in statement_id:  # no EHR id has a NUL, and PostgreSQL refuses one in text
        raise NotFound("statement", statement_id)
    read = await statement_of(plugin_host, patient_id, statement_id, now=plugin_host.clock())
    if not line_id:
        return About(read)
    line = next((line for line in read.value.lines if line.id == line_id), None)
    if line is None:
        raise NotFound("line", line_id)
    return About(read, line)


def _translated(request: HTMXRequest, errors: dict[str, str]) -> dict[str, str]:
    i18n: I18n = request.app.state["i18n"]
    return {name: i18n.gettext(message) for name, message in errors.items()}


def _nav(plugin_host: PluginHost) -> dict[str, Any]:
    return {"nav_items": plugin_host.nav_items("patient", I18n.current()), "current_nav": QUESTIONS}


class QuestionsController(Controller):
    path = QUESTIONS
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get(name="questions")
    async def list_page(
        self, request: HTMXRequest, viewer: NamedDependency[Viewer], plugin_host: NamedDependency[PluginHost]
    ) -> Template:
        patient_id = str(viewer.acting_for)
        questions = await service.questions_of(patient_id)
        await record_access(request, "question.list", patient_id)
        return Template(
            "questions/list.html",
            context={
                "questions": questions,
                "categories": service.CATEGORIES,
                "statuses": service.STATUSES,
                **_nav(plugin_host),
            },
        )

    @get("/new", name="new-question")
    async def new_page(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        statement: FromQuery[str | None] = None,
        line: FromQuery[str | None] = None,
    ) -> Template:
        """The form, about a line of a statement, a whole statement, or (with neither) the account."""
        context = await about(plugin_host, str(viewer.acting_for), statement, line)
        form = QuestionForm(statement=statement or "", line=line or "")
        return self._form(context, form, {}, plugin_host)

    @post("/new")
    async def ask(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[QuestionForm, FORM],
    ) -> Template | Redirect:
        patient_id = str(viewer.acting_for)
        context = await about(plugin_host, patient_id, data.statement or None, data.line or None)
        errors = service.problems(data.category, data.message, data.reply_by)
        if errors:
            return self._form(context, data, _translated(request, errors), plugin_host, status=422)
        question = await service.ask(
            service.Asked(
                patient_id=patient_id,
                category=data.category,
                message=data.message,
                reply_by=data.reply_by,
                statement_id=data.statement or None,
                line_id=data.line or None,
            ),
            asked_by=str(viewer.account_id),
            now=plugin_host.clock(),
            reply_within=timedelta(hours=settings.console.question_reply_hours),
        )
        await record_access(request, "question.create", str(question["public_id"]))
        return Redirect(f"{QUESTIONS}/{question['public_id']}?{urlencode({'asked': 1})}", status_code=303)

    @get("/{question_id:str}", name="question")
    async def question_page(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        question_id: FromPath[str],
    ) -> Template:
        question = await service.question_of(str(viewer.acting_for), question_id)
        await record_access(request, "question.read", question_id)
        return await self._thread(request, plugin_host, viewer, question, ReplyForm(), {})

    @post("/{question_id:str}/reply", name="question-reply")
    async def write_back(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        question_id: FromPath[str],
        data: Annotated[ReplyForm, FORM],
    ) -> Template | Redirect:
        """The patient writes back: the question is open again, with the billing office's clock reset."""
        question = await service.question_of(str(viewer.acting_for), question_id)
        problems = service.problems("other", data.message, "portal")
        if problems:
            return await self._thread(request, plugin_host, viewer, question, data, _translated(request, problems), 422)
        await service.patient_writes(question, str(viewer.account_id), data.message, plugin_host.clock())
        await record_access(request, "question.reply", question_id)
        if request.htmx and not request.htmx.boosted:
            question = await service.question_of(str(viewer.acting_for), question_id)
            return await self._thread(request, plugin_host, viewer, question, ReplyForm(), {}, sent=True)
        return Redirect(f"{QUESTIONS}/{question_id}?{urlencode({'sent': 1})}", status_code=303)

    @staticmethod
    def _form(
        context: About, form: QuestionForm, errors: dict[str, str], plugin_host: PluginHost, status: int = 200
    ) -> Template:
        return Template(
            "questions/new.html",
            context={
                "about": context,
                "form": form,
                "errors": errors,
                "categories": service.CATEGORIES,
                "reply_by": service.REPLY_BY,
                **_nav(plugin_host),
            },
            status_code=status,
        )

    @staticmethod
    async def _thread(
        request: HTMXRequest,
        plugin_host: PluginHost,
        viewer: Viewer,
        question: dict[str, Any],
        form: ReplyForm,
        errors: dict[str, str],
        status: int = 200,
        *,
        sent: bool = False,
    ) -> Template:
        context = {
            "question": question,
            "messages": await service.thread(question["id"], for_staff=False),
            "form": form,
            "errors": errors,
            "categories": service.CATEGORIES,
            "statuses": service.STATUSES,
            "asked": request.query_params.get("asked") == "1",
            "sent": sent or request.query_params.get("sent") == "1",
        }
        if request.htmx and not request.htmx.boosted:
            return Template("questions/_thread.html", context=context, status_code=status)
        try:
            context["about"] = await about(
                plugin_host, str(viewer.acting_for), question["statement_id"], question["line_id"]
            )
        except NotFound:
            context["about"] = About()  # the EHR no longer has the statement: the thread still stands
        return Template("questions/question.html", context=context | _nav(plugin_host), status_code=status)


ROUTES = [QuestionsController]
