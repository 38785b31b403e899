"""The home page and the account page: contact details that need a recent sign-in and a code,
preferences, sign-in history and the account's sessions."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.identity import accounts
from portal.identity.passwords import hash_password, verify_password
from portal.identity.tables import WebSession

COOKIE_DOMAIN = "testserver.local"  # where httpx keeps the cookies testserver sets
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")
PASSWORD = "marble staircase in the rain"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1"
WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36 Edg/126.0"


@pytest.fixture
def user_agent() -> str:
    return IPHONE


def csrf(page: httpx.Response) -> str:
    match = CSRF_INPUT.search(page.text)
    assert match, page.text
    return match.group(1)


async def post_form(client: httpx.AsyncClient, path: str, data: dict[str, str], page: str = "/account"):
    """Post ``data`` with the CSRF token of the page at ``page``, as a browser would."""
    token = csrf(await client.get(page))
    return await client.post(path, data={"_csrf_token": token, **data})


async def new_patient(now: datetime, **values: Any) -> dict[str, Any]:
    tag = secrets.token_hex(5)
    defaults = {
        "public_id": uuid.uuid4(),
        "realm": "patient",
        "email": f"account-{tag}@example.org",
        "email_verified_at": now,
        "password_hash": hash_password(PASSWORD),
        "given_name": "Marta",
        "family_name": f"Account{tag}",
        "patient_id": f"ac-{tag}",
    }
    return await accounts.create(now, **(defaults | values))


async def sign_in(client: httpx.AsyncClient, account: dict[str, Any]) -> None:
    """Sign in through the sign-in page, as the patient would."""
    token = csrf(await client.get("/sign-in"))
    answer = await client.post("/sign-in", data={"_csrf_token": token, "email": account["email"], "password": PASSWORD})
    assert answer.status_code == 303, answer.text


async def messages_to(app: Litestar, address: str) -> list[Any]:
    return [message for message in await app.state["plugin_host"].notifier.recent() if message.to == address]


async def code_sent_to(app: Litestar, address: str) -> str:
    newest = (await messages_to(app, address))[0]
    return CODE.search(newest.text).group(1)


async def test_home_welcomes_the_patient(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(client, account)
        home = await client.get("/home")
    assert home.status_code == 200
    assert "Welcome, Marta" in home.text
    assert "tel:+15550104400" in home.text
    assert 'href="/account"' in home.text
    assert 'aria-current="page"' in home.text
    assert home.headers["cache-control"] == "no-store"


async def test_home_and_account_are_for_signed_in_patients(portal, browser):
    async with browser(portal) as client:
        for path in ("/home", "/account"):
            answer = await client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == "/sign-in"


async def test_a_session_naming_no_account_is_ended(portal, browser):
    async with browser(portal) as client:
        key = secrets.token_hex(32)
        data = {"account_id": "not-an-account", "realm": "patient", "acting_for": "pt-1", "access": "self"}
        await portal.stores.get("sessions").set(key, encode_json(data), expires_in=900)
        client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
        for path in ("/home", "/account"):
            answer = await client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"] == "/sign-in"
    assert not await WebSession.exists().where(WebSession.key == key).run()


async def test_the_account_page_shows_history_and_sessions_and_ends_the_others(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal, WINDOWS) as desktop, browser(portal) as phone:
        token = csrf(await desktop.get("/sign-in"))
        await desktop.post("/sign-in", data={"_csrf_token": token, "email": account["email"], "password": "wrong one!"})
        await sign_in(desktop, account)
        await sign_in(phone, account)
        page = await phone.get("/account")
        assert page.status_code == 200
        assert account["email"] in page.text
        assert "Safari on iPhone" in page.text
        assert "Edge on Windows" in page.text
        assert page.text.count("This session") == 1
        assert "Wrong password or code" in page.text
        assert "Signed in" in page.text

        ended = await post_form(phone, "/account/sessions/end-others", {})
        assert ended.headers["location"] == "/account?saved=sessions"
        assert (await desktop.get("/account")).status_code == 303, "the other session has ended"
        after = await phone.get("/account?saved=sessions")
        assert "Every other session of your account has ended." in after.text
        assert "Edge on Windows" not in after.text.split("Where you are signed in")[1].split("Sign-in history")[0]


async def test_language_and_paperless_are_saved(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(client, account)
        saved = await post_form(client, "/account/preferences", {"language": "es", "paperless": "on"})
        assert saved.status_code == 303
        assert "lang=es" in saved.headers["set-cookie"]
        page = await client.get(saved.headers["location"])
        assert '<html lang="es">' in page.text
        assert "Se guardaron sus preferencias." in page.text
        assert 'id="paperless" name="paperless" value="on" checked' in page.text
        changed = await accounts.find(str(account["public_id"]))
        assert (changed["language"], changed["paperless"]) == ("es", True)

        await post_form(client, "/account/preferences", {"language": "fr"})
        changed = await accounts.find(str(account["public_id"]))
        assert (changed["language"], changed["paperless"]) == ("es", False), "an unknown language changes nothing"


async def test_changing_the_email_address_needs_a_recent_sign_in_and_a_code(portal, clock, browser):
    account = await new_patient(clock.now)
    new_email = f"new-{secrets.token_hex(5)}@example.org"
    async with browser(portal) as client:
        await sign_in(client, account)
        clock.now += timedelta(minutes=11)
        stale = await client.get("/account/email")
        assert stale.status_code == 303
        assert stale.headers["location"] == "/account/confirm?next=%2Faccount%2Femail"
        refused = await post_form(client, "/account/email", {"email": new_email})
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/account/confirm")
        assert await messages_to(portal, new_email) == []

        confirmed = await post_form(
            client, "/account/confirm", {"password": PASSWORD, "next": "/account/email"}, page=stale.headers["location"]
        )
        assert confirmed.headers["location"] == "/account/email"

        typo = await post_form(client, "/account/email", {"email": "new@example"}, page="/account/email")
        assert typo.status_code == 422
        assert 'value="new@example"' in typo.text
        asked = await post_form(client, "/account/email", {"email": new_email}, page="/account/email")
        assert asked.headers["location"] == "/account/email/verify"
        unchanged = await accounts.find(str(account["public_id"]))
        assert unchanged["email"] == account["email"], "not before the code comes back"

        wrong = await post_form(client, "/account/email/verify", {"code": "12"}, page="/account/email/verify")
        assert wrong.status_code == 422
        code = await code_sent_to(portal, new_email)
        done = await post_form(client, "/account/email/verify", {"code": code}, page="/account/email/verify")
        assert done.headers["location"] == "/account?saved=email"

    changed = await accounts.find(str(account["public_id"]))
    assert changed["email"] == new_email
    assert changed["email_verified_at"] == clock.now
    (notice,) = await messages_to(portal, account["email"])
    assert notice.subject == "Your email address was changed"


async def test_an_email_address_in_use_cannot_be_taken(portal, clock, browser):
    account = await new_patient(clock.now)
    other = await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(client, account)
        answer = await post_form(client, "/account/email", {"email": other["email"]}, page="/account/email")
        assert answer.status_code == 422
        assert "cannot be used for a new account" in answer.text
    assert await messages_to(portal, other["email"]) == []


async def test_adding_changing_and_removing_the_mobile_number(portal, clock, browser):
    account = await new_patient(clock.now)
    phone = f"+1630555{secrets.randbelow(10_000):04d}"
    async with browser(portal) as client:
        await sign_in(client, account)
        assert "Add a mobile number" in (await client.get("/account")).text
        bad = await post_form(client, "/account/phone", {"phone": "555"}, page="/account/phone")
        assert bad.status_code == 422
        assert 'value="555"' in bad.text
        asked = await post_form(client, "/account/phone", {"phone": phone[2:]}, page="/account/phone")
        assert asked.headers["location"] == "/account/phone/verify"
        (text,) = await messages_to(portal, phone)
        assert text.channel == "sms"
        done = await post_form(
            client, "/account/phone/verify", {"code": CODE.search(text.text).group(1)}, page="/account/phone/verify"
        )
        assert done.headers["location"] == "/account?saved=phone"
        changed = await accounts.find(str(account["public_id"]))
        assert (changed["phone"], changed["phone_verified_at"]) == (phone, clock.now)

        clock.now += timedelta(minutes=11)
        stale = await post_form(client, "/account/phone/remove", {})
        assert stale.headers["location"].startswith("/account/confirm")
        assert (await accounts.find(str(account["public_id"])))["phone"] == phone
        clock.now -= timedelta(minutes=11)
        removed = await post_form(client, "/account/phone/remove", {})
        assert removed.headers["location"] == "/account?saved=phone-removed"
    changed = await accounts.find(str(account["public_id"]))
    assert (changed["phone"], changed["phone_verified_at"]) == (None, None)


async def test_changing_the_password_ends_the_other_sessions(portal, clock, browser):
    account = await new_patient(clock.now)
    new_password = "harbour lights at dawn"
    async with browser(portal) as client, browser(portal) as other:
        await sign_in(client, account)
        await sign_in(other, account)
        weak = await post_form(client, "/account/password", {"password": "password"}, page="/account/password")
        assert weak.status_code == 422
        done = await post_form(client, "/account/password", {"password": new_password}, page="/account/password")
        assert done.headers["location"] == "/account?saved=password"
        assert (await client.get("/account")).status_code == 200
        assert (await other.get("/account")).status_code == 303
    changed = await accounts.find(str(account["public_id"]))
    assert verify_password(changed["password_hash"], new_password)


async def test_nothing_changes_while_a_representative_acts_as_the_patient(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        key = secrets.token_hex(32)
        data = {
            "account_id": str(account["public_id"]),
            "realm": "patient",
            "acting_for": account["patient_id"],
            "access": "self",
            "signed_in_at": clock.now.isoformat(),
            "impersonator": str(uuid.uuid4()),
        }
        await portal.stores.get("sessions").set(key, encode_json(data), expires_in=900)
        client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
        for path, form in [
            ("/account/email", {"email": "acting@example.org"}),
            ("/account/phone", {"phone": "3125550199"}),
            ("/account/password", {"password": "a brand new passphrase"}),
        ]:
            assert (await client.get(path)).status_code == 403, path
            assert (await post_form(client, path, form)).status_code == 403, path
    assert (await accounts.find(str(account["public_id"])))["email"] == account["email"]
