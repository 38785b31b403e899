"""Statements: the list (newest first, ten a page), one statement whose figures add up, lines grouped
by visit with the rest of a long visit loaded by htmx or by a plain link, codes in words, the PDF,
payments made here, the EHR down (PROMISES.md 15), and one audit row per read (PROMISES.md 8)."""

from __future__ import annotations

import re
import secrets
import uuid
import zlib
from dataclasses import replace
from datetime import date, timedelta
from typing import Any

import carefront_sandbox.hooks
import carefront_x12.hooks
import pytest
from carefront_sdk import hookimpl
from carefront_sdk.adapters import Port
from carefront_sdk.models import Adjustment, ChargeLine, CodeSystem, Money, StatementSummary
from litestar.exceptions import NoRouteMatchFoundException
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.audit.tables import AuditEvent
from portal.billing.dictionary import codes_on, dictionary_for
from portal.payments.tables import PaymentAttempt
from portal.plugin_host import PluginHost
from tests.integration.billing_support import COOKIE_DOMAIN, demo_patients, dollars, fresh, persona, sign_in_as

HTMX = {"HX-Request": "true"}
CHARGE = re.compile(r'<li class="charge" id="line-([^"]+)">')


def inflated(document: bytes) -> bytes:
    """The PDF with its compressed streams inflated: WeasyPrint packs objects into object streams."""
    parts = [document]
    for stream in re.findall(rb"stream\r?\n(.*?)endstream", document, re.S):
        try:
            # decompressobj: it takes the stream's end-of-line before "endstream" without complaint.
            parts.append(zlib.decompressobj().decompress(stream))
        except zlib.error:
            continue  # not deflated (an embedded font's raw data, say): nothing to read in it
    return b"\n".join(parts)


async def audited(action: str, subject: str | None) -> list[dict[str, Any]]:
    where = AuditEvent.action == action
    where &= AuditEvent.subject.is_null() if subject is None else AuditEvent.subject == subject
    return await AuditEvent.select().where(where).run()


async def test_a_statement_shows_its_visits_first_lines_and_adds_up(portal, browser):
    inpatient = persona("200")
    (newest, *_) = await fresh(portal, inpatient.patient_id)
    async with browser(portal) as client:
        await sign_in_as(portal, client, inpatient.patient_id)
        page = await client.get(f"/statements/{newest.id}")
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert len(CHARGE.findall(page.text)) == 5
    assert "Show all 238 lines of this visit" in page.text
    for figure in (newest.total_charged, newest.insurance_paid, newest.adjustments, newest.balance):
        assert dollars(figure) in page.text


async def test_every_personas_statements_add_up_to_their_balance(portal, browser):
    problems = []
    for someone in demo_patients():
        async with browser(portal) as client:
            await sign_in_as(portal, client, someone.patient_id)
            for summary in await fresh(portal, someone.patient_id):
                statement = await portal.state["plugin_host"].ehr.read_statement(summary.id)
                page = await client.get(f"/statements/{summary.id}")
                assert page.status_code == 200, page.text
                share = summary.total_charged - summary.insurance_paid - summary.adjustments
                if share - summary.patient_paid != summary.balance:
                    problems.append(f"{summary.id}: the summary does not add up")
                owed = sum(line.patient_owes.amount for line in statement.lines)
                if owed != share.amount:
                    problems.append(f"{summary.id}: lines owe {owed}, the summary {share.amount}")
                # The page shows each step of the sum: charged, less insurance and adjustments, is
                # the patient's share; less what they paid, the balance.
                shown = re.search(r'<dl class="sums sums-summary">(.*?)</dl>', page.text, re.S).group(1)
                steps = [dollars(m) for m in (summary.total_charged, summary.insurance_paid, summary.adjustments)]
                steps += [dollars(share), dollars(summary.patient_paid), dollars(summary.balance)]
                position = 0
                for step in steps:
                    position = shown.find(step, position)
                    if position < 0:
                        break
                if position < 0:
                    problems.append(f"{summary.id}: the summary does not show {steps} in order")
                visits = re.findall(r"Your share of this visit</dt><dd class=\"total\">([^<]+)</dd>", page.text)
                total = sum(round(float(v.strip("$").replace(",", "")) * 100) for v in visits)
                if total != share.amount:
                    problems.append(f"{summary.id}: the visits' shares add up to {total}, not {share.amount}")
    assert not problems, "\n".join(problems)


