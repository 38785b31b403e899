"""Paying a bill with the sandbox gateway: the pay form, the hosted checkout, the return, the ledger,
posting through the outbox and the emailed receipt (PROMISES.md 9, 10, 13, 14)."""

from __future__ import annotations

import asyncio
import re
import secrets

import httpx
import pytest
from carefront_sandbox.identifiers import format_id
from carefront_sdk.models import StatementSummary
from litestar import Litestar
from litestar.serialization import encode_json

from portal import jobs
from portal.app import SESSION_COOKIE
from portal.audit.tables import AuditEvent
from portal.outbox.tables import OutboxMessage
from portal.payments.tables import PaymentAttempt

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
TOKEN = re.compile(r'name="token" value="([^"]+)"')


async def statement_owing(app: Litestar, index: int, at_least: int = 5000) -> StatementSummary:
    """A statement of sandbox patient ``index`` (or the next one) with at least ``at_least`` cents to
    pay, of a patient no other test has paid for yet: tests on one backend share the database."""
    ehr = app.state["plugin_host"].ehr
    for offset in range(40):
        patient_id = format_id("pt", index + offset)
        if await PaymentAttempt.exists().where(PaymentAttempt.patient_id == patient_id).run():
            continue
        statements = await ehr.list_statements(patient_id)
        owing = [summary for summary in statements if summary.balance.amount >= at_least]
        if owing:
            return owing[0]
    raise AssertionError("no sandbox patient owes enough")


async def sign_in(app: Litestar, client: httpx.AsyncClient, patient_id: str) -> None:
    session_id = secrets.token_hex(32)
    data = {
        "account_id": f"account-{secrets.token_hex(4)}",
        "realm": "patient",
        "acting_for": patient_id,
        "access": "self",
    }
    await app.stores.get("sessions").set(session_id, encode_json(data), expires_in=15 * 60)
    client.cookies.set(SESSION_COOKIE, session_id)


async def pay_form(client: httpx.AsyncClient, query: str = "") -> dict[str, str]:
    page = await client.get(f"/pay{query}")
    assert page.status_code == 200, page.text
    return {"_csrf_token": CSRF.search(page.text).group(1), "token": TOKEN.search(page.text).group(1),
            "statement": re.search(r'name="statement" value="([^"]*)"', page.text).group(1)}  # fmt: skip


async def submit(client: httpx.AsyncClient, form: dict[str, str], **fields: str) -> httpx.Response:
    return await client.post("/pay", data={**form, **fields})


async def pay_on_hosted_page(client: httpx.AsyncClient, location: str, card: str) -> httpx.Response:
    page = await client.get(location)
    assert page.status_code == 200
    token = CSRF.search(page.text).group(1)
    return await client.post(location, data={"_csrf_token": token, "number": card, "expiry": "12/40", "cvc": "123"})


async def attempts_of(patient_id: str) -> list[dict]:
    return await PaymentAttempt.select().where(PaymentAttempt.patient_id == patient_id).run()


