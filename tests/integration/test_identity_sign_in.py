"""Signing in by password and by one-time code, a forgotten password, and signing out.

Answers never tell whether an account exists (PROMISES.md 5); a session gets a new key at sign-in
and is gone from the server at sign-out (PROMISES.md 3).
"""

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
from portal.identity.tables import SignInEvent, WebSession

COOKIE_DOMAIN = "testserver.local"  # where httpx keeps the cookies testserver sets
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
CODE = re.compile(r"\b(\d{6})\b")
PASSWORD = "copper kettle under moonlight"
NEW_PASSWORD = "seven quiet herons fishing"
WRONG = "That email address and password do not match an account."
SENT = "If an account uses"


@pytest.fixture
def user_agent() -> str:
    return "Mozilla/5.0 (iPhone) Safari/604.1"


def csrf(page: httpx.Response) -> str:
    match = CSRF_INPUT.search(page.text)
    assert match, page.text
    return match.group(1)


async def post_form(client: httpx.AsyncClient, path: str, data: dict[str, str], page: str | None = None):
    """Post ``data`` with the CSRF token of the page at ``page`` (default: ``path``), as a browser would."""
    token = csrf(await client.get(page or path))
    return await client.post(path, data={"_csrf_token": token, **data})


def session_key(client: httpx.AsyncClient) -> str | None:
    return client.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN)


async def new_patient(now: datetime, **values: Any) -> dict[str, Any]:
    tag = secrets.token_hex(5)
    defaults = {
        "public_id": uuid.uuid4(),
        "realm": "patient",
        "email": f"sign-in-{tag}@example.org",
        "email_verified_at": now,
        "password_hash": hash_password(PASSWORD),
        "given_name": "Rosa",
        "family_name": f"Signin{tag}",
        "patient_id": f"si-{tag}",
    }
    return await accounts.create(now, **(defaults | values))


async def messages_to(app: Litestar, address: str) -> list[Any]:
    return [message for message in await app.state["plugin_host"].notifier.recent() if message.to == address]


async def code_sent_to(app: Litestar, address: str) -> str:
    newest = (await messages_to(app, address))[0]
    match = CODE.search(newest.text)
    assert match, newest.text
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, email: str, password: str = PASSWORD, **extra: str) -> httpx.Response:
    return await post_form(client, "/sign-in", {"email": email, "password": password, **extra})


