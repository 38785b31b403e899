"""Proxies: a parent adds a child the EHR lists her as guardian of, a patient invites a caregiver or a
billing delegate, a proxy switches between the people they act for, and revoking ends access on the
proxy's very next request."""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import carefront_sandbox.hooks
import httpx
import pytest
from asgi_lifespan import LifespanManager
from carefront_sandbox.identifiers import format_id
from carefront_sandbox.notifier import outbox
from carefront_sdk import hookimpl
from carefront_sdk.models import Patient, ProxyAccess, RelatedPerson
from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.response import Template
from litestar.serialization import encode_json

from portal.access import patients_only
from portal.app import SESSION_COOKIE, create_app
from portal.audit.tables import AuditEvent
from portal.identity import accounts, proxies
from portal.identity.acting_for import acting_for_allowed, clinical_access, patient_key
from portal.identity.passwords import hash_password
from portal.identity.sessions import Access, Viewer
from portal.identity.tables import ProxyGrant, ProxyInvitation
from portal.snapshots.service import forget

PASSWORD = "lantern orbit mossy kettle"
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
INVITATION_CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")


class SharedPages:
    """Two patient pages as later issues will build them: one for bills, one clinical."""

    @hookimpl
    def carefront_routes(self):
        shown_to = {"viewer": Provide(acting_for_allowed)}

        @get("/-/test/bills", guards=[patients_only], dependencies=shown_to)
        async def bills(viewer: NamedDependency[Viewer]) -> Template:
            return Template(
                template_str='{% include "identity/proxies/acting_banner.html" %}<p>bills of {{ viewer.acting_for }}</p>',
                context={"viewer": viewer},
            )

        @get("/-/test/appointments", guards=[patients_only, clinical_access], dependencies=shown_to)
        async def appointments(viewer: NamedDependency[Viewer]) -> Template:
            return Template(template_str="<p>appointments of {{ viewer.acting_for }}</p>", context={"viewer": viewer})

        return [bills, appointments]


@pytest.fixture
async def portal(settings, clock) -> AsyncIterator[Litestar]:
    application = create_app(
        settings, plugins=[("sandbox", carefront_sandbox.hooks), ("shared-pages", SharedPages())], clock=clock
    )
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@dataclass(frozen=True)
class Family:
    """The sandbox's parent persona and her child, whose related persons list her as guardian."""

    parent: Patient
    child: Patient


async def family(app: Litestar) -> Family:
    ehr = app.state["plugin_host"].ehr
    guarantor = next(persona for persona in app.state["plugin_host"].demo_personas() if persona.role == "guarantor")
    child = await ehr.read_patient(guarantor.patient_id)
    related = await ehr.list_related_persons(child.id)
    parent_id = next(person.patient_id_of_proxy for person in related if person.access is ProxyAccess.GUARDIAN)
    return Family(await ehr.read_patient(parent_id), child)


async def sandbox_patient(app: Litestar, index: int) -> Patient:
    """A sandbox patient other than the personas (the first five)."""
    return await app.state["plugin_host"].ehr.read_patient(format_id("pt", index))


async def account_for(patient: Patient | None, now: datetime, *, language: str = "en") -> dict[str, Any]:
    """The patient's account (made here unless another test made it), or a proxy's account with no patient."""
    if patient is not None and (existing := await accounts.find_by_patient(patient.id)) is not None:
        return existing
    tag = secrets.token_hex(5)
    return await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"proxy-{tag}@example.org",
        email_verified_at=now,
        password_hash=hash_password(PASSWORD),
        given_name=patient.given_name if patient else "Robin",
        family_name=patient.family_name if patient else f"Helper{tag}",
        patient_id=patient.id if patient else None,
        language=language,
    )


async def sign_in(app: Litestar, client: httpx.AsyncClient, account: dict[str, Any], **values: str | None) -> None:
    """A patient session as signing_in.complete leaves it, with ``values`` on top."""
    key = secrets.token_hex(32)
    data = {
        "account_id": str(account["public_id"]),
        "realm": "patient",
        "acting_for": account["patient_id"],
        "access": "self" if account["patient_id"] else None,
        **values,
    }
    session = {name: value for name, value in data.items() if value is not None}
    await app.stores.get("sessions").set(key, encode_json(session), expires_in=15 * 60)
    client.cookies.set(SESSION_COOKIE, key, domain="testserver.local")


