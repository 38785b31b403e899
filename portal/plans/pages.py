"""The patient's plan pages: the builder with its live preview, the plan page, and each change.

Controllers only: the policy and schedules are ``portal.plans.builder``/``schedule``, the agreements
``portal.plans.agreements``, charging ``portal.plans.runner``. Patients and their proxies (billing
delegates included) use them for the patient they act for; guests never. A representative acting as
the patient may set up or change a plan paid by hand, but no card is saved while they act
(PROMISES.md 7): they send the patient the plan's link instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from carefront_sdk.errors import NotFound, Refused, Unavailable
from carefront_sdk.models import Money, SaveMethodRequest
from litestar import Controller, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from portal.access import ACTING_REFUSAL, patients_only
from portal.audit.access import record_access
from portal.i18n import N_, I18n, format_money
from portal.identity import recent_sign_in
from portal.identity.acting_for import acting_for_allowed
from portal.identity.proxy_pages import URL_ENCODED
from portal.identity.sessions import ACTING_ACCOUNT, Realm, Viewer
from portal.payments import form_tokens
from portal.payments.attempts import customer_reference
from portal.plans import agreements, builder, runner
from portal.plans.agreements import Actor, NewPlan, PlanView
from portal.plans.schedule import Problem
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.web.errors import ERRORS, error_response, toast_header

CONFIRM_ROUTE = "account-confirm"
FORM_EXPIRED = N_("This form has expired. Check your choices and press the button again.")
STATUS_LABELS = {
    "active": N_("Active"),
    "paused": N_("Paused by the billing office"),
    "completed": N_("Paid in full"),
    "cancelled": N_("Cancelled"),
    "defaulted": N_("Ended: installments were missed"),
}
INSTALLMENT_LABELS = {
    "scheduled": N_("Scheduled"),
    "paid": N_("Paid"),
    "missed": N_("Missed"),
    "cancelled": N_("Not charged"),
}
CHANGE_LABELS = {
    "created": N_("Plan set up"),
    "autopay_started": N_("Automatic payments turned on"),
    "method_changed": N_("Card changed"),
    "day_changed": N_("Day of the month changed"),
    "amount_changed": N_("Monthly amount changed"),
    "statement_added": N_("Statement added"),
    "extended": N_("Plan made longer"),
    "skipped": N_("A month skipped"),
    "paused": N_("Paused"),
    "resumed": N_("Resumed"),
    "cancelled": N_("Cancelled"),
    "completed": N_("Paid in full"),
    "defaulted": N_("Ended after missed installments"),
    "installment_paid": N_("Installment paid"),
    "installment_declined": N_("Installment declined"),
    "installment_missed": N_("Installment missed"),
}
PAID_AHEAD = N_("Thank you: your installment is paid.")
CHARGE_PENDING = N_("We are still waiting for the card company's answer. Check this page again in a few minutes.")
NOT_PAID = N_("Nothing was charged. You can try again.")
NOTHING_DUE = N_("There is nothing left to pay in this plan.")
METHOD_SAVED = N_("Your card is saved: each installment will be charged to it on its date.")
METHOD_NOT_SAVED = N_("Your card was not saved. You can try again.")
NOT_ADDABLE = N_("Choose a statement to add.")


def _nav(plugin_host: PluginHost) -> dict[str, Any]:
    return {"nav_items": plugin_host.nav_items("patient", I18n.current()), "current_nav": "/plans"}


def _actor(viewer: Viewer) -> Actor:
    """Who changes the plan: while a representative acts as the patient, the representative, within the
    patient's limits (the wider ones are the console's, with a reason)."""
    return Actor(f"account:{viewer.impersonator or viewer.account_id}")


def _holder(request: HTMXRequest, viewer: Viewer) -> str:
    """The portal account the plan's emails go to: the signed-in person, or (acting) the patient's own."""
    if viewer.impersonating:
        return str(request.session.get(ACTING_ACCOUNT) or "")
    return str(viewer.account_id or "")


def translate_errors(request: HTMXRequest, errors: dict[str, tuple[str, dict[str, int]]]) -> dict[str, str]:
    """Errors (msgid and values) in the reader's language, amounts as money."""
    i18n: I18n = request.app.state["i18n"]
    shown = {}
    for name, (message, values) in errors.items():
        filled = {key: format_money_cents(value) if key == "minimum" else value for key, value in values.items()}
        shown[name] = i18n.gettext(message) % filled if filled else i18n.gettext(message)
    return shown


