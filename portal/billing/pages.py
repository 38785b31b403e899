"""The statement pages: the list, one statement, one visit's lines (an htmx partial) and the PDF.

Controllers only: the reads are ``portal.billing.statements`` (through the snapshot), the sums
``balances`` and ``explained``, the words ``dictionary``. Whose statements: always
``viewer.acting_for``, never an id from the request; a guest sees only ``viewer.statement_id``.
Someone else's statement, a missing one, or a visit not on it is the same 404 (PROMISES.md 2).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Any, cast

from carefront_sdk.errors import NotFound
from litestar import Controller, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template
from litestar.template import TemplateEngineProtocol

from portal.access import patients_only
from portal.audit.access import record_access
from portal.billing import explained as explaining
from portal.billing.balances import account_due, hospital_today, statement_due, statements_due
from portal.billing.dictionary import dictionary_for
from portal.billing.pdf import statement_pdf
from portal.billing.statements import page_of, statement_of, statements_of
from portal.i18n import I18n
from portal.identity.acting_for import acting_for_allowed
from portal.identity.patient_pages.web import signed_in_account
from portal.identity.sessions import Access, Realm, Viewer
from portal.payments.ledger import portal_payments
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.web.errors import route_path

STATEMENTS = "/statements"
STATEMENT_PAGE = "billing/statement.html"
VISIT_LINES = "billing/visit_lines.html"
PAY_ROUTE = "pay"
QUESTION_ROUTE = "new-question"


def _whose(viewer: Viewer, statement_id: str | None = None) -> str:
    """The patient the pages show; a guest's session opens only its one statement."""
    if viewer.acting_for is None:
        raise NotFound("patient", "")
    if viewer.realm is Realm.GUEST and statement_id is not None and statement_id != viewer.statement_id:
        raise NotFound("statement", statement_id)
    return viewer.acting_for


async def statement_context(
    request: HTMXRequest,
    viewer: Viewer,
    plugin_host: PluginHost,
    settings: Settings,
    statement_id: str,
    *,
    expanded: Collection[str] | None = frozenset(),
    pdf: bool = False,
) -> dict[str, Any]:
    """Everything the statement page shows; ``expanded`` names the visits that show every line
    (None: all of them, as the PDF does)."""
    patient_id = _whose(viewer, statement_id)
    now = plugin_host.clock()
    read = await statement_of(plugin_host, patient_id, statement_id, now=now)
    statement = read.value
    i18n: I18n = request.app.state["i18n"]
    dictionary = dictionary_for(plugin_host, statement.lines, I18n.current(), i18n.gettext)
    due = await statement_due(patient_id, statement.summary, hospital_today(now, settings.hospital.time_zone))
    payments = await portal_payments(patient_id, statement_id)
    shown = explaining.explain(statement, dictionary, due, payments, expanded=expanded)
    if expanded and any(explaining.find_visit(shown, key) is None for key in expanded):
        raise NotFound("visit", ",".join(expanded))
    return {
        "read": read,
        "statement": shown,
        "guest": viewer.realm is Realm.GUEST,
        "pdf": pdf,
        "pay_url": route_path(request.app, PAY_ROUTE),
        "question_url": route_path(request.app, QUESTION_ROUTE),
        "nav_items": plugin_host.nav_items("patient", I18n.current()),
        "current_nav": STATEMENTS,
    }


async def statement_page(
    request: HTMXRequest,
    viewer: Viewer,
    plugin_host: PluginHost,
    settings: Settings,
    statement_id: str,
    *,
    expanded: Collection[str] = frozenset(),
) -> Template:
    """The statement page (also the guest's page), with one audit row for the read."""
    context = await statement_context(request, viewer, plugin_host, settings, statement_id, expanded=expanded)
    await record_access(request, "statement.read", statement_id)
    return Template(STATEMENT_PAGE, context=context)


class StatementsController(Controller):
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get(STATEMENTS, name="statements")
    async def statements(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        page: Annotated[int, QueryParameter(ge=1, le=100_000)] = 1,
    ) -> Template:
        """Every statement, newest first, ten a page, with the total due on top."""
        patient_id = _whose(viewer)
        now = plugin_host.clock()
        today = hospital_today(now, settings.hospital.time_zone)
        read = await statements_of(plugin_host, patient_id, now=now)
        shown = page_of(read.value, page)
        rows = await statements_due(patient_id, shown.items, today)
        account = await account_due(patient_id, read.value, today)
        own = await signed_in_account(request) if viewer.access is Access.SELF else None
        await record_access(request, "statement.list", None)
        return Template(
            "billing/statements.html",
            context={
                "read": read,
                "page": shown,
                "rows": rows,
                "account": account,
                "paperless": None if own is None else bool(own["paperless"]),
                "pay_url": route_path(request.app, PAY_ROUTE),
                "nav_items": plugin_host.nav_items("patient", I18n.current()),
                "current_nav": STATEMENTS,
            },
        )

    @get(f"{STATEMENTS}/{{statement_id:str}}", name="statement", opt={"guest": True})
    async def statement(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        statement_id: FromPath[str],
    ) -> Template:
        return await statement_page(request, viewer, plugin_host, settings, statement_id)

    @get(
        f"{STATEMENTS}/{{statement_id:str}}/visits/{{visit_id:str}}/lines", name="statement-visit", opt={"guest": True}
    )
    async def visit_lines(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        statement_id: FromPath[str],
        visit_id: FromPath[str],
    ) -> Template:
        """Every line of one visit: the partial for htmx, else the page with that visit expanded."""
        if not request.htmx or request.htmx.boosted:
            return await statement_page(request, viewer, plugin_host, settings, statement_id, expanded={visit_id})
        context = await statement_context(request, viewer, plugin_host, settings, statement_id, expanded={visit_id})
        group = explaining.find_visit(context["statement"], visit_id)
        await record_access(request, "statement.read", statement_id, detail={"visit": visit_id})
        return Template(VISIT_LINES, context={**context, "group": group, "swapped": True})

    @get(f"{STATEMENTS}/{{statement_id:str}}/pdf", name="statement-pdf", opt={"guest": True})
    async def pdf(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        statement_id: FromPath[str],
    ) -> Response[bytes]:
        """The statement as a tagged PDF, every visit expanded, from the page's own template."""
        context = await statement_context(request, viewer, plugin_host, settings, statement_id, expanded=None, pdf=True)
        page = Template(STATEMENT_PAGE, context=context)
        engine = cast(TemplateEngineProtocol[Any, Any], request.app.template_engine)
        html = engine.get_template(STATEMENT_PAGE).render(**page.create_template_context(request))
        document = await statement_pdf(html)
        await record_access(request, "statement.pdf", statement_id)
        issued = context["statement"].summary.issued_on.isoformat()
        return Response(
            document,
            media_type="application/pdf",
            headers={
                "Content-Disposition": f'attachment; filename="statement-{issued}.pdf"',
                "Cache-Control": "no-store",
            },
        )


ROUTES = [StatementsController]
