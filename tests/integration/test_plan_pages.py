"""The plan builder and plan pages over HTTP: preview (full page and htmx partial), creation once per
form, the plan page, changes, someone else's plan, and a representative who may not save a card."""

from __future__ import annotations

import random
import re
import secrets
import sqlite3
import uuid
from contextlib import closing

from carefront_sandbox.gateway import TEST_CARDS

from portal import jobs
from portal.audit.tables import AuditEvent
from portal.identity import accounts
from portal.identity.tables import Account
from portal.payments.tables import PaymentAttempt
from portal.plans import agreements
from portal.plans.agreements import Actor
from portal.plans.tables import PaymentPlan, PlanInstallment

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
TOKEN = re.compile(r'name="token" value="([^"]+)"')


async def patient_with_balance(app) -> str:
    """A sandbox patient who owes something, never had a plan and has no portal account (tests share one
    database)."""
    host = app.state["plugin_host"]
    path = next(host.settings.data_dir.glob("sandbox-*.sqlite3"))
    with closing(sqlite3.connect(path)) as db:
        rows = db.execute(
            "SELECT patient_id FROM statements GROUP BY patient_id HAVING SUM(patient_owes - patient_paid) > 60000"
        ).fetchall()
    for key in random.sample([row[0] for row in rows], len(rows)):
        patient = f"pt-{key}"
        if not (
            await PaymentPlan.exists().where(PaymentPlan.patient_id == patient)
            or await Account.exists().where(Account.patient_id == patient)
        ):
            return patient
    raise AssertionError("no sandbox patient without a plan is left")


async def open_builder(client) -> tuple[str, str, list[str]]:
    page = await client.get("/plans/new")
    assert page.status_code == 200, page.text
    statements = re.findall(r'name="statements" value="([^"]+)"', page.text)
    return CSRF.search(page.text)[1], TOKEN.search(page.text)[1], statements


def form(csrf: str, token: str, statements: list[str], **fields: str) -> dict[str, str | list[str]]:
    defaults = {"mode": "months", "months": "3", "day": "1", "payment": "manual", "agree": "yes"}
    return {"_csrf_token": csrf, "token": token, "statements": statements, **defaults, **fields}


async def test_the_builder_previews_as_a_page_and_as_an_htmx_partial(app, client, session_as):
    patient = await patient_with_balance(app)
    await session_as("patient", acting_for=patient, access="self")
    csrf, token, statements = await open_builder(client)
    assert statements

    full = await client.post("/plans/new", data=form(csrf, token, statements, action="preview", months="2"))
    assert full.status_code == 200
    assert "<html" in full.text
    assert full.text.count("<tr>") >= 3  # the header and two installments

    partial = await client.post(
        "/plans/new",
        data=form(csrf, token, statements, action="preview", months="4"),
        headers={"HX-Request": "true", "x-csrftoken": csrf},
    )
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert 'id="plan-preview"' in partial.text
    assert partial.text.count('scope="row"') == 4

    bad = await client.post(
        "/plans/new",
        data=form(csrf, token, statements, action="preview", months="99"),
        headers={"HX-Request": "true", "x-csrftoken": csrf},
    )
    assert "at most" in bad.text


async def test_creating_a_plan_twice_with_one_form_makes_one_plan(app, client, session_as):
    patient = await patient_with_balance(app)
    await session_as("patient", acting_for=patient, access="self")
    csrf, token, statements = await open_builder(client)
    first = await client.post("/plans/new", data=form(csrf, token, statements, action="create"))
    again = await client.post("/plans/new", data=form(csrf, token, statements, action="create"))
    assert first.status_code == 303
    assert again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert await PaymentPlan.count().where(PaymentPlan.patient_id == patient) == 1

    plan_page = await client.get(first.headers["location"])
    assert plan_page.status_code == 200
    assert "History" in plan_page.text
    audit = await AuditEvent.select(AuditEvent.action).where(AuditEvent.acting_as == patient).run()
    assert {"plan.created", "plan.read"} <= {row["action"] for row in audit}


async def test_without_agreeing_the_form_comes_back_with_the_error(app, client, session_as):
    patient = await patient_with_balance(app)
    await session_as("patient", acting_for=patient, access="self")
    csrf, token, statements = await open_builder(client)
    fields = form(csrf, token, statements, action="create")
    del fields["agree"]
    page = await client.post("/plans/new", data=fields)
    assert page.status_code == 422
    assert 'id="agree-error"' in page.text
    assert await PaymentPlan.count().where(PaymentPlan.patient_id == patient) == 0


