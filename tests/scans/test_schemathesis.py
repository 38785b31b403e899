"""PROMISES.md 20: schemathesis fuzzes every operation of the app's OpenAPI schema, in process, as a
signed-in patient with a valid CSRF token: no answer is a 5xx.

The portal serves no OpenAPI document (``openapi_config=None``): a public map of every route helps
an attacker and no client needs it. This test builds the schema from the same route handlers
(``schema_of``) and sends what schemathesis generates through ``httpx.ASGITransport`` into the real
app on this test's event loop (asyncpg pools are bound to it, so schemathesis' own ASGI client, which
runs the app on a loop of its own, cannot be used).

Examples per operation: ``CAREFRONT_FUZZ_EXAMPLES`` when set (``make fuzz`` sets 500); in CI
(``CI=true``) 50 on SQLite and 25 on PostgreSQL, which keeps the whole suite under CI's 20 minutes;
15 otherwise. 500 examples of all ~140 operations are ~70,000 requests, about 17 minutes per backend
on the 2-core machine.
"""

from __future__ import annotations

import os
import re
import secrets
import uuid
from collections import Counter
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from carefront_sandbox.hooks import carefront_demo_personas
from hypothesis import HealthCheck, Phase
from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE, CarefrontPlugin
from portal.identity import accounts

CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
BASE_URL = "https://testserver"
COOKIE_DOMAIN = "testserver.local"
IN_CI = os.environ.get("CI") == "true"
# The gateway's webhook is signed by the gateway (PROMISES.md 11); unsigned fuzz is its own test's job.
SKIPPED = {("POST", "/-/webhooks/gateway")}


def schema_of(app: Litestar) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s routes, built without serving it."""
    carefront = next(plugin for plugin in app.plugins.init if isinstance(plugin, CarefrontPlugin))
    twin = Litestar(
        plugins=[CarefrontPlugin(carefront.settings, carefront.plugin_host)],
        openapi_config=OpenAPIConfig(title="Carefront", version="test", render_plugins=[]),
    )
    return twin.openapi_schema.to_schema()


def generated(operation: Any, count: int) -> list[Any]:
    """``count`` cases schemathesis generates for one operation (fewer if the operation has fewer)."""
    cases: list[Any] = []

    @hypothesis.settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @hypothesis.given(case=operation.as_strategy())
    def draw(case: Any) -> None:
        cases.append(case)

    draw()
    return cases


def examples(backend: str) -> int:
    if chosen := os.environ.get("CAREFRONT_FUZZ_EXAMPLES"):
        return int(chosen)
    if IN_CI:
        return 50 if backend == "sqlite" else 25
    return 15


async def patient_account(app: Litestar, patient_id: str) -> dict[str, Any]:
    """An account that shows a patient with statements, coverage and appointments."""
    tag = secrets.token_hex(5)
    now = app.state["plugin_host"].clock()
    return await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"fuzz-{tag}@example.org",
        email_verified_at=now,
        given_name="Fuzz",
        family_name=f"Patient{tag}",
        patient_id=f"{patient_id}-{tag}",  # an account's patient id is unique; the session says whom it shows
    )


async def sign_in(app: Litestar, client: httpx.AsyncClient, account: dict[str, Any], patient_id: str) -> None:
    """A fresh server-side session of ``account``, its cookie in ``client``."""
    now = app.state["plugin_host"].clock()
    session = {
        "account_id": str(account["public_id"]),
        "realm": "patient",
        "acting_for": patient_id,
        "access": "self",
        "signed_in_at": now.isoformat(),
    }
    key = secrets.token_hex(32)
    await app.stores.get("sessions").set(key, encode_json(session), expires_in=15 * 60)
    client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)


# `make fuzz` (500 examples of every operation) takes ~17 minutes per backend: past the suite's 300 s default.
@pytest.mark.timeout(3600)
async def test_no_operation_answers_a_server_error(app: Litestar, database_backend: str) -> None:
    schema = schemathesis.openapi.from_dict(schema_of(app))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 50, "the schema lists the portal's routes"
    patient_id = next(p.patient_id for p in carefront_demo_personas() if p.patient_id)
    account = await patient_account(app, patient_id)
    count = examples(database_backend)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    transport = httpx.ASGITransport(app=app, client=("10.9.8.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
        await sign_in(app, client, account, patient_id)
        token = CSRF_INPUT.search((await client.get("/account")).text)
        assert token, "a signed-in page carries a CSRF token"
        for operation in operations:
            if (operation.method.upper(), operation.path) in SKIPPED:
                continue
            for case in generated(operation, count):
                # Every request as the same patient, even after the fuzzer signed the last session out.
                await sign_in(app, client, account, patient_id)
                request = case.as_transport_kwargs(base_url=BASE_URL)
                headers = {**request.pop("headers", {}), "x-csrftoken": token.group(1)}
                request.pop("cookies", None)
                answer = await client.request(**request, headers=headers)
                statuses[answer.status_code] += 1
                if answer.status_code >= 500:
                    failures.append(f"{answer.status_code} {case.as_curl_command()}")
    # Not a vacuous pass: the session and the CSRF token got requests past the guards to the handlers.
    assert statuses[200], statuses
    assert statuses[422], statuses
    assert statuses[404], statuses
    assert not failures, f"{len(failures)} server error(s):\n" + "\n".join(failures[:40])
