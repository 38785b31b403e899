"""Staff and patient single sign-on against a real OpenID provider (npm ``oidc-provider``), end to end.

The tests start the provider themselves (tests/oidc/server.mjs on 127.0.0.1, two issuers sharing one
key) and stop it at the end. A "browser" is an httpx client that talks to the portal in process and to
the provider over real HTTP, following the redirects between them; the portal reaches the provider
over real HTTP too, through a transport a test can make rewrite the token endpoint's answer.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import re
import secrets
import select
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import carefront_sandbox.hooks
import httpx
import pyotp
import pytest
from asgi_lifespan import LifespanManager
from authlib.integrations.httpx_client import AsyncOAuth2Client
from litestar import Litestar
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE, create_app
from portal.identity import accounts, oidc
from portal.identity.passwords import hash_password
from portal.identity.tables import Account, OidcLink, SignInEvent
from portal.settings import Identity, OidcProvider, Settings

OIDC_DIR = Path(__file__).resolve().parents[1] / "oidc"
PUBLIC_URL = "https://testserver"
COOKIE_DOMAIN = "testserver.local"  # where httpx keeps the cookies testserver sets
STAFF_CALLBACK = f"{PUBLIC_URL}/staff/sign-in/callback"
PATIENT_CALLBACK = f"{PUBLIC_URL}/sign-in/oidc/callback"
STAFF_CLIENT = {"client_id": "carefront-staff", "client_secret": "staff-secret-" + "x" * 24}
PATIENT_CLIENT = {"client_id": "carefront-patients", "client_secret": "patient-secret-" + "y" * 24}
ROLES = {
    "carefront-reps": "representative",
    "carefront-supervisors": "supervisor",
    "carefront-admins": "administrator",
}
_addresses = itertools.count(1)


@dataclass(frozen=True)
class RealProvider:
    issuer: str
    other_issuer: str
    """Another issuer with the same clients and the same signing key: its tokens must be refused."""


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture(scope="session")
def real_provider() -> Iterator[RealProvider]:
    """oidc-provider on two free loopback ports, started for the session and stopped at its end."""
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail(f"npm packages missing: run `npm ci` in {OIDC_DIR} (.ci/bootstrap does)")
    config = {
        "ports": _free_ports(2),
        "clients": [
            {**STAFF_CLIENT, "redirect_uris": [STAFF_CALLBACK]},
            {**PATIENT_CLIENT, "redirect_uris": [PATIENT_CALLBACK]},
        ],
    }
    server = subprocess.Popen(
        ["node", str(OIDC_DIR / "server.mjs")],
        cwd=OIDC_DIR,
        env={**os.environ, "OIDC_TEST_CONFIG": json.dumps(config)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready, _, _ = select.select([server.stdout], [], [], 30)
        line = server.stdout.readline() if ready else ""
        if not line:
            server.kill()
            pytest.fail(f"the OpenID provider did not start: {server.stderr.read()}")
        started = json.loads(line)
        yield RealProvider(started["issuer"], started["other_issuer"])
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


class Clock:
    """Real time, which a test may move forward."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


