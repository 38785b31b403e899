"""Two-step verification (TOTP): turning it on and off, and the code asked after a password, with the
clock moved to make codes current, stale, or used twice."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest
from litestar import Litestar
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.identity import accounts, signing_in, two_step
from portal.identity.passwords import hash_password
from portal.identity.secrets_at_rest import decrypt
from portal.identity.tables import Account, SignInEvent

COOKIE_DOMAIN = "testserver.local"  # where httpx keeps the cookies testserver sets
PASSWORD = "correct horse battery staple"


@pytest.fixture
def clock(clock):
    """At the start of a 30-second step, so "a step later" is unambiguous."""
    now = int(clock.now.timestamp())
    clock.now = datetime.fromtimestamp(now - now % 30, UTC)
    return clock


async def new_patient(now: datetime, settings=None, secret: str | None = None) -> dict[str, Any]:
    tag = secrets.token_hex(5)
    account = await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"two-step-{tag}@example.org",
        email_verified_at=now,
        password_hash=hash_password(PASSWORD),
        given_name="Luis",
        family_name=f"Twostep{tag}",
        patient_id=f"ts-{tag}",
    )
    if secret is not None:
        code = pyotp.TOTP(secret).at(now - timedelta(minutes=5))
        check = await two_step.turn_on(settings, account, secret, code, now - timedelta(minutes=5))
        assert check.outcome is two_step.Outcome.ACCEPTED
        account = await accounts.find(str(account["public_id"]))
    return account


async def start_session(app: Litestar, client: httpx.AsyncClient, data: dict[str, Any]) -> str:
    key = secrets.token_hex(32)
    await app.stores.get("sessions").set(key, encode_json(data), expires_in=15 * 60)
    client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
    return key


async def sign_in(app: Litestar, client: httpx.AsyncClient, account: dict[str, Any], at: datetime) -> str:
    """A patient session that began at ``at``, as signing_in.complete leaves it."""
    data = {"account_id": str(account["public_id"]), "realm": "patient", "signed_in_at": at.isoformat()}
    return await start_session(app, client, data)


async def after_password(app: Litestar, client: httpx.AsyncClient, account: dict[str, Any], at: datetime) -> str:
    """The session signing_in.await_second_factor leaves after a right password."""
    data = {signing_in.PENDING: str(account["public_id"]), "pending_method": "password", "signed_in_at": at.isoformat()}
    return await start_session(app, client, data)


async def session_data(app: Litestar, client: httpx.AsyncClient) -> dict[str, Any]:
    raw = await app.stores.get("sessions").get(client.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN))
    return json.loads(raw) if raw else {}


async def csrf(client: httpx.AsyncClient, path: str) -> dict[str, str]:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return {"x-csrftoken": page.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]}


async def test_turning_two_step_on_with_the_app_s_first_code(portal, clock, settings, browser):
    account = await new_patient(clock.now)
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        headers = await csrf(client, "/account/security")
        started = await client.post("/account/security/two-step/start", headers=headers)
        assert (started.status_code, started.headers["location"]) == (303, "/account/security/two-step")

        page = await client.get("/account/security/two-step")
        assert page.status_code == 200
        assert '<svg xmlns="http://www.w3.org/2000/svg"' in page.text
        assert 'role="img" aria-label="QR code for your authenticator app"' in page.text
        key = re.search(r"<code>([A-Z2-7 ]+)</code>", page.text).group(1).replace(" ", "")
        assert len(key) == 32
        assert key not in json.dumps(await session_data(portal, client)), "the session keeps it encrypted"

        wrong = await client.post("/account/security/two-step", headers=headers, data={"code": "000000"})
        assert wrong.status_code == 422
        assert "That code did not work" in wrong.text
        assert key in wrong.text.replace(" ", ""), "the same key is shown again"
        empty = await client.post("/account/security/two-step", headers=headers, data={"code": ""})
        assert empty.status_code == 422
        assert "Enter the 6-digit code" in empty.text

        code = pyotp.TOTP(key).at(clock.now)
        done = await client.post("/account/security/two-step", headers=headers, data={"code": f"{code[:3]} {code[3:]}"})
        assert done.status_code == 200
        recovery = re.findall(r"<code>([A-Z2-9]{4}-[A-Z2-9]{4})</code>", done.text)
        assert len(set(recovery)) == 10, "ten recovery codes, shown once"
        assert 'href="/account/security?done=two-step-on"' in done.text
        overview = await client.get("/account/security?done=two-step-on")
        assert "Two-step verification is on" in overview.text
        assert "Turn off two-step verification" in overview.text
        assert (await client.get("/account/security/two-step", follow_redirects=False)).status_code == 303

    stored = await Account.select().where(Account.id == account["id"]).first().run()
    assert stored["totp_enabled_at"] == clock.now
    assert key not in stored["totp_secret"]
    assert decrypt(settings, stored["totp_secret"]) == key


async def test_turning_two_step_on_or_off_needs_a_recent_sign_in(portal, clock, settings, browser):
    account = await new_patient(clock.now, settings, secret=pyotp.random_base32())
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now - timedelta(minutes=11))
        headers = await csrf(client, "/account/security")
        for path in ("/account/security/two-step/start", "/account/security/two-step/off"):
            refused = await client.post(path, headers=headers)
            assert (refused.status_code, refused.headers["location"]) == (
                303,
                "/account/confirm?next=%2Faccount%2Fsecurity",
            )
        assert (await Account.select().where(Account.id == account["id"]).first().run())["totp_enabled_at"]

        confirmed = await client.post(
            "/account/confirm", headers=headers, data={"password": PASSWORD, "next": "/account/security"}
        )
        assert confirmed.status_code == 303
        off = await client.post("/account/security/two-step/off", headers=headers)
        assert (off.status_code, off.headers["location"]) == (303, "/account/security?done=two-step-off")
    stored = await Account.select().where(Account.id == account["id"]).first().run()
    assert (stored["totp_secret"], stored["totp_enabled_at"]) == (None, None)


async def test_signing_in_with_a_password_then_the_code(portal, clock, settings, browser):
    secret = pyotp.random_base32()
    account = await new_patient(clock.now, settings, secret=secret)
    async with browser(portal) as client:
        await after_password(portal, client, account, clock.now)
        assert (await client.get("/account/security", follow_redirects=False)).status_code == 303, "not signed in yet"
        headers = await csrf(client, "/sign-in/second-factor")
        wrong = await client.post("/sign-in/second-factor", headers=headers, data={"code": "123456"})
        assert wrong.status_code == 422
        assert 'aria-invalid="true"' in wrong.text

        # 45 seconds later the code shown at the start is one step old: still accepted.
        code = pyotp.TOTP(secret).at(clock.now)
        clock.now += timedelta(seconds=45)
        done = await client.post("/sign-in/second-factor", headers=headers, data={"code": code})
        assert done.status_code == 303
        session = await session_data(portal, client)
        assert session["account_id"] == str(account["public_id"])
        assert session["realm"] == "patient"
        assert session["method"] == "password+totp"
        assert signing_in.PENDING not in session
        assert (await client.get("/account/security")).status_code == 200

    events = await SignInEvent.select().where(SignInEvent.account == account["id"]).order_by(SignInEvent.id).run()
    assert [(event["method"], event["outcome"]) for event in events] == [
        ("totp", "wrong_secret"),
        ("password+totp", "succeeded"),
    ]


async def test_a_code_works_once(portal, clock, settings, browser):
    secret = pyotp.random_base32()
    account = await new_patient(clock.now, settings, secret=secret)
    code = pyotp.TOTP(secret).at(clock.now)
    async with browser(portal) as client:
        await after_password(portal, client, account, clock.now)
        headers = await csrf(client, "/sign-in/second-factor")
        assert (await client.post("/sign-in/second-factor", headers=headers, data={"code": code})).status_code == 303
    clock.now += timedelta(seconds=20)
    async with browser(portal) as attacker:
        await after_password(portal, attacker, account, clock.now)
        headers = await csrf(attacker, "/sign-in/second-factor")
        replay = await attacker.post("/sign-in/second-factor", headers=headers, data={"code": code})
        assert replay.status_code == 422
        assert "account_id" not in await session_data(portal, attacker)
        fresh = pyotp.TOTP(secret).at(clock.now + timedelta(seconds=30))
        assert (await attacker.post("/sign-in/second-factor", headers=headers, data={"code": fresh})).status_code == 303


async def test_codes_more_than_one_step_away_are_refused(settings):
    secret = pyotp.random_base32()
    now = datetime(2026, 11, 22, 9, 0, 15, tzinfo=UTC)
    totp = pyotp.TOTP(secret)
    assert two_step.matching_step(secret, totp.at(now), now) == int(now.timestamp()) // 30
    assert two_step.matching_step(secret, totp.at(now - timedelta(seconds=30)), now) is not None
    assert two_step.matching_step(secret, totp.at(now + timedelta(seconds=30)), now) is not None
    assert two_step.matching_step(secret, totp.at(now - timedelta(seconds=60)), now) is None
    assert two_step.matching_step(secret, totp.at(now + timedelta(seconds=60)), now) is None
    assert two_step.matching_step(secret, "12345", now) is None
    assert two_step.matching_step(secret, "abcdef", now) is None


async def test_wrong_codes_are_limited_per_account(portal, clock, settings, browser):
    secret = pyotp.random_base32()
    account = await new_patient(clock.now, settings, secret=secret)
    async with browser(portal) as client:
        await after_password(portal, client, account, clock.now)
        headers = await csrf(client, "/sign-in/second-factor")
        for _ in range(5):
            wrong = await client.post("/sign-in/second-factor", headers=headers, data={"code": "000000"})
            assert wrong.status_code == 422
    async with browser(portal) as elsewhere:
        # From another address too: the limit is the account's.
        await after_password(portal, elsewhere, account, clock.now)
        headers = await csrf(elsewhere, "/sign-in/second-factor")
        right = pyotp.TOTP(secret).at(clock.now)
        throttled = await elsewhere.post("/sign-in/second-factor", headers=headers, data={"code": right})
        assert throttled.status_code == 429
        assert "Too many tries" in throttled.text

        clock.now += timedelta(minutes=9)
        await after_password(portal, elsewhere, account, clock.now)
        clock.now += timedelta(minutes=7)
        right = pyotp.TOTP(secret).at(clock.now)
        assert (
            await elsewhere.post("/sign-in/second-factor", headers=headers, data={"code": right})
        ).status_code == 303
    outcomes = await SignInEvent.select(SignInEvent.outcome).where(SignInEvent.account == account["id"]).run()
    assert [row["outcome"] for row in outcomes].count("throttled") == 1


async def test_wrong_codes_are_limited_per_address(portal, clock, settings, browser):
    async with browser(portal) as client:
        for _ in range(6):
            account = await new_patient(clock.now, settings, secret=pyotp.random_base32())
            await after_password(portal, client, account, clock.now)
            headers = await csrf(client, "/sign-in/second-factor")
            for _ in range(5):
                answer = await client.post("/sign-in/second-factor", headers=headers, data={"code": "000000"})
                assert answer.status_code == 422
        secret = pyotp.random_base32()
        fresh = await new_patient(clock.now, settings, secret=secret)
        await after_password(portal, client, fresh, clock.now)
        right = pyotp.TOTP(secret).at(clock.now)
        assert (await client.post("/sign-in/second-factor", headers=headers, data={"code": right})).status_code == 429


async def test_a_pending_sign_in_lasts_ten_minutes(portal, clock, settings, browser):
    secret = pyotp.random_base32()
    account = await new_patient(clock.now, settings, secret=secret)
    async with browser(portal) as client:
        assert (await client.get("/sign-in/second-factor", follow_redirects=False)).status_code == 303
        await after_password(portal, client, account, clock.now)
        headers = await csrf(client, "/sign-in/second-factor")
        clock.now += timedelta(minutes=10, seconds=30)
        late = await client.post(
            "/sign-in/second-factor", headers=headers, data={"code": pyotp.TOTP(secret).at(clock.now)}
        )
        assert late.status_code == 303
        assert "account_id" not in await session_data(portal, client)


async def test_the_second_factor_page_in_spanish(portal, clock, settings, browser):
    account = await new_patient(clock.now, settings, secret=pyotp.random_base32())
    async with browser(portal) as client:
        await after_password(portal, client, account, clock.now)
        page = await client.get("/sign-in/second-factor", headers={"accept-language": "es"})
        assert page.status_code == 200
        assert "Código de la aplicación" in page.text


async def test_a_recovery_code_signs_in_once(portal, clock, settings, browser):
    account = await new_patient(clock.now, settings, secret=pyotp.random_base32())
    codes = await two_step.new_recovery_codes(settings, account, clock.now)
    assert len(set(codes)) == two_step.RECOVERY_CODES
    assert await two_step.recovery_codes_left(account) == 10
    async with browser(portal) as client:
        await after_password(portal, client, account, clock.now)
        headers = await csrf(client, "/sign-in/second-factor")
        # Typed by hand: lower case and without the dash still counts.
        done = await client.post(
            "/sign-in/second-factor", headers=headers, data={"code": codes[0].lower().replace("-", "")}
        )
        assert done.status_code == 303
        assert (await session_data(portal, client))["method"] == "password+recovery"
    assert await two_step.recovery_codes_left(account) == 9
    async with browser(portal) as again:
        await after_password(portal, again, account, clock.now)
        headers = await csrf(again, "/sign-in/second-factor")
        reused = await again.post("/sign-in/second-factor", headers=headers, data={"code": codes[0]})
        assert reused.status_code == 422
        assert "account_id" not in await session_data(portal, again)


async def test_new_recovery_codes_retire_the_old_ones(portal, clock, settings, browser):
    account = await new_patient(clock.now, settings, secret=pyotp.random_base32())
    old = await two_step.new_recovery_codes(settings, account, clock.now)
    async with browser(portal) as client:
        await sign_in(portal, client, account, clock.now)
        headers = await csrf(client, "/account/security")
        page = await client.post("/account/security/two-step/recovery-codes", headers=headers)
        assert page.status_code == 200
        new = re.findall(r"<code>([A-Z2-9]{4}-[A-Z2-9]{4})</code>", page.text)
        assert len(new) == 10
        assert not set(new) & set(old)
    async with browser(portal) as attacker:
        await after_password(portal, attacker, account, clock.now)
        headers = await csrf(attacker, "/sign-in/second-factor")
        assert (
            await attacker.post("/sign-in/second-factor", headers=headers, data={"code": old[1]})
        ).status_code == 422


async def test_turning_two_step_off_removes_the_recovery_codes(settings, clock):
    account = await new_patient(clock.now, settings, secret=pyotp.random_base32())
    await two_step.new_recovery_codes(settings, account, clock.now)
    await two_step.turn_off(account)
    assert await two_step.recovery_codes_left(account) == 0
