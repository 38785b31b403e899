"""What the statement and home tests share: the sandbox's personas, fresh reads, a signed-in patient."""

from __future__ import annotations

import secrets
import uuid
from typing import Any

import httpx
from carefront_sandbox.hooks import carefront_demo_personas
from carefront_sdk.models import Money, StatementSummary
from litestar import Litestar
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.billing.statements import forget_statements
from portal.identity import accounts

COOKIE_DOMAIN = "testserver.local"  # where httpx keeps the cookies testserver sets


def demo_patients() -> list[Any]:
    """The sandbox's demo personas that are patients (or a patient's guarantor)."""
    return [someone for someone in carefront_demo_personas() if someone.patient_id]


def persona(word: str) -> Any:
    """The sandbox persona whose label has ``word`` (e.g. "200" for the long inpatient statement)."""
    return next(p for p in carefront_demo_personas() if p.patient_id and word in p.label)


def dollars(money: Money) -> str:
    sign = "-" if money.amount < 0 else ""
    return f"{sign}${abs(money.amount) / 100:,.2f}"


async def fresh(app: Litestar, patient_id: str) -> list[StatementSummary]:
    """The patient's statements straight from the EHR, with the portal's copies of them forgotten."""
    summaries = list(await app.state["plugin_host"].ehr.list_statements(patient_id))
    await forget_statements(patient_id, *(summary.id for summary in summaries))
    return summaries


async def sign_in_as(app: Litestar, client: httpx.AsyncClient, patient_id: str, **session: str) -> dict[str, Any]:
    """A patient account for ``patient_id`` (a new one each time) and a session of it in ``client``."""
    tag = secrets.token_hex(5)
    account = await accounts.create(
        app.state["plugin_host"].clock(),
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"statements-{tag}@example.org",
        given_name="Stella",
        family_name=f"Statements{tag}",
        patient_id=f"{patient_id}-{tag}",  # an account's patient id is unique; the session says whom it shows
    )
    assert account is not None
    key = secrets.token_hex(32)
    data = {
        "account_id": str(account["public_id"]),
        "realm": "patient",
        "acting_for": patient_id,
        "access": "self",
        "signed_in_at": app.state["plugin_host"].clock().isoformat(),
        **session,
    }
    await app.stores.get("sessions").set(key, encode_json(data), expires_in=900)
    client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
    return account