class TokenAnswers(httpx.AsyncBaseTransport):
    """Real HTTP to the provider; a test may rewrite what its token endpoint answers, and sees every answer."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.rewrite: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.seen: list[dict[str, Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.real.handle_async_request(request)
        if not request.url.path.endswith("/token"):
            return response
        await response.aread()
        answer = json.loads(response.content)
        self.seen.append(answer)
        if self.rewrite is None or response.status_code != 200:
            return httpx.Response(response.status_code, json=answer)
        return httpx.Response(200, json=self.rewrite(answer))

    async def aclose(self) -> None:
        await self.real.aclose()


@dataclass
class Portal:
    app: Litestar
    clock: Clock
    token_answers: TokenAnswers
    provider: RealProvider
    settings: Settings
    browsers: list[httpx.AsyncClient] = field(default_factory=list)

    @asynccontextmanager
    async def browser(self) -> AsyncIterator[httpx.AsyncClient]:
        """A browser at an address of its own (per-address limits of other tests do not interfere)."""
        address = f"203.0.113.{next(_addresses) % 250 + 1}"
        provider_hosts = {
            urlunsplit((*urlsplit(url)[:2], "", "", "")) for url in (self.provider.issuer, self.provider.other_issuer)
        }
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, client=(address, 40000)),
            mounts={host: httpx.AsyncHTTPTransport() for host in provider_hosts},
            base_url=PUBLIC_URL,
        ) as client:
            yield client


def identity_settings(settings: Settings, provider: RealProvider, **staff: Any) -> Settings:
    return replace(
        settings,
        identity=Identity(
            staff_oidc=OidcProvider(
                issuer=provider.issuer,
                name="Riverside Workforce",
                scopes=("openid", "email", "profile", "groups"),
                roles=ROLES,
                **STAFF_CLIENT,
                **staff,
            ),
            patient_oidc=OidcProvider(issuer=provider.issuer, name="Riverside MyChart", **PATIENT_CLIENT),
        ),
    )


@asynccontextmanager
async def running(settings: Settings, provider: RealProvider, **staff: Any) -> AsyncIterator[Portal]:
    clock = Clock()
    configured = identity_settings(settings, provider, **staff)
    app = create_app(configured, plugins=[("sandbox", carefront_sandbox.hooks)], clock=clock)
    token_answers = TokenAnswers()
    app.state[oidc.STATE_KEY] = oidc.OidcClient(transport=token_answers)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        yield Portal(app, clock, token_answers, provider, configured)
    await token_answers.aclose()


@pytest.fixture
async def portal(settings, real_provider) -> AsyncIterator[Portal]:
    async with running(settings, real_provider) as started:
        yield started


# --- driving the browser ---------------------------------------------------------------------------


async def csrf_header(browser: httpx.AsyncClient, path: str = "/staff/sign-in") -> dict[str, str]:
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    return {"x-csrftoken": page.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]}


async def start(browser: httpx.AsyncClient, start_path: str = "/staff/sign-in") -> str:
    """Press the sign-in button: the provider's authorization URL the portal redirects to."""
    response = await browser.post(start_path, headers=await csrf_header(browser))
    assert response.status_code == 303, response.text
    return response.headers["location"]


async def log_in_at_provider(
    browser: httpx.AsyncClient, authorization_url: str, sub: str, claims: dict[str, Any], amr: str = "pwd,otp"
) -> str:
    """Sign in at the provider's interaction as ``sub``: the callback URL it sends the browser back to."""
    interaction = await browser.get(authorization_url, follow_redirects=True)
    assert interaction.status_code == 200, interaction.text
    uid = interaction.json()["uid"]
    issuer = f"{interaction.url.scheme}://{interaction.url.netloc.decode()}"
    finished = await browser.post(
        f"{issuer}/interaction/{uid}/login", data={"sub": sub, "claims": json.dumps(claims), "amr": amr}
    )
    assert finished.status_code == 303, finished.text
    resumed = await browser.get(finished.headers["location"])
    assert resumed.status_code == 303, resumed.text
    return resumed.headers["location"]


async def sign_in_through_provider(
    browser: httpx.AsyncClient,
    sub: str,
    claims: dict[str, Any],
    amr: str = "pwd,otp",
    start_path: str = "/staff/sign-in",
) -> httpx.Response:
    """The whole round trip; the portal's answer to the callback (not followed)."""
    callback = await log_in_at_provider(browser, await start(browser, start_path), sub, claims, amr)
    return await browser.get(callback)


def staff_claims(group: str | None = "carefront-reps", **more: Any) -> dict[str, Any]:
    tag = secrets.token_hex(4)
    claims = {"email": f"staff-{tag}@riverside.example.org", "given_name": "Robin", "family_name": f"Reyes{tag}"}
    if group:
        claims["groups"] = [group, "everyone"]
    return claims | more


async def session_of(portal: Portal, browser: httpx.AsyncClient) -> dict[str, Any]:
    key = browser.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN)
    raw = await portal.app.stores.get("sessions").get(key) if key else None
    return json.loads(raw) if raw else {}


