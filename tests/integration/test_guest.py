"""Paying without an account: a statement code and the patient's birth date open that one bill, with
tries limited per address and per code, and the same answer for every miss (PROMISES.md 5)."""

from __future__ import annotations

import re
import secrets
from datetime import date, timedelta

import httpx
from carefront_sandbox.identifiers import format_id
from carefront_sdk.models import StatementSummary
from litestar import Litestar
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.audit.tables import AuditEvent
from portal.identity.tables import WebSession

CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def bill(app: Litestar, patient_index: int) -> tuple[StatementSummary, date]:
    """The newest statement of a sandbox patient, and the patient's birth date."""
    ehr = app.state["plugin_host"].ehr
    patient = await ehr.read_patient(format_id("pt", patient_index))
    statements = await ehr.list_statements(patient.id)
    assert statements, f"sandbox patient {patient_index} has no statement"
    return statements[0], patient.birth_date


def bill_form(code: str, born: date) -> dict[str, str]:
    return {
        "statement_code": code,
        "birth_month": str(born.month),
        "birth_day": str(born.day),
        "birth_year": str(born.year),
    }


async def find_bill(client: httpx.AsyncClient, code: str, born: date) -> httpx.Response:
    page = await client.get("/pay-as-guest")
    assert page.status_code == 200
    match = CSRF_INPUT.search(page.text)
    assert match
    return await client.post("/pay-as-guest", data={"_csrf_token": match.group(1), **bill_form(code, born)})


def notice(response: httpx.Response) -> str:
    match = re.search(r'<div class="notice notice-warning" role="alert">(.*?)</div>', response.text, re.S)
    assert match, "no notice on the page"
    return match.group(1)


async def test_the_code_and_the_right_birth_date_open_that_bill(portal, browser):
    statement, born = await bill(portal, 21)
    async with browser(portal) as client:
        response = await find_bill(client, statement.statement_code.lower(), born)
        assert response.status_code == 303
        assert response.headers["location"] == "/guest"
        page = await client.get("/guest")
    assert page.status_code == 200
    assert statement.statement_code in page.text
    assert f"${statement.balance.amount / 100:,.2f}" in page.text
    assert str(statement.issued_on.year) in page.text
    assert portal.state["settings"].hospital.billing_phone in page.text
    (session,) = await WebSession.select().where(WebSession.key == client.cookies[SESSION_COOKIE]).run()
    data = bytes(session["data"]).decode()
    assert '"realm":"guest"' in data
    assert f'"statement_id":"{statement.id}"' in data
    assert f'"acting_for":"{statement.patient_id}"' in data
    opened = AuditEvent.select().where((AuditEvent.action == "guest.opened") & (AuditEvent.subject == statement.id))
    (row,) = await opened.run()
    assert (row["outcome"], row["acting_as"]) == ("succeeded", statement.patient_id)
    assert statement.statement_code not in str(row)


async def test_a_wrong_birth_date_and_an_unknown_code_get_the_same_answer(portal, browser):
    statement, born = await bill(portal, 22)
    async with browser(portal) as client:
        wrong_birth_date = await find_bill(client, statement.statement_code, born - timedelta(days=1))
        unknown_code = await find_bill(client, "ZZZZ" + secrets.token_hex(3).upper(), born)
        assert (await client.get("/guest", follow_redirects=False)).status_code != 200
    assert wrong_birth_date.status_code == unknown_code.status_code == 422
    assert notice(wrong_birth_date) == notice(unknown_code)
    assert portal.state["settings"].hospital.billing_phone in notice(unknown_code)
    assert statement.statement_code in wrong_birth_date.text, "the form keeps what was typed"
    assert SESSION_COOKIE not in wrong_birth_date.headers.get("set-cookie", "")