async def test_the_list_is_newest_first_ten_a_page(portal, browser, monkeypatch):
    someone = persona("balance")
    real = await fresh(portal, someone.patient_id)
    # The sandbox gives nobody more than nine statements: this patient gets 23, a month apart.
    many = [
        replace(
            real[0],
            id=f"st-paging-{n}",
            issued_on=real[0].issued_on - timedelta(days=30 * n),
            due_on=real[0].due_on - timedelta(days=30 * n),
        )
        for n in range(23)
    ]
    ehr = portal.state["plugin_host"].adapters[Port.EHR]._adapter

    async def list_statements(patient_id: str) -> list[StatementSummary]:
        return list(reversed(many)) if patient_id == someone.patient_id else []

    monkeypatch.setattr(ehr, "list_statements", list_statements)
    async with browser(portal) as client:
        await sign_in_as(portal, client, someone.patient_id)
        first = await client.get("/statements")
        third = await client.get("/statements?page=3")
        beyond = await client.get("/statements?page=4")
        nonsense = await client.get("/statements?page=first")
    assert first.status_code == 200, first.text
    listed = re.findall(r'href="/statements/(st-paging-\d+)"', first.text)
    assert listed == [f"st-paging-{n}" for n in range(10)], "newest first, ten a page"
    assert 'href="/statements?page=2" rel="next"' in first.text
    assert "Page 1 of 3" in first.text
    assert re.findall(r'href="/statements/(st-paging-\d+)"', third.text) == [f"st-paging-{n}" for n in range(20, 23)]
    assert 'href="/statements?page=2" rel="prev"' in third.text
    assert 'rel="next"' not in third.text
    assert beyond.status_code == 404
    assert nonsense.status_code == 400
    # What is due in all is on top; each statement says how it stands.
    assert dollars(Money(real[0].balance.amount * 23)) in first.text
    assert f"Due on {real[0].due_on:%b} {real[0].due_on.day}, {real[0].due_on.year}" in first.text
    assert "Overdue: was due on" in first.text


async def test_a_long_visit_opens_with_htmx_or_a_plain_link(portal, browser):
    inpatient = persona("200")
    (newest, *_) = await fresh(portal, inpatient.patient_id)
    statement = await portal.state["plugin_host"].ehr.read_statement(newest.id)
    (stay,) = statement.visits
    lines = f"/statements/{newest.id}/visits/{stay.id}/lines"
    async with browser(portal) as client:
        await sign_in_as(portal, client, inpatient.patient_id)
        page = await client.get(f"/statements/{newest.id}")
        partial = await client.get(lines, headers=HTMX)
        plain = await client.get(lines)
        unknown_visit = await client.get(f"/statements/{newest.id}/visits/vi-999999/lines", headers=HTMX)
    assert f'href="{lines}#visit-{stay.id}"' in page.text, "the link works without JavaScript"
    assert f'hx-get="{lines}"' in page.text
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert CHARGE.findall(partial.text) == [line.id for line in statement.lines]
    assert "Show all" not in partial.text
    assert plain.status_code == 200
    assert "<html" in plain.text
    assert f'id="visit-{stay.id}"' in plain.text
    assert CHARGE.findall(plain.text) == [line.id for line in statement.lines]
    assert unknown_visit.status_code == 404
    assert len(await audited("statement.read", newest.id)) >= 3


async def test_codes_and_adjustments_are_explained_in_plain_words(portal, browser):
    inpatient = persona("200")
    (newest, *_) = await fresh(portal, inpatient.patient_id)
    statement = await portal.state["plugin_host"].ehr.read_statement(newest.id)
    (stay,) = statement.visits
    async with browser(portal) as client:
        await sign_in_as(portal, client, inpatient.patient_id)
        english = await client.get(f"/statements/{newest.id}/visits/{stay.id}/lines", headers=HTMX)
        client.cookies.set("lang", "es", domain=COOKIE_DOMAIN)
        spanish = await client.get(f"/statements/{newest.id}/visits/{stay.id}/lines")
    room = next(line for line in statement.lines if line.code == "0121")
    assert "Semi-private hospital room, per day" in english.text
    assert "Code REV 0121" in english.text
    groups = {adjustment.group_code for line in statement.lines for adjustment in line.adjustments}
    assert "CO" in groups
    assert "Contractual adjustment: you don&#39;t owe this" in english.text
    assert '<html lang="es">' in spanish.text
    assert "Habitación semiprivada del hospital, por día" in spanish.text
    assert "Ajuste contractual: usted no debe esto" in spanish.text
    assert room.description not in spanish.text
    try:
        ask = portal.route_reverse("new-question")
    except NoRouteMatchFoundException:
        pytest.skip("the billing questions form (route new-question) is not installed")
    assert f'href="{ask}?statement={newest.id}&amp;line={room.id}"' in english.text