async def linked(issuer: str, sub: str) -> dict[str, Any] | None:
    link = await OidcLink.select().where((OidcLink.issuer == issuer) & (OidcLink.subject == sub)).first().run()
    if link is None:
        return None
    return await Account.select().where(Account.id == link["account"]).first().run()


def new_sub() -> str:
    return f"user-{uuid.uuid4()}"


# --- staff ------------------------------------------------------------------------------------------


async def test_staff_sign_in_through_the_provider_opens_a_staff_session(portal):
    sub = new_sub()
    async with portal.browser() as browser:
        authorization_url = await start(browser)
        query = parse_qs(urlsplit(authorization_url).query)
        assert authorization_url.startswith(f"{portal.provider.issuer}/auth?")
        assert query["code_challenge_method"] == ["S256"]
        assert query["code_challenge"]
        assert query["client_id"] == [STAFF_CLIENT["client_id"]]
        flow = (await session_of(portal, browser))["staff_oidc_flow"]
        assert flow["verifier"] not in authorization_url, "the PKCE verifier stays on the server"

        callback = await log_in_at_provider(browser, authorization_url, sub, staff_claims())
        answer = await browser.get(callback)
        assert (answer.status_code, answer.headers["location"]) == (303, "/staff")
        home = await browser.get("/staff")
        assert home.status_code == 200
        assert "Representative" in home.text
        assert "/-/plugins" in home.text

        session = await session_of(portal, browser)
        account = await linked(portal.provider.issuer, sub)
        assert account is not None
        assert account["realm"] == "staff"
        assert account["role"] == "representative"
        assert session["realm"] == "staff"
        assert session["role"] == "representative"
        assert session["account_id"] == str(account["public_id"])
        assert session["method"] == "oidc"
        assert "staff_oidc_flow" not in session

        signed_out = await browser.post("/staff/sign-out", headers=await csrf_header(browser, "/staff"))
        assert (signed_out.status_code, signed_out.headers["location"]) == (303, "/staff/sign-in")
        assert (await browser.get("/staff")).status_code in {303, 401}


async def test_the_role_is_read_again_at_every_sign_in(portal):
    sub = new_sub()
    async with portal.browser() as browser:
        first = await sign_in_through_provider(browser, sub, staff_claims("carefront-reps"))
        assert first.status_code == 303
    async with portal.browser() as browser:
        both = staff_claims("carefront-reps") | {"groups": ["carefront-reps", "carefront-supervisors"]}
        again = await sign_in_through_provider(browser, sub, both)
        assert again.status_code == 303
        assert (await session_of(portal, browser))["role"] == "supervisor"
    assert (await linked(portal.provider.issuer, sub))["role"] == "supervisor"
    assert await OidcLink.count().where(OidcLink.subject == sub).run() == 1


async def test_no_mapped_group_no_entry(portal):
    sub = new_sub()
    async with portal.browser() as browser:
        refused = await sign_in_through_provider(browser, sub, staff_claims(group="kitchen-staff"))
        assert refused.status_code == 403
        assert "not in a group that Carefront knows" in refused.text
        assert "realm" not in await session_of(portal, browser)
        assert (await browser.get("/staff")).status_code in {303, 401}
    assert await linked(portal.provider.issuer, sub) is None, "no account for someone without a role"


async def test_losing_the_group_takes_the_role_away(portal):
    sub = new_sub()
    async with portal.browser() as browser:
        assert (await sign_in_through_provider(browser, sub, staff_claims("carefront-admins"))).status_code == 303
    async with portal.browser() as browser:
        assert (await sign_in_through_provider(browser, sub, staff_claims(group=None))).status_code == 403
    account = await linked(portal.provider.issuer, sub)
    assert account["role"] is None
    events = await SignInEvent.select().where(SignInEvent.account == account["id"]).run()
    assert [event["outcome"] for event in events] == ["succeeded", "refused"]


async def test_a_sign_in_without_a_second_factor_is_refused(portal):
    async with portal.browser() as browser:
        refused = await sign_in_through_provider(browser, new_sub(), staff_claims(), amr="pwd")
        assert refused.status_code == 403
        assert "did not use a second factor" in refused.text
        assert "realm" not in await session_of(portal, browser)


