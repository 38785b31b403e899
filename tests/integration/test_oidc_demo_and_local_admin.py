"""The demo's staff sign-in through the sandbox's development OpenID provider, in process, and the local
administrator made by ``carefront admin create``.

The portal reaches the sandbox provider, which it serves itself, through ``httpx.ASGITransport``: the
same HTTP calls the demo makes to its own address.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import carefront_sandbox.hooks
import httpx
import pyotp
import pytest
from asgi_lifespan import LifespanManager
from carefront_sandbox import oidc as sandbox_oidc
from click.testing import CliRunner
from litestar import Litestar

from portal.app import SESSION_COOKIE, create_app
from portal.cli import DEMO_STAFF_OIDC, main
from portal.identity import oidc
from portal.identity.staff import create_local_administrator
from portal.identity.tables import Account, OidcLink
from portal.settings import Identity, OidcProvider, Settings

PUBLIC_URL = "https://testserver"
COOKIE_DOMAIN = "testserver.local"
SANDBOX_ISSUER = f"{PUBLIC_URL}/-/sandbox/oidc"
PASSWORD = "correct horse battery staple"
_addresses = itertools.count(1)


class Clock:
    """At the start of a 30-second step, so "the next code" is unambiguous; tests move it."""

    def __init__(self) -> None:
        now = int(datetime.now(UTC).timestamp())
        self.now = datetime.fromtimestamp(now - now % 30, UTC)

    def __call__(self) -> datetime:
        return self.now


@asynccontextmanager
async def demo_portal(settings: Settings, clock: Clock | None = None) -> AsyncIterator[Litestar]:
    """The portal configured as ``carefront demo`` configures it: staff sign in at the sandbox provider."""
    staff = OidcProvider(issuer=SANDBOX_ISSUER, name="the sandbox's demo identity provider", **DEMO_STAFF_OIDC)
    configured = replace(settings, identity=Identity(staff_oidc=staff))
    app = create_app(configured, plugins=[("sandbox", carefront_sandbox.hooks)], clock=clock)
    app.state[oidc.STATE_KEY] = oidc.OidcClient(transport=httpx.ASGITransport(app=app))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        yield app


@asynccontextmanager
async def browser(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    address = f"192.0.2.{next(_addresses) % 250 + 1}"
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
        yield client


def csrf_token(page: httpx.Response) -> str:
    return page.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]


async def session_of(app: Litestar, client: httpx.AsyncClient) -> dict[str, Any]:
    key = client.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN)
    raw = await app.stores.get("sessions").get(key) if key else None
    return json.loads(raw) if raw else {}


async def to_sandbox_sign_in(client: httpx.AsyncClient) -> httpx.Response:
    """Press "Sign in with the sandbox's demo sign-in": the provider's page listing the demo staff."""
    token = csrf_token(await client.get("/staff/sign-in"))
    started = await client.post("/staff/sign-in", headers={"x-csrftoken": token})
    assert started.status_code == 303
    assert started.headers["location"].startswith(f"{SANDBOX_ISSUER}/authorize?")
    page = await client.get(started.headers["location"])
    assert page.status_code == 200, page.text
    return page


def hidden_fields(page: httpx.Response) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))


async def choose(client: httpx.AsyncClient, page: httpx.Response, member: str) -> httpx.Response:
    """Press the button of one demo staff member: the redirect back to the portal's callback."""
    return await client.post(f"{SANDBOX_ISSUER}/authorize", data={**hidden_fields(page), "member": member})