async def test_paying_25_dollars_with_the_success_card_gives_a_receipt_and_posts_once(portal, browser):
    statement = await statement_owing(portal, 3)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client, f"?statement={statement.id}")
        started = await submit(client, form, choice="other", amount="25")
        assert started.status_code == 303
        assert started.headers["location"].startswith("https://testserver/-/sandbox/checkout/cs_test_")
        paid = await pay_on_hosted_page(client, started.headers["location"], "4242 4242 4242 4242")
        assert paid.status_code == 303
        returned = await client.get(paid.headers["location"])
        assert returned.status_code == 303
        receipt = await client.get(returned.headers["location"])
        assert receipt.status_code == 200
        assert "$25.00" in receipt.text
        assert "Visa ending 4242" in receipt.text
        (attempt,) = await attempts_of(statement.patient_id)
        assert (attempt["status"], attempt["amount"], attempt["statement_id"]) == ("succeeded", 2500, statement.id)
        assert attempt["reference_number"] in receipt.text

        host = portal.state["plugin_host"]
        await jobs.run_once(host, portal.state["settings"])
        await jobs.run_once(host, portal.state["settings"])
        (attempt,) = await attempts_of(statement.patient_id)
        assert attempt["status"] == "posted"
        assert attempt["posting_reference"]
        after = await host.ehr.read_statement(statement.id)
        assert after.summary.balance.amount == statement.balance.amount - 2500
        assert "Posted to your account" in (await client.get(returned.headers["location"])).text
    keys = {f"post-payment:{attempt['public_id']}", f"receipt:{attempt['public_id']}"}
    rows = await OutboxMessage.select().where(OutboxMessage.idempotency_key.is_in(list(keys))).run()
    assert {row["state"] for row in rows} == {"delivered"}
    assert len(rows) == 2
    audit = await AuditEvent.select().where(AuditEvent.subject == str(attempt["public_id"])).run()
    assert {"payment.started", "payment.succeeded", "payment.read"} <= {row["action"] for row in audit}


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("0", "Enter an amount of more than zero."),
        ("-5", "Enter an amount of more than zero."),
        ("10.005", "Enter an amount in whole cents, like 25.50."),
        ("ten", "Enter an amount in dollars and cents, like 25.00."),
        ("", "Enter the amount you want to pay."),
        ("99999999", "You can pay at most"),
    ],
)
async def test_a_bad_amount_comes_back_beside_the_field_with_what_was_typed(portal, browser, amount, message):
    statement = await statement_owing(portal, 5)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client, f"?statement={statement.id}")
        response = await submit(client, form, choice="other", amount=amount)
    assert response.status_code == 422
    assert message in response.text
    assert f'value="{amount}"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert await attempts_of(statement.patient_id) == []


async def test_a_made_up_form_token_is_refused_and_a_new_one_offered(portal, browser):
    statement = await statement_owing(portal, 7)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client)
        response = await submit(client, {**form, "token": "made.up"}, choice="other", amount="5")
    assert response.status_code == 422
    assert "This payment form has expired" in response.text
    assert await attempts_of(statement.patient_id) == []


async def test_a_double_submit_finds_one_attempt_and_one_checkout(portal, browser):
    statement = await statement_owing(portal, 9)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client)
        first = await submit(client, form, choice="other", amount="12.34")
        second = await submit(client, form, choice="other", amount="12.34")
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert len(await attempts_of(statement.patient_id)) == 1


async def test_fifty_concurrent_identical_submits_make_one_ledger_row_and_one_gateway_checkout(portal, browser):
    statement = await statement_owing(portal, 11)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client)
        responses = await asyncio.gather(*(submit(client, form, choice="other", amount="20") for _ in range(50)))
    assert {response.status_code for response in responses} == {303}
    assert len({response.headers["location"] for response in responses}) == 1
    (attempt,) = await attempts_of(statement.patient_id)
    gateway = portal.state["plugin_host"].gateway._adapter
    count = await gateway._store.read(
        lambda db: db.execute(
            "SELECT count(*) FROM checkouts WHERE metadata LIKE ?", (f"%{attempt['public_id']}%",)
        ).fetchone()[0]
    )
    assert count == 1


async def test_a_declined_card_shows_the_gateways_message_and_a_new_attempt_pays(portal, browser):
    statement = await statement_owing(portal, 13)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client, f"?statement={statement.id}")
        started = await submit(client, form, choice="statement")
        declined = await pay_on_hosted_page(client, started.headers["location"], "4000000000000002")
        assert declined.status_code == 200
        assert "declined" in declined.text
        (attempt,) = await attempts_of(statement.patient_id)
        back = await client.get(f"/pay/return/{attempt['public_id']}?cancelled=1")
        assert back.status_code == 200
        assert "Your card was declined." in back.text
        new_token = TOKEN.search(back.text).group(1)
        assert new_token != form["token"]
        retry = await submit(client, {**form, "token": new_token}, choice="statement")
        assert retry.headers["location"] != started.headers["location"]
        paid = await pay_on_hosted_page(client, retry.headers["location"], "4242424242424242")
        receipt = await client.get(paid.headers["location"], follow_redirects=True)
    assert receipt.status_code == 200
    assert "Thank you" in receipt.text
    statuses = sorted(row["status"] for row in await attempts_of(statement.patient_id))
    assert statuses == ["open", "succeeded"]