async def test_staff_sign_in_replaces_a_patient_session(portal):
    async with portal.browser() as browser:
        key = secrets.token_hex(32)
        patient = {"account_id": str(uuid.uuid4()), "realm": "patient", "acting_for": "pt-1", "access": "self"}
        await portal.app.stores.get("sessions").set(key, encode_json(patient), expires_in=15 * 60)
        browser.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
        assert (await sign_in_through_provider(browser, new_sub(), staff_claims())).status_code == 303
        assert await portal.app.stores.get("sessions").get(key) is None, "the patient session ended"
        session = await session_of(portal, browser)
        assert session["realm"] == "staff"
        assert "acting_for" not in session


async def test_staff_cannot_open_patient_pages_and_patients_cannot_open_staff_pages(portal):
    async with portal.browser() as browser:
        assert (await sign_in_through_provider(browser, new_sub(), staff_claims())).status_code == 303
        assert (await browser.get("/home")).status_code == 403
    async with portal.browser() as browser:
        key = secrets.token_hex(32)
        patient = {"account_id": str(uuid.uuid4()), "realm": "patient", "acting_for": "pt-1", "access": "self"}
        await portal.app.stores.get("sessions").set(key, encode_json(patient), expires_in=15 * 60)
        browser.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
        assert (await browser.get("/staff")).status_code == 403
        assert (await browser.get("/-/plugins")).status_code == 403


async def test_carefront_s_own_totp_when_configured(settings, real_provider):
    sub = new_sub()
    async with running(settings, real_provider, mfa="totp") as portal, portal.browser() as browser:
        after_provider = await sign_in_through_provider(browser, sub, staff_claims(), amr="pwd")
        assert (after_provider.status_code, after_provider.headers["location"]) == (303, "/staff/sign-in/code")
        assert (await browser.get("/staff")).status_code in {303, 401}, "no staff session before the code"

        enrol = await browser.get("/staff/sign-in/code")
        assert enrol.status_code == 200
        assert "Set up your authenticator app" in enrol.text
        key = re.search(r"<code>([A-Z2-7 ]+)</code>", enrol.text).group(1).replace(" ", "")
        headers = {"x-csrftoken": enrol.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]}
        wrong = await browser.post("/staff/sign-in/code", data={"code": "000000"}, headers=headers)
        assert wrong.status_code == 422
        assert "That code did not work" in wrong.text
        right = await browser.post(
            "/staff/sign-in/code", data={"code": pyotp.TOTP(key).at(portal.clock())}, headers=headers
        )
        assert (right.status_code, right.headers["location"]) == (303, "/staff")
        session = await session_of(portal, browser)
        assert session["realm"] == "staff"
        assert session["method"] == "oidc+totp"

    async with running(settings, real_provider, mfa="totp") as portal, portal.browser() as browser:
        portal.clock.ahead = timedelta(seconds=60)  # the next code: each works once
        assert (await sign_in_through_provider(browser, sub, staff_claims())).status_code == 303
        page = await browser.get("/staff/sign-in/code")
        assert "Enter the code from your app" in page.text
        assert "<code>" not in page.text
        headers = {"x-csrftoken": page.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]}
        right = await browser.post(
            "/staff/sign-in/code", data={"code": pyotp.TOTP(key).at(portal.clock())}, headers=headers
        )
        assert (right.status_code, right.headers["location"]) == (303, "/staff")


async def test_the_code_page_needs_a_pending_staff_sign_in(portal):
    async with portal.browser() as browser:
        page = await browser.get("/staff/sign-in/code")
        assert (page.status_code, page.headers["location"]) == (303, "/staff/sign-in")


# --- what must fail, and how ------------------------------------------------------------------------


def failure_logged(caplog: pytest.LogCaptureFixture, check: str, *secrets_: str) -> None:
    """The portal's log names the failed check, and no token or claim value (httpx's own lines aside:
    the test browser's requests carry codes in their URLs, as a browser's would)."""
    portal_log = "\n".join(record.getMessage() for record in caplog.records if record.name.startswith("carefront"))
    assert f"check={check} failed" in portal_log, portal_log
    for value in secrets_:
        assert value not in portal_log, "a token or claim value reached the log"


