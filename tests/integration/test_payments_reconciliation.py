"""A payment whose outcome never came back (tab closed on the gateway's page, webhook lost) is settled
by asking the gateway, and then posted like any other (PROMISES.md 14)."""

from __future__ import annotations

from datetime import timedelta

from portal import jobs
from portal.payments.reconciliation import ASKED_EVERY, GIVEN_UP_AFTER, LEFT_ALONE_FOR, settle_unfinished
from portal.payments.tables import PaymentAttempt
from tests.integration.test_payments import attempts_of, pay_form, pay_on_hosted_page, sign_in, statement_owing, submit


async def test_a_paid_checkout_the_patient_never_came_back_from_is_settled_and_posted(portal, browser, clock):
    host, settings = portal.state["plugin_host"], portal.state["settings"]
    statement = await statement_owing(portal, 11)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client, f"?statement={statement.id}")
        started = await submit(client, form, choice="other", amount="30")
        paid = await pay_on_hosted_page(client, started.headers["location"], "4242 4242 4242 4242")
        assert paid.status_code == 303  # the browser is sent back, and never goes

    await settle_unfinished(host, settings, clock.now)
    (attempt,) = await attempts_of(statement.patient_id)
    assert attempt["status"] == "open", "left alone while the patient may still be on the gateway's page"

    clock.now += LEFT_ALONE_FOR + timedelta(seconds=1)
    assert await settle_unfinished(host, settings, clock.now) == 1
    (attempt,) = await attempts_of(statement.patient_id)
    assert (attempt["status"], attempt["amount"], attempt["method_summary"]) == ("succeeded", 3000, "Visa ending 4242")

    await jobs.run_once(host, settings)
    (attempt,) = await attempts_of(statement.patient_id)
    assert attempt["status"] == "posted"


async def test_an_abandoned_checkout_is_asked_about_every_few_minutes_until_it_expires(portal, browser, clock):
    host, settings = portal.state["plugin_host"], portal.state["settings"]
    statement = await statement_owing(portal, 15)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client, f"?statement={statement.id}")
        await submit(client, form, choice="other", amount="12")  # then closes the tab without a card

    clock.now += LEFT_ALONE_FOR + timedelta(seconds=1)
    await settle_unfinished(host, settings, clock.now)
    (attempt,) = await attempts_of(statement.patient_id)
    assert (attempt["status"], attempt["checked_at"]) == ("open", clock.now)

    asked_at = clock.now
    clock.now += ASKED_EVERY / 2
    await settle_unfinished(host, settings, clock.now)
    (attempt,) = await attempts_of(statement.patient_id)
    assert attempt["checked_at"] == asked_at, "not asked again so soon"

    clock.now = attempt["created_at"] + GIVEN_UP_AFTER + timedelta(minutes=1)
    await settle_unfinished(host, settings, clock.now)
    (attempt,) = await attempts_of(statement.patient_id)
    assert attempt["checked_at"] == asked_at, "an expired checkout is no longer asked about"
    assert await PaymentAttempt.count().where(PaymentAttempt.patient_id == statement.patient_id).run() == 1
