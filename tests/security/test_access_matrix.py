"""PROMISES.md 2: someone else's object answers exactly like a missing one.

Every registered route whose path names an object (a path parameter) is in ``MATRIX``, which says how
to make such an object belonging to someone else, or in ``NOT_SOMEONES``, which says why its path
parameter names nobody's object. Each route in the matrix is then asked, by three roles that do not
own the object (another patient, a billing delegate of a third patient, a guest of another bill),
for the other person's object and for an id that does not exist: both answers must be the same 404
(a guest is refused a patient-only route outright with the same 403 for either id), and the object
must be left as it was.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.identity import accounts, proxies
from portal.identity.sessions import Access
from portal.identity.tables import Passkey, ProxyGrant, ProxyInvitation

IGNORED_METHODS = {"HEAD", "OPTIONS"}
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
MISSING_ID = 2_000_000_000


@dataclass
class Owned:
    """An object of the owner's, reached through one route, and how to tell it is untouched."""

    path: str
    missing: str
    data: dict[str, str] = field(default_factory=dict)
    untouched: Callable[[], Awaitable[bool]] | None = None


async def new_account(now: datetime, *, patient: bool = True) -> dict[str, Any]:
    tag = secrets.token_hex(5)
    return await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"matrix-{tag}@example.org",
        email_verified_at=now,
        given_name="Matrix",
        family_name=f"Owner{tag}",
        patient_id=f"matrix-pt-{tag}" if patient else None,
    )


async def someones_grant(owner: dict[str, Any], now: datetime) -> Owned:
    helper = await new_account(now, patient=False)
    invitation, _ = await proxies.invite(owner, helper["email"], Access.CAREGIVER, now)
    grant = await proxies.accept(invitation, helper, now)
    assert grant is not None

    async def untouched() -> bool:
        return await ProxyGrant.exists().where((ProxyGrant.id == grant["id"]) & ProxyGrant.revoked_at.is_null()).run()

    return Owned(f"/account/proxies/{grant['id']}/revoke", f"/account/proxies/{MISSING_ID}/revoke", untouched=untouched)


async def someones_invitation(owner: dict[str, Any], now: datetime) -> Owned:
    invitation, _ = await proxies.invite(owner, f"matrix-{secrets.token_hex(4)}@example.org", Access.BILLING, now)

    async def untouched() -> bool:
        return (
            await ProxyInvitation.exists()
            .where((ProxyInvitation.id == invitation["id"]) & ProxyInvitation.revoked_at.is_null())
            .run()
        )

    return Owned(
        f"/account/proxies/invitations/{invitation['id']}/revoke",
        f"/account/proxies/invitations/{MISSING_ID}/revoke",
        untouched=untouched,
    )


def someones_passkey(action: str, data: dict[str, str] | None = None) -> Callable[..., Awaitable[Owned]]:
    async def build(owner: dict[str, Any], now: datetime) -> Owned:
        (passkey,) = await (
            Passkey.insert(
                Passkey(
                    account=owner["id"],
                    credential_id=secrets.token_urlsafe(24),
                    public_key=b"matrix",
                    name="Owner's phone",
                    created_at=now,
                )
            )
            .returning(Passkey.id)
            .run()
        )

        async def untouched() -> bool:
            return await Passkey.exists().where((Passkey.id == passkey["id"]) & (Passkey.name == "Owner's phone")).run()

        return Owned(
            f"/account/security/passkeys/{passkey['id']}{action}",
            f"/account/security/passkeys/{MISSING_ID}{action}",
            data=data or {},
            untouched=untouched,
        )

    return build


# How to make an object of the owner's for each route that names one. A new route with a path
# parameter fails test_every_route_with_an_id_is_in_the_matrix until it is added here or below.
MATRIX: dict[tuple[str, str], Callable[[dict[str, Any], datetime], Awaitable[Owned]]] = {
    ("POST", "/account/proxies/{grant_id:int}/revoke"): someones_grant,
    ("POST", "/account/proxies/invitations/{invitation_id:int}/revoke"): someones_invitation,
    ("GET", "/account/security/passkeys/{passkey_id:int}"): someones_passkey(""),
    ("POST", "/account/security/passkeys/{passkey_id:int}/name"): someones_passkey("/name", {"name": "Stolen"}),
    ("POST", "/account/security/passkeys/{passkey_id:int}/remove"): someones_passkey("/remove"),
}