async def assert_friendly_failure(
    answer: httpx.Response, portal: Portal, browser: httpx.AsyncClient, *, signed_in_before: bool = False
) -> None:
    assert answer.status_code == 400, answer.text
    assert "Sign-in did not complete" in answer.text
    assert "Please try again" in answer.text
    if not signed_in_before:
        assert "realm" not in await session_of(portal, browser)


def b64(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


async def test_a_tampered_id_token_signature_is_refused(portal, caplog):
    caplog.set_level(logging.INFO)
    sub = new_sub()

    def tamper(answer: dict[str, Any]) -> dict[str, Any]:
        header, payload, signature = answer["id_token"].split(".")
        flipped = ("A" if signature[10] != "A" else "B").join((signature[:10], signature[11:]))
        return answer | {"id_token": f"{header}.{payload}.{flipped}"}

    portal.token_answers.rewrite = tamper
    async with portal.browser() as browser:
        answer = await sign_in_through_provider(browser, sub, staff_claims())
        await assert_friendly_failure(answer, portal, browser)
    id_token = portal.token_answers.seen[-1]["id_token"]
    failure_logged(caplog, "signature", id_token, sub)
    assert await linked(portal.provider.issuer, sub) is None


async def id_token_from(
    issuer: str, client: dict[str, str], redirect_uri: str, sub: str, claims: dict[str, Any]
) -> str:
    """Sign in at ``issuer`` as ``client`` itself (not through the portal) and keep the id_token."""
    verifier = secrets.token_urlsafe(48)
    async with (
        httpx.AsyncClient() as browser,
        AsyncOAuth2Client(
            scope="openid email profile groups", redirect_uri=redirect_uri, code_challenge_method="S256", **client
        ) as relying_party,
    ):
        url, _ = relying_party.create_authorization_url(f"{issuer}/auth", code_verifier=verifier, nonce="n-0")
        callback = await log_in_at_provider(browser, url, sub, claims)
        code = parse_qs(urlsplit(callback).query)["code"][0]
        token = await relying_party.fetch_token(f"{issuer}/token", code=code, code_verifier=verifier)
    return token["id_token"]


async def test_an_id_token_for_another_client_is_refused(portal, caplog):
    sub = new_sub()
    other_client_token = await id_token_from(
        portal.provider.issuer, PATIENT_CLIENT, PATIENT_CALLBACK, sub, staff_claims()
    )
    assert b64(other_client_token.split(".")[1])["aud"] == PATIENT_CLIENT["client_id"]
    portal.token_answers.rewrite = lambda answer: answer | {"id_token": other_client_token}
    async with portal.browser() as browser:
        answer = await sign_in_through_provider(browser, sub, staff_claims())
        await assert_friendly_failure(answer, portal, browser)
    failure_logged(caplog, "audience", other_client_token, sub)


async def test_an_id_token_from_another_issuer_is_refused(portal, caplog):
    sub = new_sub()
    mixed_up = await id_token_from(portal.provider.other_issuer, STAFF_CLIENT, STAFF_CALLBACK, sub, staff_claims())
    portal.token_answers.rewrite = lambda answer: answer | {"id_token": mixed_up}
    async with portal.browser() as browser:
        answer = await sign_in_through_provider(browser, sub, staff_claims())
        await assert_friendly_failure(answer, portal, browser)
    failure_logged(caplog, "issuer", mixed_up, sub)


async def test_a_replayed_authorization_code_is_refused_by_the_provider(portal, caplog):
    async with portal.browser() as browser, portal.browser() as attacker:
        callback = await log_in_at_provider(browser, await start(browser), new_sub(), staff_claims())
        assert (await browser.get(callback)).status_code == 303
        # An attacker who saw the code begins a sign-in of their own (so the state matches) and replays it.
        await start(attacker)
        state = (await session_of(portal, attacker))["staff_oidc_flow"]["state"]
        query = parse_qs(urlsplit(callback).query)
        replay = f"/staff/sign-in/callback?{urlencode({'code': query['code'][0], 'state': state})}"
        answer = await attacker.get(replay)
        await assert_friendly_failure(answer, portal, attacker)
    assert portal.token_answers.seen[-1]["error"] == "invalid_grant"
    failure_logged(caplog, "token-exchange", query["code"][0])


async def test_a_callback_used_twice_is_refused(portal, caplog):
    async with portal.browser() as browser:
        callback = await log_in_at_provider(browser, await start(browser), new_sub(), staff_claims())
        assert (await browser.get(callback)).status_code == 303
        await assert_friendly_failure(await browser.get(callback), portal, browser, signed_in_before=True)
    failure_logged(caplog, "state")


async def test_an_expired_id_token_is_refused(portal, caplog):
    async with portal.browser() as browser:
        callback = await log_in_at_provider(browser, await start(browser), new_sub(), staff_claims())
        # The provider's id_tokens live two minutes; the portal allows one more for clock skew.
        portal.clock.ahead = timedelta(minutes=5)
        answer = await browser.get(callback)
        await assert_friendly_failure(answer, portal, browser)
    failure_logged(caplog, "expiry")


async def test_a_state_that_does_not_match_is_refused(portal, caplog):
    async with portal.browser() as browser:
        callback = await log_in_at_provider(browser, await start(browser), new_sub(), staff_claims())
        query = parse_qs(urlsplit(callback).query)
        forged = f"/staff/sign-in/callback?{urlencode({'code': query['code'][0], 'state': secrets.token_urlsafe(32)})}"
        await assert_friendly_failure(await browser.get(forged), portal, browser)
    assert portal.token_answers.seen == [], "the code was not even exchanged"
    failure_logged(caplog, "state", query["code"][0])


async def test_a_callback_in_a_browser_that_did_not_start_the_sign_in_is_refused(portal, caplog):
    async with portal.browser() as victim, portal.browser() as attacker:
        callback = await log_in_at_provider(attacker, await start(attacker), new_sub(), staff_claims())
        await assert_friendly_failure(await victim.get(callback), portal, victim)
    failure_logged(caplog, "state")


async def test_a_nonce_that_does_not_match_is_refused(portal, caplog):
    async with portal.browser() as browser:
        authorization_url = await start(browser)
        parts = urlsplit(authorization_url)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        swapped = parts._replace(query=urlencode(query | {"nonce": secrets.token_urlsafe(32)})).geturl()
        callback = await log_in_at_provider(browser, swapped, new_sub(), staff_claims())
        await assert_friendly_failure(await browser.get(callback), portal, browser)
    failure_logged(caplog, "nonce")


async def test_an_authorization_request_without_pkce_is_refused(portal, caplog):
    async with portal.browser() as browser:
        parts = urlsplit(await start(browser))
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        without_pkce = {name: value for name, value in query.items() if not name.startswith("code_challenge")}
        back = await browser.get(parts._replace(query=urlencode(without_pkce)).geturl())
        # The provider refuses and sends the browser back with the error.
        assert back.status_code == 303
        assert back.headers["location"].startswith(STAFF_CALLBACK)
        assert parse_qs(urlsplit(back.headers["location"]).query)["error"] == ["invalid_request"]
        await assert_friendly_failure(await browser.get(back.headers["location"]), portal, browser)
    failure_logged(caplog, "provider-error")


async def test_a_code_bound_to_another_pkce_challenge_is_refused(portal, caplog):
    async with portal.browser() as browser:
        parts = urlsplit(await start(browser))
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        attackers = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
        swapped = parts._replace(query=urlencode(query | {"code_challenge": attackers})).geturl()
        callback = await log_in_at_provider(browser, swapped, new_sub(), staff_claims())
        await assert_friendly_failure(await browser.get(callback), portal, browser)
    assert portal.token_answers.seen[-1]["error"] == "invalid_grant"
    failure_logged(caplog, "token-exchange")


async def test_a_provider_that_does_not_answer_gives_an_unavailable_page(settings, real_provider):
    down = RealProvider(issuer=f"http://127.0.0.1:{_free_ports(1)[0]}", other_issuer=real_provider.other_issuer)
    async with running(settings, down) as portal, portal.browser() as browser:
        answer = await browser.post("/staff/sign-in", headers=await csrf_header(browser))
        assert answer.status_code == 503
        assert "not answering" in answer.text


# --- patients ---------------------------------------------------------------------------------------


async def new_patient(now: datetime, email: str | None = None) -> dict[str, Any]:
    tag = secrets.token_hex(5)
    return await accounts.create(
        now,
        realm="patient",
        email=email or f"sso-{tag}@example.org",
        email_verified_at=now,
        password_hash=hash_password("correct horse battery staple"),
        given_name="Ana",
        family_name=f"Sso{tag}",
        patient_id=f"sso-{tag}",
    )


async def patient_session(portal: Portal, browser: httpx.AsyncClient, account: dict[str, Any], at: datetime) -> str:
    """The session signing_in.complete leaves for a patient who signed in at ``at``."""
    key = secrets.token_hex(32)
    data = {
        "account_id": str(account["public_id"]),
        "realm": "patient",
        "acting_for": account["patient_id"],
        "access": "self",
        "signed_in_at": at.isoformat(),
    }
    await portal.app.stores.get("sessions").set(key, encode_json(data), expires_in=15 * 60)
    browser.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
    return key


async def patient_sign_in(browser: httpx.AsyncClient, sub: str, claims: dict[str, Any]) -> httpx.Response:
    return await sign_in_through_provider(browser, sub, claims, amr="pwd", start_path="/sign-in/oidc")


async def test_an_unlinked_identity_is_never_matched_by_email(portal):
    patient = await new_patient(portal.clock())
    sub = new_sub()
    async with portal.browser() as browser:
        answer = await patient_sign_in(browser, sub, {"email": patient["email"], "email_verified": True})
        assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in/oidc/link")
        assert "realm" not in await session_of(portal, browser), "not signed in as the account with that email"
        page = await browser.get("/sign-in/oidc/link")
        assert "Sign in once with your Carefront password or a code to link this account" in page.text
        assert "/sign-in?next=%2Fsign-in%2Foidc%2Flink" in page.text
    assert await linked(portal.provider.issuer, sub) is None


async def test_link_after_signing_in_then_sign_in_with_the_provider(portal):
    patient = await new_patient(portal.clock())
    sub = new_sub()
    async with portal.browser() as browser:
        await patient_sign_in(browser, sub, {"email": "someone-else@example.org"})
        # The patient signs in to Carefront (as the sign-in page would leave the session), then links.
        await patient_session(portal, browser, patient, portal.clock())
        offer = await browser.get("/sign-in/oidc/link")
        assert "Link your Riverside MyChart sign-in to this Carefront account?" in offer.text
        headers = {"x-csrftoken": offer.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]}
        done = await browser.post("/sign-in/oidc/link", headers=headers)
        assert (done.status_code, done.headers["location"]) == (303, "/sign-in/oidc/link?done=linked")
        assert "is linked" in (await browser.get(done.headers["location"])).text
    assert (await linked(portal.provider.issuer, sub))["id"] == patient["id"]

    async with portal.browser() as browser:
        answer = await patient_sign_in(browser, sub, {"email": "someone-else@example.org"})
        assert answer.status_code == 303
        assert answer.headers["location"] in {"/home", "/"}
        session = await session_of(portal, browser)
        assert session["realm"] == "patient"
        assert session["account_id"] == str(patient["public_id"])
        assert session["method"] == "oidc"


