"""Representatives' and supervisors' plan page: ``/console/plans/{plan_id}``.

Staff see any patient's plan and change it within wider limits than a patient may: pause and
resume, skip a month, make it longer (up to ``[plans] staff_max_months``) or set the monthly amount.
Every change needs a reason; the plan's history keeps it with the staff member, and the audit log
records who did what to which plan (ids only: the reason stays in the plan's history).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from carefront_sdk.errors import NotFound, Refused
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import staff_with
from portal.audit.access import record_access
from portal.i18n import N_
from portal.identity.proxy_pages import URL_ENCODED
from portal.identity.sessions import viewer
from portal.payments.amounts import parse_amount
from portal.plans import agreements
from portal.plans.agreements import Actor
from portal.plans.builder import whole_number
from portal.plans.pages import CHANGE_LABELS, INSTALLMENT_LABELS, STATUS_LABELS, translate_errors
from portal.plans.schedule import Problem
from portal.plugin_host import PluginHost
from portal.settings import Settings

ACTIONS = ("pause", "resume", "skip", "extend", "amount")
REASON_NEEDED = N_("Give the reason for this change.")
MONTHS_NEEDED = N_("Choose a number of months.")
UNKNOWN_ACTION = N_("Choose a change.")


@dataclass
class StaffChange:
    action: str = ""
    reason: str = ""
    months: str = ""
    monthly: str = ""


class StaffPlanController(Controller):
    path = "/console/plans"
    guards = [staff_with("representative", "supervisor")]

    @get("/{plan_id:str}", name="console-plan")
    async def plan_page(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plan_id: FromPath[str],
        done: FromQuery[str | None] = None,
    ) -> Template:
        plan = await agreements.find_plan(plan_id)
        if plan is None:
            raise NotFound("plan", plan_id)
        await record_access(request, "plan.read", plan_id, detail={"patient": plan["patient_id"]})
        return await _page(request, settings, plan, form=StaffChange(), errors={}, done=done)

    @post("/{plan_id:str}", name="console-plan-change")
    async def change(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        plan_id: FromPath[str],
        data: Annotated[StaffChange, URL_ENCODED],
    ) -> Template | Redirect:
        plan = await agreements.find_plan(plan_id)
        if plan is None:
            raise NotFound("plan", plan_id)
        current = viewer(request)
        reason = data.reason.strip()[:500]
        errors: dict[str, tuple[str, dict[str, int]]] = {}
        if data.action not in ACTIONS:
            errors["action"] = (UNKNOWN_ACTION, {})
        if not reason:
            errors["reason"] = (REASON_NEEDED, {})
        months = whole_number(data.months)
        monthly = parse_amount(data.monthly) if data.action == "amount" else None
        if data.action == "extend" and months is None:
            errors["months"] = (MONTHS_NEEDED, {})
        if monthly is not None and monthly.problem:
            errors["monthly"] = (monthly.problem, {})
        actor = Actor(f"account:{current.account_id if current else ''}", staff=True, reason=reason)
        change = {"pause": "paused", "resume": "resumed", "skip": "skipped", "extend": "extended"}.get(
            data.action, "amount_changed"
        )
        if not errors:
            problem = await _apply(plugin_host, plan, actor, data.action, months, monthly.amount if monthly else None)
            if problem is not None:
                errors[problem.field if problem.field in ("months", "monthly") else "action"] = (
                    problem.message,
                    dict(problem.values),
                )
        await record_access(
            request,
            f"plan.{change}",
            plan_id,
            outcome="refused" if errors else "ok",
            detail={"patient": plan["patient_id"]},
        )
        if errors:
            return await _page(
                request, settings, plan, form=data, errors=translate_errors(request, errors), status_code=422
            )
        return Redirect(request.app.route_reverse("console-plan", plan_id=plan_id) + "?done=1", status_code=303)


async def _apply(
    host: PluginHost, plan: dict[str, Any], actor: Actor, action: str, months: int | None, monthly: int | None
) -> Problem | None:
    try:
        if action == "pause":
            await agreements.pause(host, plan, actor)
        elif action == "resume":
            return await agreements.resume(host, plan, actor)
        elif action == "skip":
            await agreements.skip_month(host, plan, actor)
        elif action == "extend":
            return await agreements.reschedule(host, plan, actor, "extended", months=months)
        else:
            return await agreements.reschedule(host, plan, actor, "amount_changed", monthly=monthly)
    except Refused as refusal:
        if isinstance(refusal, NotFound):
            raise
        return Problem("action", refusal.message)
    return None


async def _page(
    request: HTMXRequest,
    settings: Settings,
    plan: dict[str, Any],
    *,
    form: StaffChange,
    errors: dict[str, str],
    done: str | None = None,
    status_code: int = 200,
) -> Template:
    fresh = await agreements.find_plan(str(plan["public_id"])) or plan
    return Template(
        "plans/staff_plan.html",
        context={
            "view": await agreements.view_of(fresh),
            "plan": fresh,
            "form": form,
            "errors": errors,
            "done": bool(done),
            "limit": settings.plans.staff_max_months,
            "status_labels": STATUS_LABELS,
            "installment_labels": INSTALLMENT_LABELS,
            "change_labels": CHANGE_LABELS,
        },
        status_code=status_code,
    )