async def test_three_d_secure_is_followed_and_comes_back(portal, browser):
    statement = await statement_owing(portal, 15)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client)
        started = await submit(client, form, choice="other", amount="30")
        challenged = await pay_on_hosted_page(client, started.headers["location"], "4000002500003155")
        assert challenged.headers["location"].endswith("/authenticate")
        page = await client.get(challenged.headers["location"])
        approved = await client.post(
            challenged.headers["location"], data={"_csrf_token": CSRF.search(page.text).group(1), "outcome": "complete"}
        )
        receipt = await client.get(approved.headers["location"], follow_redirects=True)
    assert receipt.status_code == 200
    assert "$30.00" in receipt.text
    (attempt,) = await attempts_of(statement.patient_id)
    assert attempt["status"] == "succeeded"


async def test_someone_elses_receipt_and_return_are_404(portal, browser):
    statement = await statement_owing(portal, 17)
    other = await statement_owing(portal, 19)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client)
        started = await submit(client, form, choice="other", amount="5")
        paid = await pay_on_hosted_page(client, started.headers["location"], "4242424242424242")
        await client.get(paid.headers["location"])
        (attempt,) = await attempts_of(statement.patient_id)
        assert (await client.get(f"/payments/{attempt['public_id']}")).status_code == 200
    async with browser(portal) as client:
        await sign_in(portal, client, other.patient_id)
        for path in (f"/payments/{attempt['public_id']}", f"/pay/return/{attempt['public_id']}", "/payments/nope"):
            assert (await client.get(path)).status_code == 404, path


async def test_the_receipt_email_is_sent_once_in_the_patients_language(portal, browser):
    statement = await statement_owing(portal, 21)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client)
        started = await submit(client, form, choice="other", amount="7", receipt_email="x@example.org")
        paid = await pay_on_hosted_page(client, started.headers["location"], "4242424242424242")
        await client.get(paid.headers["location"])
    (attempt,) = await attempts_of(statement.patient_id)
    assert attempt["receipt_email"] is None, "only a guest types an address"
    await (
        PaymentAttempt.update({PaymentAttempt.receipt_email: "payer@example.org", PaymentAttempt.language: "es"})
        .where(PaymentAttempt.id == attempt["id"])
        .run()
    )
    host, settings = portal.state["plugin_host"], portal.state["settings"]
    for _ in range(3):
        await jobs.run_once(host, settings)
    notifier = host.notifier._adapter
    sent = [message for message in await notifier.recent() if attempt["reference_number"] in message.text]
    assert len(sent) == 1
    assert sent[0].to == "payer@example.org"
    assert "Gracias" in sent[0].text


async def test_the_statement_shows_the_payment_as_owed_less_until_posted(portal, browser):
    statement = await statement_owing(portal, 23, at_least=3000)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client, f"?statement={statement.id}")
        started = await submit(client, form, choice="other", amount="10")
        paid = await pay_on_hosted_page(client, started.headers["location"], "4242424242424242")
        await client.get(paid.headers["location"])
        form = await pay_form(client, f"?statement={statement.id}")
        too_much = await submit(client, form, choice="other", amount=f"{(statement.balance.amount - 999) / 100:.2f}")
    assert too_much.status_code == 422, "what was just paid is no longer owed, even before the EHR posts it"
    assert "You can pay at most" in too_much.text


async def test_until_the_ehr_acknowledges_it_the_payment_is_received_and_its_posting_waits(portal, browser):
    statement = await statement_owing(portal, 25)
    async with browser(portal) as client:
        await sign_in(portal, client, statement.patient_id)
        form = await pay_form(client)
        started = await submit(client, form, choice="other", amount="3")
        paid = await pay_on_hosted_page(client, started.headers["location"], "4242424242424242")
        receipt = await client.get(paid.headers["location"], follow_redirects=True)
    assert "Received" in receipt.text
    (attempt,) = await attempts_of(statement.patient_id)
    posting = (
        await OutboxMessage.select(OutboxMessage.state, OutboxMessage.kind)
        .where(OutboxMessage.idempotency_key == f"post-payment:{attempt['public_id']}")
        .first()
        .run()
    )
    assert posting == {"state": "pending", "kind": "ehr.post_payment"}