async def test_the_demo_signs_staff_in_through_the_sandbox_provider(settings):
    async with demo_portal(settings) as app, browser(app) as client:
        page = await to_sandbox_sign_in(client)
        assert "Demo sign-in — not for production" in page.text
        seed_people = [m for m in sandbox_oidc.staff_members(7)]
        for member in seed_people:
            assert f"{member.given_name} {member.family_name}" in page.text
        assert {member.role for member in seed_people} == {"representative", "supervisor", "administrator"}

        back = await choose(client, page, "supervisor")
        assert back.status_code == 303
        assert back.headers["location"].startswith(f"{PUBLIC_URL}/staff/sign-in/callback?")
        answer = await client.get(back.headers["location"])
        assert (answer.status_code, answer.headers["location"]) == (303, "/staff")
        assert "Supervisor" in (await client.get("/staff")).text
        session = await session_of(app, client)
        assert session["realm"] == "staff"
        assert session["role"] == "supervisor"
        assert session["method"] == "oidc"
    link = (
        await OidcLink.select()
        .where((OidcLink.issuer == SANDBOX_ISSUER) & (OidcLink.subject == "sandbox-staff-supervisor"))
        .first()
        .run()
    )
    account = await Account.select().where(Account.id == link["account"]).first().run()
    assert account["realm"] == "staff"
    assert account["role"] == "supervisor"


async def test_the_sandbox_provider_publishes_its_metadata_and_keys(settings):
    async with demo_portal(settings) as app, browser(app) as client:
        discovery = (await client.get("/-/sandbox/oidc/.well-known/openid-configuration")).json()
        assert discovery["issuer"] == SANDBOX_ISSUER
        assert discovery["code_challenge_methods_supported"] == ["S256"]
        keys = (await client.get(discovery["jwks_uri"])).json()["keys"]
        assert [(key["kty"], key["alg"]) for key in keys] == [("RSA", "RS256")]
        assert "d" not in keys[0], "only the public half"
    key_file = settings.data_dir / sandbox_oidc.KEY_FILE
    assert key_file.stat().st_mode & 0o077 == 0, "the private key is readable by its owner only"


async def test_the_sandbox_provider_requires_pkce_and_its_own_origin(settings):
    async with demo_portal(settings) as app, browser(app) as client:
        page = await to_sandbox_sign_in(client)
        fields = hidden_fields(page)
        without_pkce = {name: value for name, value in fields.items() if not name.startswith("code_challenge")}
        refused = await client.get(f"{SANDBOX_ISSUER}/authorize?{urlencode(without_pkce)}")
        assert refused.status_code == 302
        assert parse_qs(urlsplit(refused.headers["location"]).query)["error"] == ["invalid_request"]

        elsewhere = fields | {"redirect_uri": "https://evil.example.org/staff/sign-in/callback"}
        refused = await client.get(f"{SANDBOX_ISSUER}/authorize?{urlencode(elsewhere)}")
        assert refused.status_code == 400
        assert "evil.example.org" not in refused.headers.get("location", "")


async def test_a_sandbox_code_works_once(settings):
    async with demo_portal(settings) as app, browser(app) as client:
        back = await choose(client, await to_sandbox_sign_in(client), "representative")
        code = parse_qs(urlsplit(back.headers["location"]).query)["code"][0]
        assert (await client.get(back.headers["location"])).status_code == 303
        again = await client.post(
            f"{SANDBOX_ISSUER}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{PUBLIC_URL}/staff/sign-in/callback",
            },
            auth=(DEMO_STAFF_OIDC["client_id"], DEMO_STAFF_OIDC["client_secret"]),
        )
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"


# --- the local administrator ------------------------------------------------------------------------


async def new_administrator(settings: Settings, now: datetime) -> tuple[str, str]:
    email = f"admin-{secrets.token_hex(4)}@riverside.example.org"
    enrolment = await create_local_administrator(
        settings, email=email, given_name="Ada", family_name="Admin", password=PASSWORD, now=now
    )
    return email, enrolment.secret


async def local_sign_in(client: httpx.AsyncClient, **form: str) -> httpx.Response:
    token = csrf_token(await client.get("/staff/sign-in/local"))
    return await client.post("/staff/sign-in/local", data={"_csrf_token": token, **form})


async def test_the_local_administrator_signs_in_with_password_and_code(settings):
    clock = Clock()
    async with demo_portal(settings, clock) as app:
        email, secret = await new_administrator(settings, clock.now - timedelta(minutes=1))
        async with browser(app) as client:
            code = pyotp.TOTP(secret).at(clock.now)
            signed_in = await local_sign_in(client, email=email.upper(), password=PASSWORD, code=code)
            assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/staff")
            session = await session_of(app, client)
            assert session["realm"] == "staff"
            assert session["role"] == "administrator"
            assert session["method"] == "password+totp"
            assert "Administrator" in (await client.get("/staff")).text