async def test_a_signed_in_patient_is_offered_the_link_at_once(portal):
    patient = await new_patient(portal.clock())
    sub = new_sub()
    async with portal.browser() as browser:
        await patient_session(portal, browser, patient, portal.clock())
        answer = await patient_sign_in(browser, sub, {})
        assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in/oidc/link")
        session = await session_of(portal, browser)
        assert session["account_id"] == str(patient["public_id"]), "still the patient's own session"
        assert "Link your Riverside MyChart sign-in" in (await browser.get("/sign-in/oidc/link")).text


async def test_linking_needs_a_recent_sign_in(portal):
    patient = await new_patient(portal.clock())
    async with portal.browser() as browser:
        await patient_sign_in(browser, new_sub(), {})
        await patient_session(portal, browser, patient, portal.clock() - timedelta(minutes=11))
        page = await browser.get("/sign-in/oidc/link")
        assert "please confirm it is you first" in page.text
        headers = {"x-csrftoken": page.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]}
        refused = await browser.post("/sign-in/oidc/link", headers=headers)
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/account/confirm")
    assert await OidcLink.count().where(OidcLink.account == patient["id"]).run() == 0


async def test_an_identity_linked_to_one_patient_is_not_linked_to_another(portal):
    first, second = await new_patient(portal.clock()), await new_patient(portal.clock())
    sub = new_sub()
    async with portal.browser() as one, portal.browser() as other:
        # Both browsers hold the unlinked identity; each signs in to a different Carefront account.
        for browser, patient in ((one, first), (other, second)):
            await patient_sign_in(browser, sub, {})
            await patient_session(portal, browser, patient, portal.clock())
        for browser, outcome in ((one, "linked"), (other, "taken")):
            done = await browser.post("/sign-in/oidc/link", headers=await csrf_header(browser, "/sign-in/oidc/link"))
            assert parse_qs(urlsplit(done.headers["location"]).query)["done"] == [outcome]
        assert "already linked to a Carefront account" in (await other.get(done.headers["location"])).text
    assert (await linked(portal.provider.issuer, sub))["id"] == first["id"]