async def test_the_pdf_is_the_whole_statement_tagged_for_accessibility(portal, browser):
    inpatient = persona("200")
    (newest, *_) = await fresh(portal, inpatient.patient_id)
    async with browser(portal) as client:
        await sign_in_as(portal, client, inpatient.patient_id)
        answer = await client.get(f"/statements/{newest.id}/pdf")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == f'attachment; filename="statement-{newest.issued_on}.pdf"'
    assert answer.headers["cache-control"] == "no-store"
    document = answer.content
    assert document.startswith(b"%PDF-")
    objects = inflated(document)
    assert b"/StructTreeRoot" in objects
    assert b"/MarkInfo" in objects
    assert b"/Lang (en)" in objects
    assert re.search(rb"/Title \(Statement of [^)]+\)", objects)
    assert len(re.findall(rb"/S /LI\b", objects)) >= 238, "every line of the stay is in the PDF, tagged as a list item"
    assert len(await audited("statement.pdf", newest.id)) == 1


async def test_payments_made_here_show_until_posted_and_come_off_what_is_left(portal, browser):
    someone = persona("balance")
    (newest, *_) = await fresh(portal, someone.patient_id)
    now = portal.state["plugin_host"].clock()
    paid = Money(2500, newest.balance.currency)
    attempt = PaymentAttempt(
        public_id=uuid.uuid4(),
        idempotency_key=f"statements-test-{secrets.token_hex(8)}",
        reference_number=secrets.token_hex(6).upper(),
        patient_id=someone.patient_id,
        statement_id=newest.id,
        amount=paid.amount,
        currency=paid.currency,
        status="succeeded",
        payer_kind="account",
        method_summary="Visa ending 4242",
        created_at=now,
    )
    await attempt.save().run()
    try:
        async with browser(portal) as client:
            await sign_in_as(portal, client, someone.patient_id)
            page = await client.get(f"/statements/{newest.id}")
            listed = await client.get("/statements")
    finally:
        await PaymentAttempt.delete().where(PaymentAttempt.id == attempt.id).run()
    assert "Payments made here" in page.text
    assert "Being posted to your account" in page.text
    left = dollars(newest.balance - paid)
    assert f'Left to pay</dt><dd class="total">{left}' in page.text
    assert left in listed.text


async def test_with_the_ehr_down_pages_show_the_last_copy_or_a_503(portal, clock, browser):
    someone = persona("balance")
    older, oldest = await fresh(portal, someone.patient_id)
    async with browser(portal) as client:
        await sign_in_as(portal, client, someone.patient_id)
        assert (await client.get(f"/statements/{older.id}")).status_code == 200
        assert (await client.get("/statements")).status_code == 200
        breaker = portal.state["plugin_host"].adapters[Port.EHR].breaker
        breaker.failures, breaker.opened_at = breaker.threshold, breaker.clock()
        clock.now += timedelta(minutes=5)
        stale = await client.get(f"/statements/{older.id}")
        stale_list = await client.get("/statements")
        never_read = await client.get(f"/statements/{oldest.id}")
        pdf = await client.get(f"/statements/{older.id}/pdf")
    notice = "systems are not answering right now"
    assert stale.status_code == 200
    assert notice in stale.text
    assert stale_list.status_code == 200
    assert notice in stale_list.text
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF-")
    assert never_read.status_code == 503
    assert "This service is not answering right now" in never_read.text


async def test_someone_elses_statement_is_a_missing_one(portal, browser):
    mine, theirs = persona("balance"), persona("200")
    (their_statement, *_) = await fresh(portal, theirs.patient_id)
    stay = (await portal.state["plugin_host"].ehr.read_statement(their_statement.id)).visits[0]
    async with browser(portal) as client:
        await sign_in_as(portal, client, mine.patient_id)
        for path in ("", f"/visits/{stay.id}/lines", "/pdf"):
            other = await client.get(f"/statements/{their_statement.id}{path}")
            missing = await client.get(f"/statements/st-999999{path}")
            assert other.status_code == missing.status_code == 404, path
            # The language switch returns to the page asked for: the only difference allowed.
            assert other.text.replace(their_statement.id, "?") == missing.text.replace("st-999999", "?")