def format_money_cents(amount: int) -> str:
    return format_money(Money(amount))


# --- The builder -------------------------------------------------------------------------------------


class PlanBuilderController(Controller):
    """``/plans/new``: choose statements, months or a monthly amount and the day; see the schedule; agree."""

    path = "/plans/new"
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get(name="new-plan")
    async def builder_page(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        patient_id = _patient(viewer)
        live = await agreements.live_plan_of(patient_id)
        if live is not None:
            return Redirect(request.app.route_reverse("plan", plan_id=str(live["public_id"])), status_code=303)
        now = plugin_host.clock()
        read, offered = await builder.plannable(plugin_host, patient_id, now)
        policy = settings.plans
        choice = builder.Choice(
            statements=tuple(item.statement_id for item in offered),
            months="",
            day=str(policy.days_of_month[0]),
        )
        first = builder.propose(choice, offered, plugin_host, now)
        choice = builder.Choice(statements=choice.statements, months=str(min(first.longest, 6) or 1), day=choice.day)
        proposal = builder.propose(choice, offered, plugin_host, now)
        await record_access(request, "plan.builder", None)
        return _builder_page(request, viewer, plugin_host, settings, read, offered, choice, proposal, errors={})

    @post(name="new-plan-submit")
    async def submit(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect | Response[Any]:
        """Preview (the htmx partial as the inputs change, or the page from the Preview button) or create."""
        patient_id = _patient(viewer)
        form = await request.form()
        fields = {key: form.getall(key) for key in form}
        choice = builder.Choice.from_form(fields)
        creating = (fields.get("action") or [""])[0] == "create"
        now = plugin_host.clock()
        read, offered = await builder.plannable(plugin_host, patient_id, now)
        proposal = builder.propose(choice, offered, plugin_host, now, final=creating)
        if not creating:
            errors = translate_errors(request, proposal.errors)
            page = _builder_page(request, viewer, plugin_host, settings, read, offered, choice, proposal, errors)
            if request.htmx and not request.htmx.boosted:
                return Template("plans/_preview.html", context=page.context)
            return page
        token = (fields.get("token") or [""])[0]
        key = form_tokens.idempotency_key(settings.secret_key, patient_id, token)
        made = await agreements.made_with(f"plan-{key}", patient_id) if key else None
        if made is not None:  # a repeated submit of the form that made it
            return Redirect(request.app.route_reverse("plan", plan_id=str(made["public_id"])), status_code=303)
        errors = translate_errors(request, proposal.errors)
        if key is None:
            errors.setdefault("token", _t(request, FORM_EXPIRED))
        if choice.payment == "autopay" and viewer.realm is Realm.STAFF and "payment" not in errors:
            errors["payment"] = _t(request, ACTING_REFUSAL.message)
        if errors or not proposal.ok or key is None:
            return _builder_page(
                request, viewer, plugin_host, settings, read, offered, choice, proposal, errors, status_code=422
            )
        chosen = [(item.statement_id, item.owed) for item in offered if item.statement_id in choice.statements]
        new = NewPlan(
            patient_id=patient_id,
            account_number=await _account_number(plugin_host, patient_id),
            holder_account_id=_holder(request, viewer),
            statements=chosen,
            schedule=proposal.schedule,
            day=int(choice.day),
            autopay=choice.payment == "autopay",
            customer_reference=customer_reference(settings, patient_id),
        )
        try:
            plan_id, created = await agreements.create_plan(plugin_host, new, f"plan-{key}", _actor(viewer))
        except Refused:
            live = await agreements.live_plan_of(patient_id)
            if live is None:
                raise
            return Redirect(request.app.route_reverse("plan", plan_id=str(live["public_id"])), status_code=303)
        await record_access(request, "plan.created" if created else "plan.read", plan_id)
        if choice.payment == "autopay":
            plan = await agreements.plan_of(patient_id, plan_id)
            return await _start_saving(request, viewer, plugin_host, settings, plan)
        return Redirect(request.app.route_reverse("plan", plan_id=plan_id), status_code=303)


def _t(request: HTMXRequest, message: str) -> str:
    i18n: I18n = request.app.state["i18n"]
    return i18n.gettext(message)


def _patient(viewer: Viewer) -> str:
    if viewer.acting_for is None:
        raise NotFound("patient", "")
    return viewer.acting_for


async def _account_number(plugin_host: PluginHost, patient_id: str) -> str:
    patient = await plugin_host.ehr.read_patient(patient_id)
    return patient.account_number


def _builder_page(
    request: HTMXRequest,
    viewer: Viewer,
    plugin_host: PluginHost,
    settings: Settings,
    read: Any,
    offered: list[builder.Plannable],
    choice: builder.Choice,
    proposal: builder.Proposal,
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    return Template(
        "plans/new.html",
        context={
            "read": read,
            "offered": offered,
            "choice": choice,
            "proposal": proposal,
            "errors": errors,
            "policy": settings.plans,
            "token": form_tokens.mint(settings.secret_key, _patient(viewer)),
            "acting": viewer.realm is Realm.STAFF,
            "money_of": Money,
            "rows_of": agreements.rows_of,
            **_nav(plugin_host),
        },
        status_code=status_code,
    )


# --- Saving a card for autopay -----------------------------------------------------------------------


async def _start_saving(
    request: HTMXRequest, viewer: Viewer, plugin_host: PluginHost, settings: Settings, plan: dict[str, Any]
) -> Response[Any] | Redirect:
    """Send the browser to the gateway's page that saves a card for this plan (never while acting)."""
    plan_path = request.app.route_reverse("plan", plan_id=str(plan["public_id"]))
    if viewer.realm is Realm.STAFF or viewer.impersonating:
        return error_response(request, 403, ACTING_REFUSAL)
    if not recent_sign_in.is_recent(request.session, plugin_host.clock()):
        confirm = request.app.route_reverse(CONFIRM_ROUTE)
        return Redirect(f"{confirm}?{urlencode({'next': plan_path})}", status_code=303)
    return_url = settings.public_url + request.app.route_reverse("plan-method-return", plan_id=str(plan["public_id"]))
    checkout = await plugin_host.gateway.start_saving_method(
        SaveMethodRequest(customer_reference=plan["customer_reference"], return_url=return_url, cancel_url=return_url),
        idempotency_key=f"plan-method:{plan['public_id']}:{plugin_host.clock().isoformat()}",
    )
    await agreements.remember_method_checkout(plan, checkout.reference)
    await record_access(request, "plan.method_started", str(plan["public_id"]))
    if checkout.url is None:
        return error_response(request, 503, ERRORS[503])
    return Redirect(checkout.url, status_code=303)


# --- The plan page and its changes -------------------------------------------------------------------


@dataclass
class DayForm:
    day: str = ""


@dataclass
class StatementForm:
    statement: str = ""


class PlanController(Controller):
    """``/plans`` and ``/plans/{plan_id}``: the schedule, what is paid and left, history, and the changes."""

    path = "/plans"
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get(name="plans")
    async def plans(
        self, request: HTMXRequest, viewer: NamedDependency[Viewer], plugin_host: NamedDependency[PluginHost]
    ) -> Template | Redirect:
        rows = await agreements.plans_of(_patient(viewer))
        live = next((row for row in rows if row["status"] in agreements.LIVE), None)
        if live is not None:
            return Redirect(request.app.route_reverse("plan", plan_id=str(live["public_id"])), status_code=303)
        await record_access(request, "plan.list", None)
        return Template("plans/plans.html", context={"rows": rows, "status_labels": STATUS_LABELS, **_nav(plugin_host)})

    @get("/{plan_id:str}", name="plan")
    async def plan_page(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        plan_id: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        plan = await agreements.plan_of(_patient(viewer), plan_id)
        await record_access(request, "plan.read", plan_id)
        return await _plan_page(request, viewer, plugin_host, settings, plan, notice=_done_notice(done))

    @post("/{plan_id:str}/method", name="plan-method")
    async def method(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        plan_id: FromPath[str],
    ) -> Response[Any] | Redirect:
        """Save a card (or another card) for automatic payments: through the gateway's own page."""
        plan = await agreements.plan_of(_patient(viewer), plan_id)
        if plan["status"] not in agreements.LIVE:
            raise NotFound("plan", plan_id)
        return await _start_saving(request, viewer, plugin_host, settings, plan)

    @get("/{plan_id:str}/method/return", name="plan-method-return")
    async def method_return(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        plan_id: FromPath[str],
        checkout: FromQuery[str | None] = None,
    ) -> Redirect:
        """Back from the gateway: keep the saved card if the page saved one for this plan."""
        plan = await agreements.plan_of(_patient(viewer), plan_id)
        outcome = "method-not-saved"

        if checkout and checkout == plan["method_checkout"] and not viewer.impersonating:
            payment = await plugin_host.gateway.read_payment(checkout)
            if payment.saved_method_reference:
                method = await plugin_host.gateway.read_saved_method(payment.saved_method_reference)
                if method.customer_reference == plan["customer_reference"]:
                    await agreements.set_method(plugin_host, plan, method.reference, method.summary, _actor(viewer))
                    outcome = "method-saved"
        await record_access(request, "plan.method_saved" if outcome == "method-saved" else "plan.read", plan_id)
        return Redirect(request.app.route_reverse("plan", plan_id=plan_id) + f"?done={outcome}", status_code=303)

    @post("/{plan_id:str}/day", name="plan-day")
    async def change_day(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        plan_id: FromPath[str],
        data: Annotated[DayForm, URL_ENCODED],
    ) -> Template | Redirect:
        plan = await agreements.plan_of(_patient(viewer), plan_id)
        day = builder.whole_number(data.day) or 0
        problem = None
        if day not in settings.plans.days_of_month:
            problem = Problem("day", N_("Choose one of the days offered."))
        else:
            problem = await _refusing(agreements.reschedule(plugin_host, plan, _actor(viewer), "day_changed", day=day))
        return await _after_change(request, viewer, plugin_host, settings, plan, "day_changed", problem)

    @post("/{plan_id:str}/statements", name="plan-add-statement")
    async def add_statement(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        plan_id: FromPath[str],
        data: Annotated[StatementForm, URL_ENCODED],
    ) -> Template | Redirect:
        patient_id = _patient(viewer)
        plan = await agreements.plan_of(patient_id, plan_id)
        _, offered = await builder.plannable(plugin_host, patient_id, plugin_host.clock())
        chosen = next((item for item in offered if item.statement_id == data.statement), None)
        if chosen is None:
            problem: Problem | None = Problem("statement", NOT_ADDABLE)
        else:
            problem = await _refusing(
                agreements.add_statement(plugin_host, plan, chosen.statement_id, chosen.owed, _actor(viewer))
            )
        return await _after_change(request, viewer, plugin_host, settings, plan, "statement_added", problem)

    @get("/{plan_id:str}/cancel", name="plan-cancel")
    async def cancel_page(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        plan_id: FromPath[str],
    ) -> Template:
        plan = await agreements.plan_of(_patient(viewer), plan_id)
        view = await agreements.view_of(plan)
        await record_access(request, "plan.read", plan_id)
        return Template("plans/cancel.html", context={"view": view, **_nav(plugin_host)})

    @post("/{plan_id:str}/cancel")
    async def cancel(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        plan_id: FromPath[str],
    ) -> Template | Redirect:
        plan = await agreements.plan_of(_patient(viewer), plan_id)
        problem = await _refusing(agreements.cancel(plugin_host, plan, _actor(viewer)))
        return await _after_change(request, viewer, plugin_host, settings, plan, "cancelled", problem)

    @get("/{plan_id:str}/pay", name="plan-pay")
    async def pay_page(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        plan_id: FromPath[str],
    ) -> Template:
        """Confirm paying the next installment now with the saved card."""
        plan = await agreements.plan_of(_patient(viewer), plan_id)
        view = await agreements.view_of(plan)
        await record_access(request, "plan.read", plan_id)
        return Template("plans/pay.html", context={"view": view, "next": _payable(view), **_nav(plugin_host)})

    @post("/{plan_id:str}/pay")
    async def pay(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        plan_id: FromPath[str],
    ) -> Template | Redirect:
        """Charge the next installment (a missed one first) to the saved card, once."""
        plan = await agreements.plan_of(_patient(viewer), plan_id)
        view = await agreements.view_of(plan)
        payable = _payable(view)
        if plan["status"] != "active" or payable is None:
            return await _plan_page(request, viewer, plugin_host, settings, plan, notice=NOTHING_DUE, status_code=409)
        if not plan["method_reference"]:
            if viewer.impersonating:
                return error_response(request, 403, ACTING_REFUSAL)  # no card is entered while acting
            checkout = await runner.start_checkout_payment(plugin_host, settings, plan, payable)
            await record_access(request, "plan.checkout_started", plan_id)
            if checkout is None or not checkout.url:
                return await _plan_page(
                    request, viewer, plugin_host, settings, plan, notice=CHARGE_PENDING, status_code=409
                )
            return Redirect(checkout.url, status_code=303)
        outcome = await runner.charge_now(plugin_host, settings, payable)
        await record_access(
            request, "plan.paid_ahead", plan_id, outcome="ok" if outcome.result == "paid" else outcome.result
        )
        if outcome.result == "paid":
            return Redirect(request.app.route_reverse("plan", plan_id=plan_id) + "?done=paid", status_code=303)
        notice = outcome.message if outcome.result == "declined" else CHARGE_PENDING
        return await _plan_page(request, viewer, plugin_host, settings, plan, notice=notice, status_code=409)

    @get("/{plan_id:str}/paid", name="plan-paid")
    async def paid(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        plan_id: FromPath[str],
        checkout: FromQuery[str | None] = None,
    ) -> Template | Redirect:
        """Back from the gateway's page: the installment is paid, or the page says why not."""
        plan = await agreements.plan_of(_patient(viewer), plan_id)
        outcome = await runner.settle_returned(plugin_host, settings, plan, checkout or "")
        await record_access(request, "plan.paid" if outcome.result == "paid" else "plan.read", plan_id)
        if outcome.result == "paid":
            return Redirect(request.app.route_reverse("plan", plan_id=plan_id) + "?done=paid", status_code=303)
        notice = outcome.message or (CHARGE_PENDING if outcome.result == "unknown" else NOT_PAID)
        return await _plan_page(request, viewer, plugin_host, settings, plan, notice=notice)


def _payable(view: PlanView) -> dict[str, Any] | None:
    missed = [row for row in view.installments if row["status"] == "missed"]
    return missed[0] if missed else view.next_due


async def _refusing(work: Any) -> Problem | None:
    """The change's policy problem, or a refusal (the plan closed meanwhile) as a problem."""
    try:
        result: Problem | None = await work
    except Refused as refusal:
        if isinstance(refusal, NotFound):
            raise
        return Problem("plan", refusal.message)
    return result


_DONE = {
    "paid": PAID_AHEAD,
    "method-saved": METHOD_SAVED,
    "method-not-saved": METHOD_NOT_SAVED,
    "day_changed": N_("Your installments are now due on the new day. We emailed you the new schedule."),
    "statement_added": N_("The statement is now part of your plan. We emailed you the new schedule."),
    "cancelled": N_("Your plan is cancelled. We emailed you a confirmation."),
}


def _done_notice(done: str | None) -> str | None:
    return _DONE.get(done or "")


async def _after_change(
    request: HTMXRequest,
    viewer: Viewer,
    plugin_host: PluginHost,
    settings: Settings,
    plan: dict[str, Any],
    change: str,
    problem: Problem | None,
) -> Template | Redirect:
    plan_id = str(plan["public_id"])
    await record_access(request, f"plan.{change}", plan_id, outcome="ok" if problem is None else "refused")
    if problem is None:
        return Redirect(request.app.route_reverse("plan", plan_id=plan_id) + f"?done={change}", status_code=303)
    errors = translate_errors(request, {problem.field: (problem.message, dict(problem.values))})
    fresh = await agreements.plan_of(plan["patient_id"], plan_id)
    page = await _plan_page(request, viewer, plugin_host, settings, fresh, errors=errors, status_code=422)
    if request.htmx:
        page.headers.update(toast_header(next(iter(errors.values()))))
    return page


async def _plan_page(
    request: HTMXRequest,
    viewer: Viewer,
    plugin_host: PluginHost,
    settings: Settings,
    plan: dict[str, Any],
    *,
    notice: str | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Template:
    view = await agreements.view_of(plan)
    addable: list[builder.Plannable] = []
    if plan["status"] in agreements.LIVE and settings.plans.allow_adding_statements:
        try:
            _, addable = await builder.plannable(plugin_host, plan["patient_id"], plugin_host.clock())
        except Unavailable:  # the EHR down: the plan page still shows, without the list to add from
            addable = []
    return Template(
        "plans/plan.html",
        context={
            "view": view,
            "plan": plan,
            "notice": _t(request, notice) if notice else None,
            "errors": errors or {},
            "addable": addable,
            "policy": settings.plans,
            "payable": _payable(view),
            "acting": viewer.impersonating,
            "status_labels": STATUS_LABELS,
            "installment_labels": INSTALLMENT_LABELS,
            "change_labels": CHANGE_LABELS,
            **_nav(plugin_host),
        },
        status_code=status_code,
    )
