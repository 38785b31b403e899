"""Acting as a patient (PROMISES.md 3, 7, 8): a reason and a verified caller, a banner on every page
and partial with a countdown, refusals of what only the patient may change, a new session key at the
start and the end, the time limit, and the patient seeing who did it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from carefront_sdk.adapters import Port
from carefront_sdk.errors import Unavailable

from portal.audit.tables import ActingSession, AuditEvent
from portal.identity import accounts
from portal.identity.acting_for import patient_key
from portal.snapshots.service import forget
from tests.integration.console_support import (
    act_as,
    as_patient,
    as_staff,
    patient_account,
    post,
    session_key,
    staff_account,
)

PATIENT = "pt-11"


async def test_acting_needs_a_reason_and_the_verified_caller(portal, clock, browser):
    await patient_account(PATIENT, clock.now)
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        no_reason = await act_as(client, PATIENT, reason="")
        unverified = await act_as(client, PATIENT, checks=["name", "birth_date"])
        other_without_words = await act_as(client, PATIENT, reason="other", note=" ")
        assert no_reason.status_code == unverified.status_code == other_without_words.status_code == 422
        assert "Choose why you are acting as the patient." in no_reason.text
        assert "Verify the caller" in unverified.text
        assert "Say why, in a few words." in other_without_words.text
        assert (await client.get("/home")).status_code == 403  # still only staff


async def test_acting_shows_the_patient_s_pages_with_a_banner_and_a_countdown(portal, clock, browser):
    patient = await patient_account(PATIENT, clock.now)
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        before = session_key(client)
        started = await act_as(client, PATIENT)
        assert started.status_code == 303
        assert started.headers["location"] == "/home"
        during = session_key(client)
        assert during != before  # a new key at the start (PROMISES.md 3)
        name = (await portal.state["plugin_host"].ehr.read_patient(PATIENT)).given_name
        for path in ("/questions", "/questions/new", "/account", "/account/access"):
            page = await client.get(path)
            assert page.status_code == 200, path
            assert 'class="banner banner-acting"' in page.text, path
            assert name in page.text, path
            assert "30 minutes left" in page.text, path
        clock.now += timedelta(minutes=12)
        assert "18 minutes left" in (await client.get("/questions")).text
        # The account page is the patient's own.
        assert patient["email"] in (await client.get("/account")).text


@pytest.mark.parametrize("encoding", ["identity", "br", "gzip"])
async def test_every_htmx_partial_carries_the_banner_compressed_or_not(portal, clock, browser, encoding):
    await patient_account(PATIENT, clock.now)
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        await act_as(client, PATIENT)
        asked = await post(
            client,
            "/questions/new",
            {"category": "other", "message": "Why two bills?", "reply_by": "portal"},
            "/questions/new",
        )
        path = asked.headers["location"].split("?")[0]
        partial = await post(
            client,
            f"{path}/reply",
            {"message": "And one more thing"},
            path,
            **{"HX-Request": "true", "Accept-Encoding": encoding},
        )
        assert partial.status_code == 200
        if encoding != "identity":
            assert partial.headers["content-encoding"] == encoding
            assert int(partial.headers["content-length"]) < len(partial.content), "the body on the wire is compressed"
        assert "<html" not in partial.text
        assert "And one more thing" in partial.text
        assert 'id="acting-status" hx-swap-oob="true"' in partial.text
        assert "30 minutes left" in partial.text
        assert 'id="acting-countdown" data-until="' in partial.text


async def test_the_banner_asks_the_ehr_for_the_name_at_most_once_in_thirty_seconds(portal, clock, browser, monkeypatch):
    await patient_account(PATIENT, clock.now)
    staff = await staff_account(clock.now)
    ehr = portal.state["plugin_host"].adapters[Port.EHR]._adapter
    name = (await ehr.read_patient(PATIENT)).given_name
    read_patient = ehr.read_patient
    asked: list[str] = []

    async def counting(patient_id: str):
        asked.append(patient_id)
        return await read_patient(patient_id)

    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        await act_as(client, PATIENT)
        await forget(patient_key(PATIENT))  # whatever another test left: this one starts with no copy
        monkeypatch.setattr(ehr, "read_patient", counting)

        async def reads_for(path: str, **headers: str) -> int:
            before = len(asked)
            answer = await client.get(path, headers=headers)
            assert answer.status_code == 200, path
            assert name in answer.text, path
            return len(asked) - before

        assert await reads_for("/questions") == 1
        assert await reads_for("/questions") == 0
        assert await reads_for("/account") == 0
        assert await reads_for("/questions", **{"HX-Request": "true"}) == 0
        clock.now += timedelta(seconds=31)
        assert await reads_for("/questions") == 1, "a copy older than 30 seconds is read again"
        assert await reads_for("/questions") == 0


async def test_with_the_ehr_down_the_banner_names_the_patient_from_the_copy(portal, clock, browser, monkeypatch):
    await patient_account(PATIENT, clock.now)
    staff = await staff_account(clock.now)
    ehr = portal.state["plugin_host"].adapters[Port.EHR]._adapter
    name = (await ehr.read_patient(PATIENT)).given_name

    async def down(patient_id: str):
        raise Unavailable("the EHR is not answering")

    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        await act_as(client, PATIENT)
        assert name in (await client.get("/questions")).text
        monkeypatch.setattr(ehr, "read_patient", down)
        clock.now += timedelta(minutes=5)
        stale = await client.get("/questions")
        assert stale.status_code == 200
        assert f"You are acting as {name}" in stale.text
        await forget(patient_key(PATIENT))
        nothing_kept = await client.get("/questions")
        assert nothing_kept.status_code == 200
        assert "You are acting as a patient." in nothing_kept.text


async def test_while_acting_credentials_contacts_and_cards_are_refused(portal, clock, browser):
    patient = await patient_account(PATIENT, clock.now)
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        await act_as(client, PATIENT)
        for path in ("/account/email", "/account/phone", "/account/password", "/account/confirm", "/switch"):
            assert (await client.get(path)).status_code == 403, path
        refused = await post(client, "/account/email", {"email": "someone-else@example.org"}, "/account")
        assert refused.status_code == 403
        security = await post(client, "/account/security/two-step/start", {}, "/account")
        assert security.status_code == 403
        others = await post(client, "/account/sessions/end-others", {}, "/account")
        assert others.status_code == 403
        assert "Not while acting" in others.text
        pay = await client.get("/pay")
        assert pay.status_code == 403, "the pay page takes no card while staff act as the patient"
    assert (await accounts.find(str(patient["public_id"])))["email"] == patient["email"]


async def test_ending_rotates_the_session_and_returns_to_the_console(portal, clock, browser):
    await patient_account(PATIENT, clock.now)
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        await act_as(client, PATIENT)
        during = session_key(client)
        ended = await post(client, "/console/acting/end", {}, "/questions")
        assert ended.status_code == 303
        assert ended.headers["location"] == f"/console/patients/{PATIENT}?ended=ended"
        assert session_key(client) != during  # a new key at the end (PROMISES.md 3)
        assert (await client.get("/questions")).status_code == 403
        back = await client.get(ended.headers["location"])
        assert back.status_code == 200
        assert "banner-acting" not in back.text
    record = await ActingSession.select().where(ActingSession.staff_account == str(staff["public_id"])).first().run()
    assert record["ended_how"] == "ended"


async def test_acting_ends_by_itself_after_thirty_minutes(portal, clock, browser):
    await patient_account(PATIENT, clock.now)
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        await act_as(client, PATIENT)
        during = session_key(client)
        for step in (timedelta(minutes=14), timedelta(minutes=14), timedelta(minutes=1, seconds=59)):
            clock.now += step  # a request now and then, or the session would end idle (15 minutes)
            assert (await client.get("/questions")).status_code == 200
        clock.now += timedelta(seconds=1)
        expired = await client.get("/questions")
        assert expired.status_code == 303
        assert expired.headers["location"] == f"/console/patients/{PATIENT}?ended=expired"
        assert session_key(client) != during
        back = await client.get(expired.headers["location"])
        assert back.status_code == 200
        assert "ran out" in back.text
        htmx_after = await client.get("/questions", headers={"HX-Request": "true"})
        assert htmx_after.status_code == 403  # staff again, and nothing of the patient's
    rows = (
        await AuditEvent.select()
        .where((AuditEvent.actor == f"account:{staff['public_id']}") & (AuditEvent.action == "acting.end"))
        .run()
    )
    assert [row["outcome"] for row in rows] == ["expired"]


async def test_staff_accounts_cannot_be_acted_as(portal, clock, browser):
    colleague = await staff_account(clock.now)
    await accounts.update(str(colleague["public_id"]), patient_id="pt-12")
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        refused = await act_as(client, "pt-12")
        assert refused.status_code == 403
        assert "Staff accounts cannot be acted as." in refused.text
        assert (await client.get("/home")).status_code == 403


async def test_only_representatives_and_supervisors_act(portal, clock, browser):
    await patient_account(PATIENT, clock.now)
    administrator = await staff_account(clock.now, role="administrator")
    patient = await patient_account("pt-13", clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, administrator, clock.now)
        assert (await client.get(f"/console/patients/{PATIENT}")).status_code == 403
    async with browser(portal) as client:
        await as_patient(portal, client, patient, clock.now)
        assert (await client.get(f"/console/patients/{PATIENT}")).status_code == 403


async def test_every_action_while_acting_is_audited_as_the_staff_member_acting_as_the_patient(portal, clock, browser):
    await patient_account(PATIENT, clock.now)
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        await act_as(client, PATIENT)
        await client.get("/questions")
    rows = await AuditEvent.select().where(AuditEvent.actor == f"account:{staff['public_id']}").run()
    by_action = {row["action"]: row for row in rows}
    assert by_action["acting.start"]["acting_as"] == PATIENT
    assert by_action["question.list"]["acting_as"] == PATIENT
    assert by_action["question.list"]["actor_role"] == "representative"


async def test_the_patient_sees_who_accessed_the_account_and_why(portal, clock, browser):
    patient = await patient_account("pt-14", clock.now)
    staff = await staff_account(clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, staff, clock.now)
        await client.get("/console/patients/pt-14")
        await act_as(client, "pt-14", reason="caller_payment")
    async with browser(portal) as client:
        await as_patient(portal, client, patient, clock.now)
        page = await client.get("/account/access")
        assert page.status_code == 200
        assert f"Fatima {staff['family_name']}" in page.text
        assert "Representative" in page.text
        assert "The patient called to pay or set up a plan" in page.text
        assert "Looked up your record" in page.text
        assert "/account/access" in (await client.get("/account")).text