async def test_a_guest_sees_their_one_statement_with_the_pay_button(portal, browser):
    someone, other = persona("balance"), persona("200")
    (newest, *_) = await fresh(portal, someone.patient_id)
    (not_theirs, *_) = await fresh(portal, other.patient_id)
    statement = await portal.state["plugin_host"].ehr.read_statement(newest.id)
    async with browser(portal) as client:
        key = secrets.token_hex(32)
        session = {"realm": "guest", "acting_for": someone.patient_id, "access": "guest", "statement_id": newest.id}
        await portal.stores.get("sessions").set(key, encode_json(session), expires_in=900)
        client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
        page = await client.get("/guest")
        lines = await client.get(f"/statements/{newest.id}/visits/{statement.visits[0].id}/lines", headers=HTMX)
        pdf = await client.get(f"/statements/{newest.id}/pdf")
        other_statement = await client.get(f"/statements/{not_theirs.id}")
        listing = await client.get("/statements")
    assert page.status_code == 200
    assert CHARGE.findall(page.text)[:1] == [statement.lines[0].id]
    assert f'href="/pay?statement={newest.id}"' in page.text
    assert 'href="/statements"' not in page.text, "a guest has no statement list"
    assert lines.status_code == 200
    assert pdf.status_code == 200
    assert other_statement.status_code == 404
    assert listing.status_code == 403


class Glossary:
    """A hospital's own plugin: it describes one CPT code better than anyone, and one CARC."""

    @hookimpl(tryfirst=True)
    def carefront_code_descriptions(self, code_system, codes, language):
        if language != "en":
            return None
        own = {CodeSystem.REV: {"0121": "Your hospital room"}, CodeSystem.CARC: {"45": "Our contract price"}}
        return own.get(code_system)


def line(code: str, system: str, *adjustments: Adjustment) -> ChargeLine:
    usd = Money(10_000)
    return ChargeLine(
        "ln-1",
        "vi-1",
        date(2025, 1, 12),
        code,
        system,
        "What the EHR calls it",
        "Dr Who",
        1,
        usd,
        usd,
        adjustments,
        Money(0),
    )


def test_the_dictionary_merges_plugins_over_the_baseline_and_falls_back_to_the_ehr(settings):
    plugins = [("sandbox", carefront_sandbox.hooks), ("x12", carefront_x12.hooks), ("glossary", Glossary())]
    host = PluginHost.load(replace(settings, ports={Port.CLEARINGHOUSE: "sandbox"}), plugins=plugins)
    asked = []
    original = host.code_descriptions

    def counting(wanted, language):
        asked.append(dict(wanted))
        return original(wanted, language)

    host.code_descriptions = counting  # type: ignore[method-assign]
    contractual = Adjustment(Money(500), "CO", "45", ("N381",))
    deductible = Adjustment(Money(700), "PR", "1")
    odd = Adjustment(Money(100), "OA", "999", ("ZZ9",))
    lines = [
        line("0121", CodeSystem.REV, contractual),
        line("85025", CodeSystem.CPT, deductible),
        line("LOCAL1", "HOSP", odd),
    ]
    english = dictionary_for(host, lines, "en", lambda text: text)
    assert len(asked) == 1, "one question to the plugin host per page"
    assert asked[0] == codes_on(lines)
    assert english.line(lines[0]) == "Your hospital room", "a tryfirst plugin wins"
    assert english.line(lines[1]) == "Complete blood count (CBC)", "the sandbox's vocabulary"
    assert english.line(lines[2]) == "What the EHR calls it", "nobody knows it: the EHR's own words"
    assert english.reason("45") == "Our contract price"
    assert english.reason("1") == "This amount went toward your deductible, so you pay it.", "x12 over the baseline"
    assert english.remark("N381").startswith("The ")
    assert english.reason("999") == "Adjustment reason 999", "nobody describes it: the code itself"
    assert english.remark("ZZ9") == "Remark ZZ9"
    assert english.group("XX") == "XX"
    assert english.group("OA")

    spanish = dictionary_for(
        host,
        lines,
        "es",
        lambda text: {"Your deductible: what you pay each year before your plan starts to pay.": "Su deducible"}.get(
            text, text
        ),
    )
    assert spanish.line(lines[1]) == "Hemograma completo"
    assert spanish.reason("1") == "Su deducible", "x12 speaks English only: the portal's translated baseline"
    assert spanish.line(lines[2]) == "What the EHR calls it"
