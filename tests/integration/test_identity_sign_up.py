"""Sign-up from scratch for a sandbox patient: matched in the sandbox EHR, email and mobile number
verified with codes read from the sandbox notifier's outbox, a password, then signed in.

Every "no" at the matching step reads the same (PROMISES.md 5); the holder of an existing account
hears of the attempt by email.
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from carefront_sandbox.ehr import SandboxEHR
from carefront_sdk.models import Patient
from litestar import Litestar

from portal.app import SESSION_COOKIE
from portal.identity import accounts
from portal.identity.tables import Account, WebSession

PUBLIC_URL = "https://testserver"
COOKIE_DOMAIN = "testserver.local"  # where httpx keeps the cookies testserver sets
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")
NEUTRAL = "We could not set up an account with those details"
PASSWORD = "lantern orchard pebble river"


def csrf(page: httpx.Response) -> str:
    match = CSRF_INPUT.search(page.text)
    assert match, page.text
    return match.group(1)


async def post_form(client: httpx.AsyncClient, path: str, data: dict[str, str], page: str | None = None):
    """Post ``data`` with the CSRF token of the page at ``page`` (default: ``path``), as a browser would."""
    token = csrf(await client.get(page or path))
    return await client.post(path, data={"_csrf_token": token, **data})


async def patients_without_account(app: Litestar) -> list[Patient]:
    """Adult sandbox patients, read through the EHR adapter, that no portal account names yet."""
    ehr = app.state["plugin_host"].ehr
    found = []
    for key in range(1, 61):
        patient = await ehr.read_patient(f"pt-{key}")
        if patient.birth_date.year < 2000 and await accounts.find_by_patient(patient.id) is None:
            found.append(patient)
    assert found, "the sandbox has no patient left without an account"
    return found


async def messages_to(app: Litestar, address: str) -> list[Any]:
    """What the sandbox notifier kept for ``address``, newest first."""
    return [message for message in await app.state["plugin_host"].notifier.recent() if message.to == address]


async def code_sent_to(app: Litestar, address: str) -> str:
    newest = (await messages_to(app, address))[0]
    match = CODE.search(newest.text)
    assert match, newest.text
    return match.group(1)


def identity(patient: Patient, **changes: str) -> dict[str, str]:
    form = {
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "birth_month": str(patient.birth_date.month),
        "birth_day": str(patient.birth_date.day),
        "birth_year": str(patient.birth_date.year),
        "identifier_kind": "mrn",
        "identifier": patient.mrn,
    }
    return form | changes


def unique_email(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(5)}@example.org"


async def test_sign_up_from_scratch_for_a_sandbox_patient(portal, clock, browser):
    patient = (await patients_without_account(portal))[0]
    email = unique_email("sign-up")
    phone = f"+1312555{secrets.randbelow(10_000):04d}"
    async with browser(portal) as client:
        first = await client.get("/sign-up")
        assert first.status_code == 200
        assert "Date of birth" in first.text

        # Step 1: the details on a bill, typed with other spacing and case than the EHR's.
        matched = await post_form(client, "/sign-up", identity(patient, given_name=f"  {patient.given_name.upper()} "))
        assert matched.status_code == 303
        assert matched.headers["location"] == "/sign-up/contact"
        key_after_match = client.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN)
        assert key_after_match
        stored = await WebSession.select(WebSession.data).where(WebSession.key == key_after_match).first().run()
        assert patient.family_name not in bytes(stored["data"]).decode(), "no name in the session"
        assert patient.birth_date.isoformat() not in bytes(stored["data"]).decode(), "no birth date in the session"

        # Step 2: the email address on file is offered; the patient chooses another and adds a mobile.
        contact_page = await client.get("/sign-up/contact")
        assert contact_page.status_code == 200
        if patient.email:
            assert f'value="{patient.email}"' in contact_page.text
        sent = await post_form(client, "/sign-up/contact", {"email": email.upper(), "phone": phone})
        assert sent.status_code == 303
        assert sent.headers["location"] == "/sign-up/verify"
        assert email not in sent.headers["location"]
        verify_page = await client.get("/sign-up/verify")
        assert email in verify_page.text

        email_code = await code_sent_to(portal, email)
        phone_code = await code_sent_to(portal, phone)
        verified = await post_form(
            client, "/sign-up/verify", {"email_code": email_code, "phone_code": f"{phone_code[:3]} {phone_code[3:]}"}
        )
        assert verified.status_code == 303
        assert verified.headers["location"] == "/sign-up/password"

        # Step 3: the rules are shown before anything is typed.
        password_page = await client.get("/sign-up/password")
        assert "At least 12 characters" in password_page.text
        before = client.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN)
        done = await post_form(client, "/sign-up/password", {"password": PASSWORD})
        assert done.status_code == 303
        assert done.headers["location"] == "/home"
        after = client.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN)
        assert after != before, "signing in gives the session a new key"
        assert not await WebSession.exists().where(WebSession.key == before).run()

        home = await client.get("/home")
        assert home.status_code == 200
        assert f"Welcome, {patient.given_name}" in home.text

    account = await accounts.find_by_patient(patient.id)
    assert account is not None
    assert account["email"] == email
    assert account["email_verified_at"] is not None
    assert account["phone"] == phone
    assert account["phone_verified_at"] is not None
    assert (account["given_name"], account["family_name"]) == (patient.given_name, patient.family_name)
    assert account["language"] == "en"
    assert account["password_hash"].startswith("$argon2id$")


async def test_sign_up_in_spanish_sends_the_code_in_spanish_and_keeps_the_language(portal, browser):
    patient = (await patients_without_account(portal))[-1]
    email = unique_email("registro")
    async with browser(portal) as client:
        client.cookies.set("lang", "es", domain=COOKIE_DOMAIN)
        page = await client.get("/sign-up")
        assert "Crear su cuenta" in page.text or "Cree su cuenta" in page.text
        # Spanish readers write the day first.
        assert page.text.index('id="birth_day"') < page.text.index('id="birth_month"')
        await post_form(
            client, "/sign-up", identity(patient, identifier_kind="account", identifier=patient.account_number)
        )
        await post_form(client, "/sign-up/contact", {"email": email, "phone": ""})
        message = (await messages_to(portal, email))[0]
        assert "código" in message.text
        await post_form(client, "/sign-up/verify", {"email_code": await code_sent_to(portal, email)})
        done = await post_form(client, "/sign-up/password", {"password": PASSWORD})
        assert done.status_code == 303
    account = await accounts.find_by_patient(patient.id)
    assert account["language"] == "es"
    assert account["phone"] is None


async def several(self: SandboxEHR, query: Any) -> list[Patient]:
    """Two patients for any query, as an EHR with duplicate records would answer."""
    return [await self.read_patient("pt-1"), await self.read_patient("pt-2")]


def without_tokens(page: httpx.Response) -> str:
    """The page without what differs by nature: the CSRF token, and the values typed into the form."""
    return re.sub(r'value="[^"]*"', 'value=""', CSRF_INPUT.sub("", page.text)).replace(" checked", "")


async def test_no_match_several_matches_and_an_existing_account_get_one_neutral_answer(
    portal, clock, monkeypatch, browser
):
    no_match_patient, owner_patient = (await patients_without_account(portal))[1:3]
    owner_email = unique_email("owner")
    await accounts.create(
        clock.now,
        public_id=uuid.uuid4(),
        realm="patient",
        patient_id=owner_patient.id,
        email=owner_email,
        email_verified_at=clock.now,
        given_name=owner_patient.given_name,
        family_name=owner_patient.family_name,
        language="en",
    )
    answers = {}
    async with browser(portal) as client:
        answers["no match"] = await post_form(client, "/sign-up", identity(no_match_patient, identifier="00000000"))
        answers["existing account"] = await post_form(client, "/sign-up", identity(owner_patient))
        with monkeypatch.context() as patch:
            patch.setattr(SandboxEHR, "match_patient", several)
            answers["several"] = await post_form(client, "/sign-up", identity(no_match_patient))
        assert client.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN) is None, "no sign-up was started"

    for why, answer in answers.items():
        assert answer.status_code == 422, why
        assert NEUTRAL in answer.text, why
        assert "+1 (555) 010-4400" in answer.text or "010-4400" in answer.text, why
    shapes = {without_tokens(answer) for answer in answers.values()}
    assert len(shapes) == 1, "the three answers differ beyond what was typed"
    assert f'value="{no_match_patient.given_name}"' in answers["no match"].text, "what was typed is kept"

    # The real owner learns of the attempt, and how to sign in or choose a new password.
    (notice,) = await messages_to(portal, owner_email)
    assert "tried to create" in notice.subject + notice.text
    assert f"{PUBLIC_URL}/sign-in" in notice.text
    assert f"{PUBLIC_URL}/sign-in/forgot" in notice.text


async def test_matching_is_limited_per_address(portal, clock, browser):
    patient = (await patients_without_account(portal))[0]
    async with browser(portal) as client:
        for attempt in range(10):
            answer = await post_form(client, "/sign-up", identity(patient, identifier=f"9999{attempt:04d}"))
            assert answer.status_code == 422
        refused = await post_form(client, "/sign-up", identity(patient))
        assert refused.status_code == 429
        assert "Please wait 15 minutes" in refused.text
        assert f'value="{patient.family_name}"' in refused.text
        clock.now += timedelta(minutes=15, seconds=1)
        assert (await post_form(client, "/sign-up", identity(patient))).status_code == 303


async def test_each_form_sent_back_with_errors_keeps_what_was_typed(portal, browser):
    patient = (await patients_without_account(portal))[0]
    async with browser(portal) as client:
        missing = await post_form(
            client, "/sign-up", identity(patient, family_name="", birth_day="31", birth_month="2")
        )
        assert missing.status_code == 422
        assert f'value="{patient.given_name}"' in missing.text
        assert 'value="31"' in missing.text
        assert "Enter your last name." in missing.text
        assert "Enter a real date of birth." in missing.text
        assert 'aria-invalid="true"' in missing.text
        assert 'href="#family_name"' in missing.text, "the error summary links to the field"

        assert (await post_form(client, "/sign-up", identity(patient))).status_code == 303
        wrong_phone = await post_form(client, "/sign-up/contact", {"email": "keep-me@example.org", "phone": "12"})
        assert wrong_phone.status_code == 422
        assert 'value="keep-me@example.org"' in wrong_phone.text
        assert 'value="12"' in wrong_phone.text

        email = unique_email("keep")
        await post_form(client, "/sign-up/contact", {"email": email})
        wrong = await post_form(client, "/sign-up/verify", {"email_code": "000000"})
        assert wrong.status_code == 422
        assert "That code is not right" in wrong.text

        await post_form(client, "/sign-up/verify", {"email_code": await code_sent_to(portal, email)})
        for password, problem in [
            ("short one", "at least 12 characters"),
            ("password1234", "most common"),
            (f"{patient.family_name}2024!", "mostly your name"),
        ]:
            refused = await post_form(client, "/sign-up/password", {"password": password})
            assert refused.status_code == 422, password
            assert problem in refused.text, password
            assert password not in refused.text, "a password is never sent back"
    assert await accounts.find_by_patient(patient.id) is None


async def test_an_email_address_another_account_uses_gets_a_neutral_answer(portal, clock, browser):
    patient = (await patients_without_account(portal))[0]
    taken = unique_email("taken")
    await accounts.create(
        clock.now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=taken,
        email_verified_at=clock.now,
        given_name="Someone",
        family_name="Else",
    )
    async with browser(portal) as client:
        await post_form(client, "/sign-up", identity(patient))
        answer = await post_form(client, "/sign-up/contact", {"email": taken})
        assert answer.status_code == 422
        assert "cannot be used for a new account" in answer.text
        assert 'href="/sign-in"' in answer.text
    assert await messages_to(portal, taken) == [], "no code goes to someone else's address"


async def test_codes_allow_five_tries_and_a_new_code_retires_the_old(portal, browser):
    patient = (await patients_without_account(portal))[0]
    email = unique_email("tries")
    async with browser(portal) as client:
        await post_form(client, "/sign-up", identity(patient))
        await post_form(client, "/sign-up/contact", {"email": email})
        first = await code_sent_to(portal, email)
        wrong = "111111" if first != "111111" else "222222"
        for _ in range(5):
            assert (await post_form(client, "/sign-up/verify", {"email_code": wrong})).status_code == 422
        spent = await post_form(client, "/sign-up/verify", {"email_code": first})
        assert spent.status_code == 422, "five wrong tries use the code up"

        resent = await post_form(client, "/sign-up/verify/resend", {}, page="/sign-up/verify")
        assert resent.status_code == 303
        assert resent.headers["location"] == "/sign-up/verify?sent=1"
        assert "We sent you a new code" in (await client.get(resent.headers["location"])).text
        second = await code_sent_to(portal, email)
        assert (await post_form(client, "/sign-up/verify", {"email_code": second})).headers["location"] == (
            "/sign-up/password"
        )


async def test_sending_codes_is_limited_per_destination(portal, clock, browser):
    patient = (await patients_without_account(portal))[0]
    email = unique_email("flood")
    async with browser(portal) as client:
        await post_form(client, "/sign-up", identity(patient))
        assert (await post_form(client, "/sign-up/contact", {"email": email})).status_code == 303
        for _ in range(4):
            answer = await post_form(client, "/sign-up/verify/resend", {}, page="/sign-up/verify")
            assert answer.status_code == 303
        refused = await post_form(client, "/sign-up/verify/resend", {}, page="/sign-up/verify")
        assert refused.status_code == 429
        assert "Please wait" in refused.text
    assert len(await messages_to(portal, email)) == 5


async def test_the_later_steps_need_a_sign_up_in_progress(portal, browser):
    async with browser(portal) as client:
        for path in ("/sign-up/contact", "/sign-up/verify", "/sign-up/password"):
            answer = await client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"] == "/sign-up"
        token = csrf(await client.get("/sign-up"))
        answer = await client.post("/sign-up/password", data={"_csrf_token": token, "password": PASSWORD})
        assert answer.status_code == 303
        assert answer.headers["location"] == "/sign-up"
    assert not await Account.exists().where(Account.email.like("%lantern%")).run()


async def test_a_signed_in_patient_is_sent_home(portal, clock, browser):
    patient = (await patients_without_account(portal))[0]
    email = unique_email("home")
    async with browser(portal) as client:
        await post_form(client, "/sign-up", identity(patient))
        await post_form(client, "/sign-up/contact", {"email": email})
        await post_form(client, "/sign-up/verify", {"email_code": await code_sent_to(portal, email)})
        await post_form(client, "/sign-up/password", {"password": PASSWORD})
        again = await client.get("/sign-up")
        assert again.status_code == 303
        assert again.headers["location"] == "/home"


@pytest.mark.parametrize(
    "changes",
    [
        {"birth_month": "9" * 40},
        {"birth_day": "\uff11\uff12"},  # full-width digits
        {"birth_year": "19800"},
        {"identifier_kind": "passport"},
        {"identifier": "x" * 500},
        {"given_name": "y" * 500},
    ],
)
async def test_malformed_details_get_a_message_not_a_failure(portal, changes, browser):
    patient = (await patients_without_account(portal))[0]
    async with browser(portal) as client:
        answer = await post_form(client, "/sign-up", identity(patient, **changes))
        assert answer.status_code == 422
        assert "Please correct the following" in answer.text
