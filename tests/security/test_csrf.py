"""PROMISES.md 4: every state-changing request without a valid CSRF token gets 403 and changes no row.

The test walks every registered route whose method is not GET, from a signed-in patient's browser,
and sends each one: no token, a wrong token in the form, an htmx request with a wrong token header,
and a token that belongs to another browser. Each must answer the "form has expired" 403 and leave
every table as it was, except the audit log, which records each refusal (PROMISES.md 8).
"""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.audit.tables import AuditEvent
from portal.database import app_configs
from portal.identity import accounts
from portal.identity.tables import WebSession

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
FORM_EXPIRED = "This form has expired"

# Routes that take no CSRF token, and why. Gateway webhooks will join them: a gateway signs its
# calls (PROMISES.md 11), it holds no browser cookie.
EXEMPT = {
    ("POST", "/-/webhooks/gateway"): "the payment gateway's webhook: signed by the gateway and verified on the raw "
    "body (PROMISES.md 11); a gateway holds no browser cookie",
    ("POST", "/-/sandbox/oidc/token"): "the sandbox identity provider's token endpoint: called by the portal "
    "server to server with its client credentials and a one-time code, never by a browser",
}


def state_changing_routes(app: Litestar) -> list[tuple[str, HTTPRoute]]:
    return sorted(
        (
            (method, route)
            for route in app.routes
            if isinstance(route, HTTPRoute)
            for method in route.route_handler_map
            if method not in SAFE_METHODS
        ),
        key=lambda item: (item[1].path, item[0]),
    )


def concrete(route: HTTPRoute) -> str:
    """The route's path with each parameter filled by a value of its type."""
    path = route.path
    for name, parameter in route.path_parameters.items():
        path = path.replace("{" + parameter.full + "}", "1" if parameter.type is int else f"x-{name}")
    return path


def test_exemptions_are_routes_that_exist(app):
    found = {(method, route.path) for method, route in state_changing_routes(app)}
    assert not EXEMPT.keys() - found, "an exempt route no longer exists: take it off the list"


async def snapshot() -> dict[str, Any]:
    """Every row of every table, but for sessions only their keys (a request renews its session)."""
    rows: dict[str, Any] = {}
    for config in app_configs():
        for table in config.table_classes:
            name = table._meta.tablename
            if table is WebSession:
                rows[name] = sorted(row["key"] for row in await WebSession.select(WebSession.key).run())
            elif table is not AuditEvent:
                rows[name] = sorted(repr(sorted(row.items())) for row in await table.select().run())
    return rows


async def signed_in_browser(app: Litestar) -> httpx.AsyncClient:
    now = datetime.now(UTC)
    tag = secrets.token_hex(5)
    account = await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"csrf-{tag}@example.org",
        email_verified_at=now,
        given_name="Cora",
        family_name=f"Csrf{tag}",
        patient_id=f"csrf-pt-{tag}",
    )
    key = secrets.token_hex(32)
    session = {
        "account_id": str(account["public_id"]),
        "realm": "patient",
        "acting_for": account["patient_id"],
        "access": "self",
        "signed_in_at": now.isoformat(),
    }
    await app.stores.get("sessions").set(key, encode_json(session), expires_in=15 * 60)
    transport = httpx.ASGITransport(app=app, client=(f"192.0.2.{secrets.randbelow(250) + 1}", 40000))
    client = httpx.AsyncClient(transport=transport, base_url="https://testserver")
    client.cookies.set(SESSION_COOKIE, key, domain="testserver.local")
    return client


async def page_token(client: httpx.AsyncClient) -> str:
    match = CSRF_INPUT.search((await client.get("/")).text)
    assert match, "no CSRF token on the front page"
    return match.group(1)


FORM = {"email": "csrf@example.org", "password": "lantern orbit mossy kettle", "code": "123456", "name": "x"}


@pytest.fixture
async def browsers(app):
    mine, other = await signed_in_browser(app), await signed_in_browser(app)
    yield mine, other
    await mine.aclose()
    await other.aclose()


async def test_the_token_works_when_it_is_right(browsers):
    mine, _ = browsers
    token = await page_token(mine)
    response = await mine.post("/language", data={"_csrf_token": token, "language": "es", "next": "/"})
    assert response.status_code == 303, "the control: a valid token passes, so the refusals below mean something"


async def test_every_state_changing_route_refuses_a_request_without_a_valid_token(app, browsers):
    mine, other = browsers
    my_token = await page_token(mine)  # the browser now holds its CSRF cookie, as after any page view
    # compare_digest raises on a str that is not ASCII: such a token must be refused, not crash (wapiti).
    not_ascii = my_token + "\u00bf'\"("
    others_token = await page_token(other)
    denied_before = await AuditEvent.count().where(AuditEvent.action != "request.denied").run()
    before = await snapshot()
    problems = []
    for method, route in state_changing_routes(app):
        if (method, route.path) in EXEMPT:
            continue
        path = concrete(route)
        attempts = {
            "no token": {"data": FORM},
            "a wrong token": {"data": {"_csrf_token": "forged", **FORM}},
            "htmx with a wrong header": {"data": FORM, "headers": {"HX-Request": "true", "X-CSRFToken": "forged"}},
            "another browser's token": {"data": {"_csrf_token": others_token, **FORM}},
            "its own token with non-ASCII after it": {"data": {"_csrf_token": not_ascii, **FORM}},
            "htmx with a non-ASCII header": {
                "data": FORM,
                "headers": {"HX-Request": "true", "X-CSRFToken": not_ascii.encode("latin-1")},
            },
        }
        for what, request in attempts.items():
            response = await mine.request(method, path, follow_redirects=False, **request)
            htmx = "headers" in request
            if response.status_code != 403 or (not htmx and FORM_EXPIRED not in response.text):
                problems.append(f"{method} {route.path} with {what}: {response.status_code}")
    assert not problems, "answered without a valid CSRF token:\n" + "\n".join(problems)
    assert await snapshot() == before, "a refused request changed a row"
    assert await AuditEvent.count().where(AuditEvent.action != "request.denied").run() == denied_before