async def test_the_form_says_what_is_missing_beside_each_field(portal, browser):
    async with browser(portal) as client:
        page = await client.get("/pay-as-guest")
        token = CSRF_INPUT.search(page.text).group(1)
        response = await client.post(
            "/pay-as-guest", data={"_csrf_token": token, "statement_code": " - ", "birth_year": "85"}
        )
    assert response.status_code == 422
    assert "Enter the statement code printed on your bill." in response.text
    assert "Enter the date of birth as numbers, with a four-digit year." in response.text
    assert 'aria-invalid="true"' in response.text


async def test_tries_are_limited_per_statement_code_from_any_address(portal, browser):
    statement, born = await bill(portal, 23)
    for attempt in range(5):
        async with browser(portal) as client:
            wrong = await find_bill(client, statement.statement_code, born.replace(year=born.year - 1 - attempt))
            assert wrong.status_code == 422
    async with browser(portal) as client:
        throttled = await find_bill(client, statement.statement_code, born)
    assert throttled.status_code == 429, "even the right birth date waits once the code is locked"
    assert int(throttled.headers["retry-after"]) > 0
    assert "Too many tries" in throttled.text


async def test_tries_are_limited_per_address_across_codes(portal, browser):
    statement, born = await bill(portal, 24)
    async with browser(portal) as client:
        for _ in range(20):
            missed = await find_bill(client, "NOPE" + secrets.token_hex(3).upper(), born)
            assert missed.status_code == 422
        throttled = await find_bill(client, statement.statement_code, born)
    assert throttled.status_code == 429


async def test_a_throttled_code_opens_again_after_the_window(portal, clock, browser):
    statement, born = await bill(portal, 25)
    async with browser(portal) as client:
        for attempt in range(6):
            await find_bill(client, statement.statement_code, born.replace(year=born.year - 1 - attempt))
        assert (await find_bill(client, statement.statement_code, born)).status_code == 429
        clock.now += timedelta(minutes=16)
        assert (await find_bill(client, statement.statement_code, born)).status_code == 303


async def test_a_guest_sees_no_patient_page(portal, browser):
    statement, born = await bill(portal, 26)
    async with browser(portal) as client:
        assert (await find_bill(client, statement.statement_code, born)).status_code == 303
        for name in ("home", "account", "account-proxies", "switch", "add-minor", "invite-proxy"):
            path = portal.route_reverse(name)
            response = await client.get(path, follow_redirects=False)
            assert response.status_code == 403, f"a guest opened {path}"
        assert (await client.get("/guest")).status_code == 200, "and stays a guest"


async def test_a_guest_session_ends_after_fifteen_idle_minutes(portal, clock, browser):
    statement, born = await bill(portal, 27)
    async with browser(portal) as client:
        assert (await find_bill(client, statement.statement_code, born)).status_code == 303
        clock.now += timedelta(minutes=14)
        assert (await client.get("/guest")).status_code == 200
        clock.now += timedelta(minutes=16)
        gone = await client.get("/guest", follow_redirects=False)
    assert gone.status_code == 303, "signed out: to the way in"


async def test_signing_out_ends_the_guest_session(portal, browser):
    statement, born = await bill(portal, 28)
    async with browser(portal) as client:
        assert (await find_bill(client, statement.statement_code, born)).status_code == 303
        page = await client.get("/guest")
        token = CSRF_INPUT.search(page.text).group(1)
        closed = await client.post("/sign-out", data={"_csrf_token": token})
        assert closed.status_code == 303
        assert (await client.get("/guest", follow_redirects=False)).status_code == 303


async def test_a_patient_session_is_not_a_guest(portal, browser):
    async with browser(portal) as client:
        key = secrets.token_hex(32)
        session = {"account_id": "00000000-0000-4000-8000-000000000000", "realm": "patient", "access": "self"}
        await portal.stores.get("sessions").set(key, encode_json(session), expires_in=900)
        client.cookies.set(SESSION_COOKIE, key, domain="testserver.local")
        assert (await client.get("/guest")).status_code == 403