async def test_changes_the_day_and_cancels_each_confirmed_by_email(app, client, session_as):
    patient = await patient_with_balance(app)
    await session_as("patient", acting_for=patient, access="self")
    csrf, token, statements = await open_builder(client)
    created = await client.post("/plans/new", data=form(csrf, token, statements, action="create", day="1"))
    plan_url = created.headers["location"]
    changed = await client.post(f"{plan_url}/day", data={"_csrf_token": csrf, "day": "15"})
    assert changed.status_code == 303
    plan = await PaymentPlan.select().where(PaymentPlan.patient_id == patient).first()
    scheduled = await PlanInstallment.select().where(
        (PlanInstallment.plan == plan["id"]) & (PlanInstallment.status == "scheduled")
    )
    assert scheduled
    assert {row["due_on"].day for row in scheduled} == {15}
    refused = await client.post(f"{plan_url}/day", data={"_csrf_token": csrf, "day": "2"})
    assert refused.status_code == 422
    cancelled = await client.post(f"{plan_url}/cancel", data={"_csrf_token": csrf})
    assert cancelled.status_code == 303
    assert (await PaymentPlan.select().where(PaymentPlan.id == plan["id"]).first())["status"] == "cancelled"


async def test_someone_elses_plan_is_not_found(app, client, session_as):
    host = app.state["plugin_host"]
    owner = await patient_with_balance(app)
    await session_as("patient", acting_for=owner, access="self")
    csrf, token, statements = await open_builder(client)
    created = await client.post("/plans/new", data=form(csrf, token, statements, action="create"))
    plan_url = created.headers["location"]
    other = await patient_with_balance(app)
    client.cookies.clear()
    await session_as("patient", acting_for=other, access="self")
    for path in (plan_url, f"{plan_url}/cancel", f"{plan_url}/pay", "/plans/not-a-plan-id"):
        assert (await client.get(path)).status_code == 404, path
    page = await client.get("/plans/new")
    csrf = CSRF.search(page.text)[1]
    assert (await client.post(f"{plan_url}/cancel", data={"_csrf_token": csrf})).status_code == 404
    plan = await agreements.plan_of(owner, plan_url.rsplit("/", 1)[1])
    assert plan["status"] == "active"
    await agreements.cancel(host, plan, Actor("account:test"))


async def test_autopay_with_the_sandbox_test_card_then_pay_ahead(app, client, session_as):
    host = app.state["plugin_host"]
    patient = await patient_with_balance(app)
    await session_as("patient", acting_for=patient, access="self", signed_in_at=host.clock().isoformat())
    csrf, token, statements = await open_builder(client)
    created = await client.post("/plans/new", data=form(csrf, token, statements, action="create", payment="autopay"))
    assert created.status_code == 303
    assert "/-/sandbox/checkout/" in created.headers["location"]
    reference = created.headers["location"].rsplit("/", 1)[1]
    await host.gateway.submit_card(reference, TEST_CARDS["4242424242424242"], "12/2035")
    plan = await PaymentPlan.select().where(PaymentPlan.patient_id == patient).first()
    back = await client.get(f"/plans/{plan['public_id']}/method/return", params={"checkout": reference})
    assert back.status_code == 303
    assert "done=method-saved" in back.headers["location"]
    plan = await PaymentPlan.select().where(PaymentPlan.id == plan["id"]).first()
    assert plan["method_summary"] == "Visa ending 4242"
    assert plan["autopay"]

    paid = await client.post(f"/plans/{plan['public_id']}/pay", data={"_csrf_token": csrf})
    assert paid.status_code == 303
    assert "done=paid" in paid.headers["location"]
    again = await client.post(f"/plans/{plan['public_id']}/pay", data={"_csrf_token": csrf})
    assert again.status_code == 303  # the next installment: each charged once, in order
    rows = await PlanInstallment.select().where(PlanInstallment.plan == plan["id"]).order_by(PlanInstallment.due_on)
    assert [row["status"] for row in rows[:2]] == ["paid", "paid"]
    await jobs.run_once(host, host.settings)
    await agreements.cancel(host, plan, Actor("account:test"))


async def test_a_representative_acting_as_the_patient_cannot_save_a_card(app, client, session_as):
    patient = await patient_with_balance(app)
    await session_as(
        "representative",
        acting_for=patient,
        access="self",
        impersonator="staff-1",
        acting_until="2999-01-01T00:00:00+00:00",
    )
    csrf, token, statements = await open_builder(client)
    refused = await client.post("/plans/new", data=form(csrf, token, statements, action="create", payment="autopay"))
    assert refused.status_code == 422
    assert 'id="payment-error"' in refused.text
    manual = await client.post("/plans/new", data=form(csrf, token, statements, action="create"))
    assert manual.status_code == 303
    plan_page = await client.get(manual.headers["location"])
    assert "Turn on automatic payments" not in plan_page.text
    plan_id = manual.headers["location"].rsplit("/", 1)[1]
    assert (await client.post(f"/plans/{plan_id}/method", data={"_csrf_token": csrf})).status_code == 403