async def test_sign_in_with_a_password_gives_the_session_a_new_key(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        # A key planted before sign-in (session fixation) must not survive it.
        planted = secrets.token_hex(32)
        await portal.stores.get("sessions").set(planted, encode_json({"planted": "yes"}), expires_in=900)
        client.cookies.set(SESSION_COOKIE, planted, domain=COOKIE_DOMAIN)

        answer = await sign_in(client, account["email"].upper())
        assert answer.status_code == 303
        assert answer.headers["location"] == "/home"
        assert session_key(client) not in (None, planted)
        assert not await WebSession.exists().where(WebSession.key == planted).run()
        home = await client.get("/home")
        assert home.status_code == 200
        assert "Welcome, Rosa" in home.text
        assert 'action="/sign-out"' in home.text
    (event,) = await SignInEvent.select().where(SignInEvent.account == account["id"]).run()
    assert (event["method"], event["outcome"]) == ("password", "succeeded")


async def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        wrong_password = await sign_in(client, account["email"], "not the right password")
        unknown = await sign_in(client, f"nobody-{secrets.token_hex(4)}@example.org", "not the right password")
    for answer in (wrong_password, unknown):
        assert answer.status_code == 422
        assert WRONG in answer.text
        assert "not the right password" not in answer.text, "a password is never sent back"
    assert f'value="{account["email"]}"' in wrong_password.text, "the email address is kept"
    assert session_key(client) is None


async def test_sign_in_is_limited_per_account_with_the_wait_in_minutes(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        for _ in range(10):
            assert (await sign_in(client, account["email"], "guessing again and again")).status_code == 422
        refused = await sign_in(client, account["email"])
        assert refused.status_code == 429
        assert "Please wait 15 minutes" in refused.text
        clock.now += timedelta(minutes=15, seconds=1)
        assert (await sign_in(client, account["email"])).status_code == 303


@pytest.mark.parametrize(
    ("next_path", "lands_on"),
    [("/account?tab=sessions", "/account?tab=sessions"), ("//evil.example/", "/"), ("https://evil.example", "/")],
)
async def test_sign_in_goes_back_to_a_page_on_this_site_only(portal, clock, next_path, lands_on, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        page = await client.get("/sign-in", params={"next": next_path})
        token = csrf(page)
        answer = await client.post(
            "/sign-in", data={"_csrf_token": token, "email": account["email"], "password": PASSWORD, "next": next_path}
        )
        assert answer.headers["location"] == lands_on


async def test_a_holder_of_a_second_factor_is_asked_for_it_after_the_password(portal, clock, browser):
    account = await new_patient(clock.now, totp_enabled_at=clock.now, totp_secret="not read here")
    async with browser(portal) as client:
        answer = await sign_in(client, account["email"])
        assert answer.status_code == 303
        assert answer.headers["location"] == portal.route_reverse("sign-in-second-factor")
        assert (await client.get("/home")).status_code == 303, "not signed in before the second factor"


async def test_sign_in_with_a_code_by_email(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        asked = await post_form(client, "/sign-in/code", {"contact": f" {account['email'].upper()} "})
        assert asked.status_code == 303
        assert asked.headers["location"] == "/sign-in/code/enter"
        assert account["email"] not in asked.headers["location"]
        page = await client.get("/sign-in/code/enter")
        assert SENT in page.text
        code = await code_sent_to(portal, account["email"])
        before = session_key(client)
        done = await post_form(client, "/sign-in/code/enter", {"code": code})
        assert done.status_code == 303
        assert done.headers["location"] == "/home"
        assert session_key(client) != before
        assert (await client.get("/home")).status_code == 200


async def test_sign_in_with_a_code_by_text_message(portal, clock, browser):
    phone = f"+1773555{secrets.randbelow(10_000):04d}"
    account = await new_patient(clock.now, phone=phone, phone_verified_at=clock.now)
    async with browser(portal) as client:
        await post_form(client, "/sign-in/code", {"contact": f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"})
        (message,) = await messages_to(portal, phone)
        assert message.channel == "sms"
        done = await post_form(client, "/sign-in/code/enter", {"code": CODE.search(message.text).group(1)})
        assert done.headers["location"] == "/home"
    events = await SignInEvent.select().where(SignInEvent.account == account["id"]).run()
    assert [(event["method"], event["outcome"]) for event in events] == [("code", "succeeded")]


async def test_a_code_is_sent_only_to_a_verified_address_and_the_page_says_the_same(portal, clock, browser):
    unverified = await new_patient(clock.now, email_verified_at=None)
    unknown = f"nobody-{secrets.token_hex(4)}@example.org"
    pages = []
    async with browser(portal) as client:
        for address in (unverified["email"], unknown):
            asked = await post_form(client, "/sign-in/code", {"contact": address})
            assert asked.status_code == 303
            page = await client.get("/sign-in/code/enter")
            pages.append(page.text.replace(address, "ADDRESS"))
            wrong = await post_form(client, "/sign-in/code/enter", {"code": "123456"})
            assert wrong.status_code == 422
            assert "That code is not right" in wrong.text
    assert CSRF_INPUT.sub("", pages[0]) == CSRF_INPUT.sub("", pages[1])
    assert await messages_to(portal, unverified["email"]) == []
    assert await messages_to(portal, unknown) == []


async def test_wrong_codes_are_counted_and_five_use_the_code_up(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        await post_form(client, "/sign-in/code", {"contact": account["email"]})
        code = await code_sent_to(portal, account["email"])
        wrong = "000000" if code != "000000" else "999999"
        for _ in range(5):
            answer = await post_form(client, "/sign-in/code/enter", {"code": wrong})
            assert answer.status_code == 422
            assert 'aria-invalid="true"' in answer.text
        assert (await post_form(client, "/sign-in/code/enter", {"code": code})).status_code == 422
    outcomes = await SignInEvent.select(SignInEvent.outcome).where(SignInEvent.account == account["id"]).run()
    assert [row["outcome"] for row in outcomes] == ["wrong_secret"] * 6


async def test_asking_for_codes_is_limited_per_destination_and_per_address(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        for _ in range(5):
            assert (await post_form(client, "/sign-in/code", {"contact": account["email"]})).status_code == 303
        refused = await post_form(client, "/sign-in/code", {"contact": account["email"]})
        assert refused.status_code == 429
        assert "Please wait" in refused.text
        assert f'value="{account["email"]}"' in refused.text
    assert len(await messages_to(portal, account["email"])) == 5

    async with browser(portal) as client:
        for attempt in range(20):
            address = f"nobody-{attempt}-{secrets.token_hex(3)}@example.org"
            assert (await post_form(client, "/sign-in/code", {"contact": address})).status_code == 303
        refused = await post_form(client, "/sign-in/code", {"contact": "one-more@example.org"})
        assert refused.status_code == 429


async def test_the_code_forms_keep_what_was_typed(portal, browser):
    async with browser(portal) as client:
        for path in ("/sign-in/code", "/sign-in/forgot"):
            answer = await post_form(client, path, {"contact": "not an address"})
            assert answer.status_code == 422
            assert 'value="not an address"' in answer.text
            assert 'aria-invalid="true"' in answer.text
        empty = await post_form(client, "/sign-in", {"email": "someone@example.org", "password": ""})
        assert empty.status_code == 422
        assert 'value="someone@example.org"' in empty.text
        assert "Enter your password." in empty.text


async def test_a_forgotten_password_by_code_ends_every_other_session(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as laptop, browser(portal) as tablet, browser(portal) as phone:
        for device in (laptop, tablet):
            assert (await sign_in(device, account["email"])).status_code == 303
            assert (await device.get("/home")).status_code == 200

        asked = await post_form(phone, "/sign-in/forgot", {"contact": account["email"]})
        assert asked.headers["location"] == "/sign-in/forgot/code"
        assert SENT in (await phone.get("/sign-in/forgot/code")).text
        code = await code_sent_to(portal, account["email"])
        assert (
            await post_form(phone, "/sign-in/forgot/code", {"code": "000000" if code != "000000" else "1"})
        ).status_code == 422
        checked = await post_form(phone, "/sign-in/forgot/code", {"code": code})
        assert checked.headers["location"] == "/sign-in/forgot/password"
        weak = await post_form(phone, "/sign-in/forgot/password", {"password": "short"})
        assert weak.status_code == 422
        done = await post_form(phone, "/sign-in/forgot/password", {"password": NEW_PASSWORD})
        assert done.status_code == 303
        assert done.headers["location"] == "/home"
        assert (await phone.get("/home")).status_code == 200

        for device in (laptop, tablet):
            ended = await device.get("/home")
            assert ended.status_code == 303, "signed out everywhere else"
            assert ended.headers["location"] == "/sign-in"

    changed = await accounts.find(str(account["public_id"]))
    assert verify_password(changed["password_hash"], NEW_PASSWORD)
    assert not verify_password(changed["password_hash"], PASSWORD)
    (notice,) = [
        message for message in await messages_to(portal, account["email"]) if "password was" in message.subject
    ]
    assert "just changed" in notice.text


async def test_a_forgotten_password_for_an_unknown_address_reads_the_same(portal, browser):
    async with browser(portal) as client:
        asked = await post_form(client, "/sign-in/forgot", {"contact": "3125550000"})
        assert asked.status_code == 303
        page = await client.get("/sign-in/forgot/code")
        assert "If an account uses +13125550000, we sent a code to it." in page.text
        assert (await post_form(client, "/sign-in/forgot/code", {"code": "123456"})).status_code == 422
        assert (await client.get("/sign-in/forgot/password")).headers["location"] == "/sign-in/forgot"


async def test_sign_out_ends_the_session_on_the_server(portal, clock, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(client, account["email"])
        key = session_key(client)
        assert await WebSession.exists().where(WebSession.key == key).run()
        out = await post_form(client, "/sign-out", {}, page="/home")
        assert out.status_code == 303
        assert out.headers["location"] == "/?signed-out=1"
        assert "You are signed out" in (await client.get(out.headers["location"])).text
        assert not await WebSession.exists().where(WebSession.key == key).run()

        # The old cookie, replayed, opens nothing.
        client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
        replayed = await client.get("/home")
        assert replayed.status_code == 303
        assert replayed.headers["location"] == "/sign-in"


async def test_sign_in_pages_in_spanish(portal, clock, browser):
    async with browser(portal) as client:
        client.cookies.set("lang", "es", domain=COOKIE_DOMAIN)
        page = await client.get("/sign-in")
        assert '<html lang="es">' in page.text
        assert "¿Olvidó su contraseña?" in page.text
        wrong = await sign_in(client, "nadie@example.org", "una contraseña equivocada")
        assert "no coinciden con ninguna cuenta" in wrong.text
