"""The home page: what is due and by when, with a Pay button, from sections that each domain adds
(portal.home.sections); one section failing or slow leaves the rest of the page intact."""

from __future__ import annotations

import asyncio

from carefront_sdk.adapters import Port

from portal.home import page, sections
from portal.home.sections import HomeSection, SectionSource
from tests.integration.test_statements import dollars, fresh, persona, sign_in_as


async def test_home_shows_what_is_due_by_when_with_a_pay_button(portal, browser):
    someone = persona("balance")
    summaries = await fresh(portal, someone.patient_id)
    owing = [summary for summary in summaries if summary.balance.amount > 0]
    async with browser(portal) as client:
        await sign_in_as(portal, client, someone.patient_id)
        home = await client.get("/home")
    assert home.status_code == 200
    assert "Welcome, Stella" in home.text
    assert "Your bills" in home.text
    assert dollars(sum((summary.balance for summary in owing[1:]), owing[0].balance)) in home.text
    earliest = min(summary.due_on for summary in owing)
    assert f"{earliest:%b} {earliest.day}, {earliest.year}" in home.text
    assert 'href="/pay"' in home.text
    assert 'href="/statements"' in home.text
    assert "Account settings" in home.text, "the account card stays"


async def test_with_the_ehr_down_and_no_copy_the_bills_section_says_so_and_the_rest_renders(portal, browser):
    someone = persona("plan")
    await fresh(portal, someone.patient_id)
    breaker = portal.state["plugin_host"].adapters[Port.EHR].breaker
    breaker.failures, breaker.opened_at = breaker.threshold, breaker.clock()
    async with browser(portal) as client:
        await sign_in_as(portal, client, someone.patient_id)
        home = await client.get("/home")
    assert home.status_code == 200
    assert "We can't show your bills right now" in home.text
    assert "Welcome, Stella" in home.text
    assert "Account settings" in home.text


async def test_a_failing_or_slow_section_does_not_take_the_others_down(portal, browser, monkeypatch):
    async def broken(request, viewer, plugin_host, now):
        raise RuntimeError("a bug in one domain")

    async def slow(request, viewer, plugin_host, now):
        await asyncio.sleep(60)
        return HomeSection("billing/home_section.html")

    monkeypatch.setattr(sections, "SECTION_SECONDS", 0.2)
    monkeypatch.setattr(
        page,
        "HOME_SECTIONS",
        [
            SectionSource(broken, "Payment plans are resting", 30),
            SectionSource(slow, "Appointments are late", 20),
            *page.HOME_SECTIONS,
        ],
    )
    someone = persona("balance")
    await fresh(portal, someone.patient_id)
    async with browser(portal) as client:
        await sign_in_as(portal, client, someone.patient_id)
        home = await client.get("/home")
    assert home.status_code == 200
    bills, late, resting = (home.text.find(text) for text in ("Your bills", "Appointments are late", "Payment plans"))
    assert -1 < bills < late < resting, "each section in its order, the failing ones in their place"
