"""Helpers for the console's tests: staff and patient accounts, sessions, forms with their CSRF token."""

from __future__ import annotations

import re
import secrets
import uuid
from datetime import datetime
from typing import Any

import httpx
from litestar import Litestar
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.identity import accounts

COOKIE_DOMAIN = "testserver.local"  # where httpx keeps the cookies testserver sets
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
ACT = {"reason": "caller_billing", "note": "", "checks": ["name", "birth_date", "statement_code"]}


async def staff_account(now: datetime, role: str = "representative") -> dict[str, Any]:
    tag = secrets.token_hex(5)
    account = await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="staff",
        email=f"staff-{tag}@example.org",
        email_verified_at=now,
        given_name="Fatima",
        family_name=f"Staff{tag}",
        role=role,
    )
    assert account is not None
    return account


async def patient_account(patient_id: str, now: datetime, **values: Any) -> dict[str, Any]:
    """The portal account of the sandbox patient ``patient_id`` (tests share the database: made once)."""
    found = await accounts.find_by_patient(patient_id)
    if found is not None:
        return found
    tag = secrets.token_hex(5)
    account = await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"patient-{tag}@example.org",
        email_verified_at=now,
        given_name="Pat",
        family_name=f"Patient{tag}",
        patient_id=patient_id,
        **values,
    )
    assert account is not None
    return account


async def start_session(app: Litestar, client: httpx.AsyncClient, now: datetime, **values: str | None) -> str:
    key = secrets.token_hex(32)
    data = {"signed_in_at": now.isoformat(), **{name: value for name, value in values.items() if value is not None}}
    await app.stores.get("sessions").set(key, encode_json(data), expires_in=15 * 60)
    client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
    return key


async def as_staff(app: Litestar, client: httpx.AsyncClient, account: dict[str, Any], now: datetime) -> str:
    return await start_session(
        app, client, now, account_id=str(account["public_id"]), realm="staff", role=account["role"], method="oidc"
    )


async def as_patient(app: Litestar, client: httpx.AsyncClient, account: dict[str, Any], now: datetime) -> str:
    return await start_session(
        app,
        client,
        now,
        account_id=str(account["public_id"]),
        realm="patient",
        acting_for=account["patient_id"],
        access="self",
    )


def session_key(client: httpx.AsyncClient) -> str | None:
    return client.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN)


async def token(client: httpx.AsyncClient, page: str) -> str:
    answer = await client.get(page)
    match = CSRF_INPUT.search(answer.text)
    assert match, f"no CSRF token on {page}: {answer.status_code} {answer.text[:300]}"
    return match.group(1)


async def post(client: httpx.AsyncClient, path: str, data: dict[str, Any], page: str, **headers: str) -> httpx.Response:
    """Post ``data`` with the CSRF token of the page at ``page``, as a browser would."""
    return await client.post(path, data={"_csrf_token": await token(client, page), **data}, headers=headers)


async def act_as(client: httpx.AsyncClient, patient_id: str, **changes: Any) -> httpx.Response:
    page = f"/console/patients/{patient_id}"
    return await post(client, f"{page}/act", ACT | changes, page)