async def test_staff_cannot_link_a_patient_identity(portal):
    async with portal.browser() as browser:
        assert (await sign_in_through_provider(browser, new_sub(), staff_claims())).status_code == 303
        headers = await csrf_header(browser, "/staff")
        assert (await browser.post("/sign-in/oidc/link", headers=headers)).status_code == 403


async def test_a_staff_identity_does_not_open_a_patient_session(portal):
    sub = new_sub()
    async with portal.browser() as browser:
        assert (await sign_in_through_provider(browser, sub, staff_claims())).status_code == 303
    async with portal.browser() as browser:
        # The same identity at the patient sign-in: its link is to a staff account, which is not for patients.
        answer = await patient_sign_in(browser, sub, {})
        assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in/oidc/link")
        assert "realm" not in await session_of(portal, browser)


async def test_a_patient_sign_in_that_fails_a_check_is_refused_kindly(portal, caplog):
    portal.token_answers.rewrite = lambda answer: answer | {"id_token": answer["id_token"][:-4] + "AAAA"}
    async with portal.browser() as browser:
        answer = await patient_sign_in(browser, new_sub(), {})
        await assert_friendly_failure(answer, portal, browser)
        assert 'href="/sign-in"' in answer.text
    assert "patient sign-in did not complete: check=signature failed" in caplog.text