@pytest.mark.parametrize("wrong", ["password", "code", "both"])
async def test_the_local_administrator_needs_both_the_password_and_the_code(settings, wrong):
    clock = Clock()
    async with demo_portal(settings, clock) as app, browser(app) as client:
        email, secret = await new_administrator(settings, clock.now - timedelta(minutes=1))
        form = {"email": email, "password": PASSWORD, "code": pyotp.TOTP(secret).at(clock.now)}
        if wrong in {"password", "both"}:
            form["password"] = "not the password at all"
        if wrong in {"code", "both"}:
            form["code"] = f"{(int(form['code']) + 1) % 1_000_000:06d}"
        refused = await local_sign_in(client, **form)
        assert refused.status_code == 422
        assert "do not match an administrator" in refused.text
        assert email in refused.text, "the email address stays in the form"
        assert form["password"] not in refused.text, "the password does not"
        assert "realm" not in await session_of(app, client)


async def test_local_sign_in_answers_alike_for_an_unknown_address(settings):
    async with demo_portal(settings) as app, browser(app) as client:
        refused = await local_sign_in(client, email="nobody@riverside.example.org", password=PASSWORD, code="123456")
        assert refused.status_code == 422
        assert "do not match an administrator" in refused.text


async def test_local_sign_in_is_throttled_per_account(settings):
    clock = Clock()
    async with demo_portal(settings, clock) as app:
        email, _ = await new_administrator(settings, clock.now)
        statuses = []
        for _ in range(11):
            async with browser(app) as client:  # a new address each time: the account's own limit
                statuses.append((await local_sign_in(client, email=email, password="wrong", code="123456")).status_code)
        assert statuses[:10] == [422] * 10
        assert statuses[10] == 429


async def test_local_sign_in_reports_missing_fields(settings):
    async with demo_portal(settings) as app, browser(app) as client:
        refused = await local_sign_in(client, email="", password="", code="")
        assert refused.status_code == 422
        for message in ("Enter your email address.", "Enter your password.", "Enter the 6-digit code"):
            assert message in refused.text
        assert 'aria-invalid="true"' in refused.text


def test_admin_create_prints_the_enrolment_once(tmp_path):
    config = tmp_path / "carefront.toml"
    config.write_text("")
    environ = {
        "CAREFRONT_CONFIG": str(config),
        "CAREFRONT_SECRET_KEY": "s" * 40,
        "CAREFRONT_DATA_DIR": str(tmp_path / "var"),
        "CAREFRONT_PLUGINS": "sandbox",
    }
    runner = CliRunner()
    assert runner.invoke(main, ["migrate"], env=environ).exit_code == 0
    created = runner.invoke(
        main,
        ["admin", "create", "--email", "Ada@Riverside.example.org", "--name", "Ada King Lovelace", "--password-stdin"],
        env=environ,
        input=f"{PASSWORD}\n",
    )
    assert created.exit_code == 0, created.output
    key = re.search(r"key: ([A-Z2-7]+)", created.output).group(1)
    assert f"secret={key}" in created.output
    assert "otpauth://totp/" in created.output
    assert "/staff/sign-in/local" in created.output

    again = runner.invoke(
        main,
        ["admin", "create", "--email", "ada@riverside.example.org", "--name", "Ada Lovelace"],
        env=environ,
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert again.exit_code == 2
    assert "already has this email address" in again.output
    assert PASSWORD not in again.output, "the prompt hides what is typed"

    weak = runner.invoke(
        main,
        ["admin", "create", "--email", "bob@riverside.example.org", "--name", "Bob", "--password-stdin"],
        env=environ,
        input="short\n",
    )
    assert weak.exit_code == 2
    assert "at least 12 characters" in weak.output