async def test_staff_change_a_plan_with_a_reason(app, client, session_as):
    host = app.state["plugin_host"]
    patient = await patient_with_balance(app)
    await session_as("patient", acting_for=patient, access="self")
    csrf, token, statements = await open_builder(client)
    created = await client.post("/plans/new", data=form(csrf, token, statements, action="create", months="2"))
    plan_id = created.headers["location"].rsplit("/", 1)[1]

    client.cookies.clear()
    await session_as("representative")
    page = await client.get(f"/console/plans/{plan_id}")
    assert page.status_code == 200
    csrf = CSRF.search(page.text)[1]
    no_reason = await client.post(
        f"/console/plans/{plan_id}", data={"_csrf_token": csrf, "action": "extend", "months": "30"}
    )
    assert no_reason.status_code == 422
    extended = await client.post(
        f"/console/plans/{plan_id}",
        data={"_csrf_token": csrf, "action": "extend", "months": "20", "reason": "Lost hours at work"},
    )
    assert extended.status_code == 303
    plan = await agreements.plan_of(patient, plan_id)
    view = await agreements.view_of(plan)
    assert len([row for row in view.installments if row["status"] == "scheduled"]) == 20
    assert view.history[0]["staff"]
    assert view.history[0]["reason"] == "Lost hours at work"
    paused = await client.post(
        f"/console/plans/{plan_id}", data={"_csrf_token": csrf, "action": "pause", "reason": "Hardship"}
    )
    assert paused.status_code == 303
    assert (await agreements.plan_of(patient, plan_id))["status"] == "paused"
    await agreements.cancel(host, await agreements.plan_of(patient, plan_id), Actor("account:test"))

    client.cookies.clear()
    await session_as("patient", acting_for=patient, access="self")
    assert (await client.get(f"/console/plans/{plan_id}")).status_code in (403, 404)


async def test_the_home_page_shows_the_live_plan_and_its_next_charge(app, client, session_as):
    host = app.state["plugin_host"]
    patient = await patient_with_balance(app)
    now = host.clock()
    account = await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"plan-home-{secrets.token_hex(4)}@example.org",
        email_verified_at=now,
        given_name="Plan",
        family_name="Holder",
        patient_id=patient,
    )
    await session_as("patient", account_id=str(account["public_id"]), acting_for=patient, access="self")
    assert "See your plan" not in (await client.get("/home")).text
    csrf, token, statements = await open_builder(client)
    created = await client.post("/plans/new", data=form(csrf, token, statements, action="create", months="2"))
    home = await client.get("/home")
    assert home.status_code == 200
    assert "See your plan" in home.text
    assert created.headers["location"] in home.text
    plan = await agreements.plan_of(patient, created.headers["location"].rsplit("/", 1)[1])
    await agreements.cancel(host, plan, Actor("account:test"))


async def test_an_installment_paid_by_hand_on_the_gateways_page_is_recorded_once(app, client, session_as):
    host = app.state["plugin_host"]
    patient = await patient_with_balance(app)
    paid_before = await PaymentAttempt.count().where(PaymentAttempt.patient_id == patient)
    await session_as("patient", acting_for=patient, access="self")
    csrf, token, statements = await open_builder(client)
    created = await client.post("/plans/new", data=form(csrf, token, statements, action="create", months="3"))
    plan_url = created.headers["location"]
    first = await client.post(f"{plan_url}/pay", data={"_csrf_token": csrf})
    again = await client.post(f"{plan_url}/pay", data={"_csrf_token": csrf})
    assert first.status_code == 303
    assert "/-/sandbox/checkout/" in first.headers["location"]
    assert again.headers["location"] == first.headers["location"], "a second press finds the same checkout"
    reference = first.headers["location"].rsplit("/", 1)[1]
    await host.gateway.submit_card(reference, TEST_CARDS["4242424242424242"], "12/2035")
    back = await client.get(f"{plan_url}/paid", params={"checkout": reference})
    assert back.status_code == 303
    assert "done=paid" in back.headers["location"]
    assert (await client.get(f"{plan_url}/paid", params={"checkout": reference})).status_code == 303
    plan = await agreements.plan_of(patient, plan_url.rsplit("/", 1)[1])
    rows = await PlanInstallment.select().where(PlanInstallment.plan == plan["id"]).order_by(PlanInstallment.due_on)
    assert [row["status"] for row in rows] == ["paid", "scheduled", "scheduled"]
    assert await PaymentAttempt.count().where(PaymentAttempt.patient_id == patient) == paid_before + 1
    await agreements.cancel(host, plan, Actor("account:test"))