async def csrf(client: httpx.AsyncClient, path: str = "/") -> str:
    match = CSRF_INPUT.search((await client.get(path)).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


async def post(client: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    return await client.post(path, data={"_csrf_token": await csrf(client), **fields})


def child_form(child: Patient, **changes: str) -> dict[str, str]:
    return {
        "given_name": child.given_name,
        "family_name": child.family_name,
        "birth_month": str(child.birth_date.month),
        "birth_day": str(child.birth_date.day),
        "birth_year": str(child.birth_date.year),
        "identifier_kind": "mrn",
        "identifier": child.mrn,
        **changes,
    }


async def live_grants(proxy: dict[str, Any], patient_id: str) -> list[dict[str, Any]]:
    return (
        await ProxyGrant.select()
        .where(
            (ProxyGrant.proxy == proxy["id"]) & (ProxyGrant.patient_id == patient_id) & ProxyGrant.revoked_at.is_null()
        )
        .run()
    )


async def invitation_code(email: str) -> str:
    messages = [message for message in await outbox() or [] if message.to == email]
    assert messages, f"no invitation was sent to {email}"
    match = INVITATION_CODE.search(messages[0].text)
    assert match, messages[0].text
    return match.group(0)


def notice(response: httpx.Response) -> str:
    match = re.search(r'<div class="notice notice-warning" role="alert">(.*?)</div>', response.text, re.S)
    assert match, "no notice on the page"
    return match.group(1)


# --- Guardians ------------------------------------------------------------------------------------


async def test_a_parent_adds_her_child_whom_the_ehr_lists_her_as_guardian_of(portal, clock, browser):
    people = await family(portal)
    parent = await account_for(people.parent, clock())
    async with browser(portal) as client:
        await sign_in(portal, client, parent)
        form = await client.get("/account/proxies/add-minor")
        assert form.status_code == 200
        response = await post(client, "/account/proxies/add-minor", **child_form(people.child))
        assert response.status_code == 303
        assert response.headers["location"] == "/switch"
        (grant,) = await live_grants(parent, people.child.id)
        assert (grant["access"], grant["source"]) == ("guardian", "ehr")

        again = await post(
            client,
            "/account/proxies/add-minor",
            **child_form(
                people.child,
                identifier_kind="statement",
                identifier=(await portal.state["plugin_host"].ehr.list_statements(people.child.id))[0].statement_code,
            ),
        )
        assert again.status_code == 303
        assert await live_grants(parent, people.child.id) == [grant], "adding the same child twice changes nothing"

        switch = await client.get("/switch")
        assert switch.status_code == 200
        assert f"{people.child.given_name} {people.child.family_name}" in switch.text
        assert "You are their parent or guardian" in switch.text


async def test_a_child_the_ehr_does_not_link_to_the_account_holder_gets_the_neutral_answer(portal, clock, browser):
    people = await family(portal)
    stranger = await account_for(await sandbox_patient(portal, 11), clock())
    async with browser(portal) as client:
        await sign_in(portal, client, stranger)
        not_theirs = await post(client, "/account/proxies/add-minor", **child_form(people.child))
        nobody = await post(client, "/account/proxies/add-minor", **child_form(people.child, identifier="00000000"))
    assert not_theirs.status_code == nobody.status_code == 422
    assert notice(not_theirs) == notice(nobody), "no match and no guardianship read the same"
    assert portal.state["settings"].hospital.billing_phone in notice(not_theirs)
    assert people.child.given_name in not_theirs.text, "the form keeps what was typed"
    assert await live_grants(stranger, people.child.id) == []


async def test_the_child_form_says_what_is_missing_beside_each_field(portal, clock, browser):
    parent = await account_for((await family(portal)).parent, clock())
    async with browser(portal) as client:
        await sign_in(portal, client, parent)
        response = await post(client, "/account/proxies/add-minor", given_name="Ava", birth_year="20x5")
    assert response.status_code == 422
    assert 'value="Ava"' in response.text
    assert "Enter the child&#39;s last name." in response.text
    assert "Enter the date of birth as numbers, with a four-digit year." in response.text
    assert 'aria-invalid="true"' in response.text


async def test_a_guardian_grant_ends_when_the_ehr_no_longer_lists_the_guardianship(portal, clock, monkeypatch, browser):
    people = await family(portal)
    parent = await account_for(people.parent, clock())
    today = clock().date()
    assert await proxies.add_minor(parent, portal.state["plugin_host"].ehr, _query(people.child), clock(), today)
    ehr = portal.state["plugin_host"].ehr

    async def nobody_listed(patient_id: str) -> list[RelatedPerson]:
        return []

    monkeypatch.setattr(ehr, "list_related_persons", nobody_listed)
    async with browser(portal) as client:
        await sign_in(portal, client, parent, acting_for=people.child.id, access="guardian")
        assert (await client.get("/-/test/bills")).status_code == 200, "checked against the EHR at switch time only"
        switch = await client.get("/switch")
        assert people.child.given_name not in switch.text
        assert await live_grants(parent, people.child.id) == []
        assert (await client.get("/-/test/bills")).status_code == 403, "the ended grant is refused at once"


def _query(child: Patient):
    from portal.identity.patient_pages.enrolment import Identifier, patient_query

    return patient_query(child.given_name, child.family_name, child.birth_date, Identifier.MRN, child.mrn)


def _person(patient_born: date, relationship: str = "mother", **changes: Any) -> tuple[Patient, Patient, RelatedPerson]:
    holder = Patient("pt-1", "1", "Maria", "Lopez", date(1985, 4, 2), "A1")
    patient = Patient("pt-2", "2", "Ava", "Lopez", patient_born, "A1")
    values = {
        "id": "rp-1",
        "patient_id": patient.id,
        "given_name": "Maria",
        "family_name": "Lopez",
        "relationship": relationship,
        "access": ProxyAccess.GUARDIAN,
        "birth_date": holder.birth_date,
        "patient_id_of_proxy": holder.id,
    } | changes
    return holder, patient, RelatedPerson(**values)


@pytest.mark.parametrize(
    ("age", "relationship", "changes", "listed"),
    [
        (17, "mother", {}, True),
        (18, "mother", {}, False),  # a parent's authority ends at 18
        (18, "Guardian", {}, True),  # a legal guardianship does not
        (40, "guardian", {}, True),
        (10, "mother", {"access": ProxyAccess.CAREGIVER}, False),
        (10, "mother", {"patient_id_of_proxy": "pt-9"}, False),  # the EHR names another patient
        (10, "mother", {"patient_id_of_proxy": None}, True),  # else name and birth date match
        (10, "mother", {"patient_id_of_proxy": None, "given_name": " MARIA "}, True),
        (10, "mother", {"patient_id_of_proxy": None, "birth_date": date(1985, 4, 3)}, False),
        (10, "mother", {"patient_id_of_proxy": None, "family_name": "Lopes"}, False),
    ],
)
def test_whom_the_ehr_lists_as_guardian(age, relationship, changes, listed):
    today = date(2026, 6, 15)
    holder, patient, related = _person(date(today.year - age, 6, 15), relationship, **changes)
    assert proxies.guardianship_listed([related], holder, patient, today) is listed


def test_the_eighteenth_birthday_counts_from_the_day_itself():
    holder, patient, related = _person(date(2008, 6, 15))
    assert proxies.guardianship_listed([related], holder, patient, date(2026, 6, 14))
    assert not proxies.guardianship_listed([related], holder, patient, date(2026, 6, 15))


# --- Invitations ----------------------------------------------------------------------------------


async def test_a_patient_invites_a_caregiver_who_makes_an_account_and_accepts(portal, clock, browser):
    patient = await sandbox_patient(portal, 12)
    holder = await account_for(patient, clock(), language="es")
    await accounts.update(str(holder["public_id"]), language="es")
    email = f"carer-{secrets.token_hex(4)}@example.org"
    async with browser(portal) as client:
        await sign_in(portal, client, holder)
        assert (await client.get("/account/proxies/invite")).status_code == 200
        sent = await post(client, "/account/proxies/invite", email=email, access="caregiver")
        assert sent.status_code == 303
        assert sent.headers["location"] == "/account/proxies"
        waiting = await client.get("/account/proxies")
        assert email in waiting.text

    (message,) = [message for message in await outbox() or [] if message.to == email]
    assert "invitó" in message.subject, "in the patient's language"
    code = await invitation_code(email)
    assert f"/proxies/accept#{code}" in message.text, "the link carries the code after # only"
    (row,) = await ProxyInvitation.select().where(ProxyInvitation.email == email).run()
    assert code.replace("-", "") not in str(row).replace("-", ""), "only a digest is stored"
    assert row["expires_at"] == clock() + timedelta(days=7)

    async with browser(portal) as invitee:
        landing = await invitee.get("/proxies/accept")
        assert landing.status_code == 200
        assert "invitation-code.js" in landing.text
        choice = await post(invitee, "/proxies/accept", code=code.lower().replace("-", " "))
        assert choice.status_code == 200
        assert f"{holder['given_name']} {holder['family_name']}" in choice.text
        assert email in choice.text
        weak = await post(
            invitee, "/proxies/accept/new-account", code=code, given_name="Robin", family_name="Carer", password="short"
        )
        assert weak.status_code == 422
        assert 'value="Robin"' in weak.text
        assert 'value="short"' not in weak.text, "a password is never sent back"
        joined = await post(
            invitee,
            "/proxies/accept/new-account",
            code=code,
            given_name="Robin",
            family_name="Carer",
            password=PASSWORD,
        )
        assert joined.status_code == 303
        assert joined.headers["location"] == "/home"
        proxy = await accounts.find_by_email("patient", email)
        assert proxy is not None
        assert proxy["patient_id"] is None
        assert proxy["email_verified_at"] is not None
        (grant,) = await live_grants(proxy, patient.id)
        assert (grant["access"], grant["source"], grant["invitation"]) == ("caregiver", "invitation", row["id"])

        bills = await invitee.get("/-/test/bills")
        assert bills.status_code == 200
        assert f"You are viewing: {patient.given_name} {patient.family_name}" in bills.text
        assert (await invitee.get("/-/test/appointments")).status_code == 200, "a caregiver sees everything"
        switch = await invitee.get("/switch")
        assert patient.given_name in switch.text
        assert "You are their caregiver" in switch.text

    async with browser(portal) as someone_else:
        reused = await post(someone_else, "/proxies/accept", code=code)
        assert reused.status_code == 422, "a code works once"

    async with browser(portal) as client:
        await sign_in(portal, client, holder)
        listed = await client.get("/account/proxies")
        assert "Robin Carer" in listed.text
        assert email in listed.text


async def test_a_signed_in_account_accepts_as_billing_delegate_and_sees_no_clinical_pages(portal, clock, browser):
    patient = await sandbox_patient(portal, 13)
    holder = await account_for(patient, clock())
    delegate = await account_for(await sandbox_patient(portal, 14), clock())
    _, code = await proxies.invite(holder, delegate["email"], Access.BILLING, clock())
    async with browser(portal) as client:
        await sign_in(portal, client, delegate)
        choice = await post(client, "/proxies/accept", code=code)
        assert "Accept the invitation" in choice.text
        assert "Create your account" not in choice.text
        accepted = await post(client, "/proxies/accept/signed-in", code=code)
        assert accepted.status_code == 303
        assert accepted.headers["location"] == "/switch"
        chosen = await post(client, "/switch", patient=patient.id)
        assert chosen.status_code == 303
        assert (await client.get("/-/test/bills")).status_code == 200
        refused = await client.get("/-/test/appointments")
        assert refused.status_code == 403, "a billing delegate sees no appointments or clinical text"
        back = await post(client, "/switch", patient=delegate["patient_id"])
        assert back.status_code == 303
        assert (await client.get("/-/test/appointments")).status_code == 200, "their own, they see"


async def test_an_invitation_expires_after_seven_days(portal, clock, browser):
    holder = await account_for(await sandbox_patient(portal, 15), clock())
    _, code = await proxies.invite(holder, f"late-{secrets.token_hex(4)}@example.org", Access.CAREGIVER, clock())
    clock.now += timedelta(days=7) - timedelta(minutes=1)
    async with browser(portal) as client:
        assert (await post(client, "/proxies/accept", code=code)).status_code == 200
        clock.now += timedelta(minutes=2)
        expired = await post(client, "/proxies/accept", code=code)
    assert expired.status_code == 422
    assert "It may be mistyped, used already or expired" in expired.text


async def test_a_cancelled_invitation_stops_working_and_leaves_the_list(portal, clock, browser):
    holder = await account_for(await sandbox_patient(portal, 16), clock())
    email = f"cancel-{secrets.token_hex(4)}@example.org"
    invitation, code = await proxies.invite(holder, email, Access.BILLING, clock())
    async with browser(portal) as client:
        await sign_in(portal, client, holder)
        assert email in (await client.get("/account/proxies")).text
        cancelled = await post(client, f"/account/proxies/invitations/{invitation['id']}/revoke")
        assert cancelled.status_code == 303
        assert email not in (await client.get("/account/proxies")).text
        twice = await post(client, f"/account/proxies/invitations/{invitation['id']}/revoke")
        assert twice.status_code == 404
    async with browser(portal) as invitee:
        assert (await post(invitee, "/proxies/accept", code=code)).status_code == 422


async def test_revoking_a_proxy_refuses_their_very_next_request(portal, clock, browser):
    patient = await sandbox_patient(portal, 17)
    holder = await account_for(patient, clock())
    proxy = await account_for(None, clock())
    invitation, _ = await proxies.invite(holder, proxy["email"], Access.CAREGIVER, clock())
    grant = await proxies.accept(invitation, proxy, clock())
    assert grant is not None
    async with browser(portal) as proxy_client, browser(portal) as holder_client:
        await sign_in(portal, proxy_client, proxy, acting_for=patient.id, access="caregiver")
        assert (await proxy_client.get("/-/test/bills")).status_code == 200
        await sign_in(portal, holder_client, holder)
        revoked = await post(holder_client, f"/account/proxies/{grant['id']}/revoke")
        assert revoked.status_code == 303
        assert proxy["given_name"] not in (await holder_client.get("/account/proxies")).text
        refused = await proxy_client.get("/-/test/bills")
        assert refused.status_code == 403
        revocation = AuditEvent.select().where(
            (AuditEvent.action == "proxy.revoked") & (AuditEvent.subject == f"proxy_grant:{grant['id']}")
        )
        (row,) = await revocation.run()
        assert (row["actor"], row["acting_as"]) == (f"account:{holder['public_id']}", patient.id)
        switch = await proxy_client.get("/switch")
        assert patient.given_name not in switch.text
        assert (await post(proxy_client, "/switch", patient=patient.id)).status_code == 404


async def test_the_you_are_viewing_banner_asks_the_ehr_for_the_name_at_most_once_in_thirty_seconds(
    portal, clock, browser, monkeypatch
):
    patient = await sandbox_patient(portal, 19)
    holder = await account_for(patient, clock())
    proxy = await account_for(None, clock())
    invitation, _ = await proxies.invite(holder, proxy["email"], Access.CAREGIVER, clock())
    assert await proxies.accept(invitation, proxy, clock()) is not None
    ehr = portal.state["plugin_host"].ehr
    read_patient = ehr.read_patient
    asked: list[str] = []

    async def counting(patient_id: str) -> Patient:
        asked.append(patient_id)
        return await read_patient(patient_id)

    await forget(patient_key(patient.id))  # whatever another test left: this one starts with no copy
    monkeypatch.setattr(ehr, "read_patient", counting)
    async with browser(portal) as client:
        await sign_in(portal, client, proxy, acting_for=patient.id, access="caregiver")
        for expected in (1, 0, 0):
            before = len(asked)
            page = await client.get("/-/test/bills")
            assert page.status_code == 200
            assert f"You are viewing: {patient.given_name} {patient.family_name}" in page.text
            assert len(asked) - before == expected
        clock.now += timedelta(seconds=31)
        assert (await client.get("/-/test/bills")).status_code == 200
        assert asked == [patient.id, patient.id], "a copy older than 30 seconds is read again, once"


async def test_a_guardian_grant_is_not_revoked_from_the_patients_list(portal, clock):
    people = await family(portal)
    parent = await account_for(people.parent, clock())
    assert await proxies.add_minor(
        parent, portal.state["plugin_host"].ehr, _query(people.child), clock(), clock().date()
    )
    (grant,) = await live_grants(parent, people.child.id)
    assert not await proxies.revoke_grant(grant["id"], people.child.id, clock()), "the EHR decides guardianship"


# --- Switching ------------------------------------------------------------------------------------


async def test_a_parent_switches_between_herself_and_her_child(portal, clock, browser):
    people = await family(portal)
    parent = await account_for(people.parent, clock())
    assert await proxies.add_minor(
        parent, portal.state["plugin_host"].ehr, _query(people.child), clock(), clock().date()
    )
    async with browser(portal) as client:
        await sign_in(portal, client, parent)
        listed = await client.get("/switch")
        assert listed.text.count('name="patient"') == 1, "only the person not shown now is offered"
        assert "Viewing now" in listed.text
        own = await client.get("/-/test/bills")
        assert "You are viewing" not in own.text, "no banner on one's own account"

        chosen = await post(client, "/switch", patient=people.child.id)
        assert chosen.status_code == 303
        assert chosen.headers["location"] == "/home"
        bills = await client.get("/-/test/bills")
        assert f"bills of {people.child.id}" in bills.text
        assert f"You are viewing: {people.child.given_name} {people.child.family_name}" in bills.text
        assert 'href="/switch"' in bills.text
        assert (await client.get("/-/test/appointments")).status_code == 200, "a guardian sees everything"

        back = await post(client, "/switch", patient=people.parent.id)
        assert back.status_code == 303
        assert f"bills of {people.parent.id}" in (await client.get("/-/test/bills")).text

        stranger = await post(client, "/switch", patient=format_id("pt", 18))
        assert stranger.status_code == 404, "someone not shared is like no one"


async def test_a_proxy_who_has_not_chosen_yet_is_asked_to(portal, clock, browser):
    proxy = await account_for(None, clock())
    async with browser(portal) as client:
        await sign_in(portal, client, proxy)
        assert (await client.get("/-/test/bills")).status_code == 403
        switch = await client.get("/switch")
        assert switch.status_code == 200
        assert "Nobody has shared their account with you yet." in switch.text


async def test_staff_cannot_use_the_proxy_pages(portal, clock, browser):
    async with browser(portal) as client:
        await sign_in(portal, client, await account_for(None, clock()), realm="staff", role="representative")
        for path in ("/switch", "/account/proxies", "/account/proxies/add-minor", "/account/proxies/invite"):
            assert (await client.get(path)).status_code == 403, path


# --- What is never written down -------------------------------------------------------------------


async def test_the_invitation_code_is_in_no_log_url_or_header(portal, clock, caplog, browser):
    holder = await account_for(await sandbox_patient(portal, 19), clock())
    email = f"quiet-{secrets.token_hex(4)}@example.org"
    urls: list[str] = []
    headers: list[str] = []

    async def record(response: httpx.Response) -> None:
        urls.append(str(response.request.url))
        headers.append(str(response.headers))

    with caplog.at_level(logging.DEBUG):
        async with browser(portal) as client:
            client.event_hooks["response"].append(record)
            await sign_in(portal, client, holder)
            await post(client, "/account/proxies/invite", email=email, access="billing")
            code = await invitation_code(email)
        async with browser(portal) as invitee:
            invitee.event_hooks["response"].append(record)
            await post(invitee, "/proxies/accept", code=code)
            await post(
                invitee,
                "/proxies/accept/new-account",
                code=code,
                given_name="Sam",
                family_name="Quiet",
                password=PASSWORD,
            )
    audit = str(await AuditEvent.select().where(AuditEvent.action.like("proxy.%")).run())
    assert email not in audit
    for form in (code, code.replace("-", "")):
        assert form not in caplog.text
        assert form not in audit
        assert not [url for url in urls if form in url]
        assert not [header for header in headers if form in header]


async def test_a_representative_acting_as_the_patient_cannot_share_the_account(portal, clock, browser):
    holder = await account_for(await sandbox_patient(portal, 20), clock())
    proxy = await account_for(None, clock())
    invitation, _ = await proxies.invite(holder, proxy["email"], Access.CAREGIVER, clock())
    grant = await proxies.accept(invitation, proxy, clock())
    assert grant is not None
    email = f"acting-{secrets.token_hex(4)}@example.org"
    async with browser(portal) as client:
        await sign_in(portal, client, holder, impersonator=str(uuid.uuid4()))
        invited = await post(client, "/account/proxies/invite", email=email, access="caregiver")
        revoked = await post(client, f"/account/proxies/{grant['id']}/revoke")
        added = await post(client, "/account/proxies/add-minor", **child_form((await family(portal)).child))
    assert invited.status_code == revoked.status_code == added.status_code == 403
    assert "Not while acting for a patient" in invited.text
    assert not await ProxyInvitation.exists().where(ProxyInvitation.email == email).run()
    assert await live_grants(proxy, holder["patient_id"]) != []