def render_button(app: Litestar, patient_oidc: OidcProvider | None) -> str:
    """templates/identity/sso/button.html as the patient sign-in page includes it."""
    settings = SimpleNamespace(identity=Identity(patient_oidc=patient_oidc))
    request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(settings=settings)))
    template = app.template_engine.engine.get_template("identity/sso/button.html")
    return template.render(request=request, csrf_input="", url_for={"patient-sso-start": "/sign-in/oidc"}.get)


async def test_the_sign_in_button_shows_only_when_patient_sso_is_configured(portal):
    configured = render_button(portal.app, portal.settings.identity.patient_oidc)
    assert 'action="/sign-in/oidc"' in configured
    assert "Sign in with Riverside MyChart" in configured
    assert render_button(portal.app, None).strip() == ""


async def test_patient_sso_is_not_there_unless_configured(client):
    page = await client.get("/staff/sign-in")
    token = {"x-csrftoken": page.text.split('"x-csrftoken": "', 1)[1].split('"', 1)[0]}
    assert (await client.post("/sign-in/oidc", headers=token)).status_code == 404
    assert (await client.get("/sign-in/oidc/callback?code=x&state=y")).status_code == 404
    assert (await client.post("/staff/sign-in", headers=token)).status_code == 404
    assert "not set up yet" in page.text