# Routes whose path parameter names no one's object, and why.
NOT_SOMEONES = {
    ("GET", "/static/{file_path:path}"): "a static file, the same for everyone",
    (
        "GET",
        "/-/sandbox/checkout/{reference:str}",
    ): "the sandbox gateway's hosted page, reached by its unguessable reference as a real gateway's is",
    ("POST", "/-/sandbox/checkout/{reference:str}"): "the sandbox gateway's hosted page",
    ("GET", "/-/sandbox/checkout/{reference:str}/authenticate"): "the sandbox gateway's 3-D Secure page",
    ("POST", "/-/sandbox/checkout/{reference:str}/authenticate"): "the sandbox gateway's 3-D Secure page",
}


def routes_with_an_id(app: Litestar) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path_parameters
        for method in route.route_handler_map
        if method not in IGNORED_METHODS
    }


def test_every_route_with_an_id_is_in_the_matrix(app):
    found = routes_with_an_id(app)
    unlisted = found - MATRIX.keys() - NOT_SOMEONES.keys()
    assert not unlisted, f"routes with an id missing from the access matrix: {sorted(unlisted)}"
    stale = (MATRIX.keys() | NOT_SOMEONES.keys()) - found
    assert not stale, f"the access matrix names routes that no longer exist: {sorted(stale)}"


async def start_session(app: Litestar, client: httpx.AsyncClient, **values: str) -> None:
    key = secrets.token_hex(32)
    data = {"signed_in_at": datetime.now(UTC).isoformat(), **values}
    await app.stores.get("sessions").set(key, encode_json(data), expires_in=15 * 60)
    client.cookies.set(SESSION_COOKIE, key, domain="testserver.local")


async def another_patient(app: Litestar, client: httpx.AsyncClient, now: datetime) -> None:
    account = await new_account(now)
    await start_session(
        app,
        client,
        account_id=str(account["public_id"]),
        realm="patient",
        acting_for=account["patient_id"],
        access="self",
    )


async def billing_delegate_of_someone_else(app: Litestar, client: httpx.AsyncClient, now: datetime) -> None:
    third = await new_account(now)
    delegate = await new_account(now, patient=False)
    invitation, _ = await proxies.invite(third, delegate["email"], Access.BILLING, now)
    assert await proxies.accept(invitation, delegate, now) is not None
    await start_session(
        app,
        client,
        account_id=str(delegate["public_id"]),
        realm="patient",
        acting_for=third["patient_id"],
        access="billing",
    )


async def guest_of_another_bill(app: Litestar, client: httpx.AsyncClient, now: datetime) -> None:
    ehr = app.state["plugin_host"].ehr
    statement = (await ehr.list_statements((await ehr.read_patient("pt-30")).id))[0]
    await start_session(
        app, client, realm="guest", acting_for=statement.patient_id, access="guest", statement_id=statement.id
    )


ROLES = {
    "another patient": another_patient,
    "a billing delegate of someone else": billing_delegate_of_someone_else,
    "a guest of another bill": guest_of_another_bill,
}


async def ask(client: httpx.AsyncClient, method: str, path: str, data: dict[str, str]) -> httpx.Response:
    if method == "GET":
        return await client.get(path, follow_redirects=False)
    page = await client.get("/")
    token = CSRF_INPUT.search(page.text)
    assert token, "no CSRF token on the front page"
    return await client.request(method, path, data={"_csrf_token": token.group(1), **data}, follow_redirects=False)


def page_text(response: httpx.Response, path: str) -> str:
    """The page without what differs by request alone: the path (the language form returns to it)
    and the CSRF token."""
    text = re.sub(r'"x-csrftoken": "[^"]*"', "", CSRF_INPUT.sub("", response.text))
    return text.replace(path, "{path}")


@pytest.mark.parametrize("role", ROLES)
async def test_someone_elses_object_answers_like_a_missing_one(app, role):
    now = datetime.now(UTC) - timedelta(seconds=1)
    problems = []
    for (method, route), build in sorted(MATRIX.items()):
        owner = await new_account(now)
        owned = await build(owner, now)
        transport = httpx.ASGITransport(app=app, client=(f"192.0.2.{secrets.randbelow(250) + 1}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            await ROLES[role](app, client, now)
            theirs = await ask(client, method, owned.path, owned.data)
            missing = await ask(client, method, owned.missing, owned.data)
        expected = {403, 404} if role == "a guest of another bill" else {404}
        if theirs.status_code not in expected or missing.status_code != theirs.status_code:
            problems.append(f"{method} {route}: someone else's {theirs.status_code}, missing {missing.status_code}")
        elif page_text(theirs, owned.path) != page_text(missing, owned.missing):
            problems.append(f"{method} {route}: someone else's object and a missing one answer differently")
        if owned.untouched is not None and not await owned.untouched():
            problems.append(f"{method} {route}: changed someone else's object")
    assert not problems, f"as {role}:\n" + "\n".join(problems)
