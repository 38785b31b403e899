"""Paying on Stripe's Payment Element (the stripe plugin against localstripe): the element page loads
only approved scripts under a policy that adds exactly Stripe's origins, on that page alone
(PROMISES.md 9, 19); the return from Stripe and a Stripe-signed webhook settle the payment once."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import timedelta

import carefront_sandbox.hooks
import carefront_stripe.hooks
import pytest
from asgi_lifespan import LifespanManager
from carefront_sdk.adapters import Port
from carefront_sdk.models import Checkout
from carefront_stripe import CSP_SOURCES
from litestar import Litestar

from plugins.stripe.tests.conftest import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    WEBHOOK_SECRET,
    Patient,
    running_localstripe,
)  # fmt: skip
from portal.app import create_app
from portal.security import CONTENT_SECURITY_POLICY, POLICY
from tests.integration.test_payments import attempts_of, pay_form, sign_in, statement_owing, submit

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>'")  # stripe's HTTPXClient, not ours

SCRIPT = re.compile(r"<script\b([^>]*)>")
ELEMENT = re.compile(r'<div id="gateway-element"[^>]*>')


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parsed}


def data_attributes(page: str) -> dict[str, str]:
    element = ELEMENT.search(page)
    assert element, "the page has no gateway element"
    return {name: html.unescape(value) for name, value in re.findall(r'data-([a-z-]+)="([^"]*)"', element.group(0))}


@pytest.fixture(scope="module")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_localstripe(tmp_path_factory.mktemp("localstripe") / "server.log") as url:
        yield url


@pytest.fixture
async def stripe_portal(settings, clock, localstripe_url: str) -> AsyncIterator[Litestar]:
    """The portal with the sandbox's EHR and notifier, and Stripe (at localstripe) as its gateway."""
    configured = replace(
        settings,
        ports={**settings.ports, Port.GATEWAY: "stripe"},
        adapters={
            **settings.adapters,
            "stripe": {
                "secret_key": SECRET_KEY,
                "publishable_key": PUBLISHABLE_KEY,
                "webhook_secret": WEBHOOK_SECRET,
                "api_base": localstripe_url,
            },
        },
    )
    plugins = [("sandbox", carefront_sandbox.hooks), ("stripe", carefront_stripe.hooks)]
    application = create_app(configured, plugins=plugins, clock=clock)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@pytest.fixture
async def card_holder(localstripe_url: str) -> AsyncIterator[Patient]:
    """What the patient's browser and Stripe do on Stripe's side of the element."""
    stand_in = Patient(localstripe_url)
    yield stand_in
    await stand_in.close()


async def element_page(portal: Litestar, client, index: int) -> tuple[str, object]:
    statement = await statement_owing(portal, index)
    await sign_in(portal, client, statement.patient_id)
    form = await pay_form(client, f"?statement={statement.id}")
    page = await submit(client, form, choice="other", amount="25")
    assert page.status_code == 200, page.text
    return statement.patient_id, page


def stripe_signature(body: bytes, at) -> str:
    timestamp = int(at.timestamp())
    digest = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


async def test_the_element_page_allows_exactly_stripes_origins_and_runs_only_its_scripts(stripe_portal, browser):
    async with browser(stripe_portal) as client:
        _, page = await element_page(stripe_portal, client, 41)
        other_pages = [await client.get("/pay"), await client.get("/payments")]

    policy = directives(page.headers["content-security-policy"])
    expected = {name: list(sources) for name, sources in POLICY.items()}
    for directive, sources in CSP_SOURCES.items():
        kept = [source for source in expected.get(directive, []) if source != "'none'"]
        expected[directive] = [*kept, *sources]
    assert policy == expected
    assert policy["script-src"] == ["'self'", "https://js.stripe.com"]
    assert policy["frame-src"] == ["https://js.stripe.com", "https://hooks.stripe.com"]
    assert policy["connect-src"] == ["'self'", "https://api.stripe.com"]
    assert "'unsafe-inline'" not in page.headers["content-security-policy"]
    assert "'unsafe-eval'" not in page.headers["content-security-policy"]
    for other in other_pages:
        assert other.status_code == 200
        assert other.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, "Stripe leaked onto another page"

    scripts = [dict(re.findall(r'(\w[\w-]*)="([^"]*)"', attributes)) for attributes in SCRIPT.findall(page.text)]
    assert all(script.get("src") for script in scripts), "an inline script"
    sources = [html.unescape(script["src"]) for script in scripts]
    assert "https://js.stripe.com/v3/" in sources
    (element_js,) = [source for source in sources if source.startswith("/static/plugins/stripe/element.js?v=")]
    assert sources.index("https://js.stripe.com/v3/") < sources.index(element_js), "Stripe.js must load first"
    assert "style=" not in page.text

    data = data_attributes(page.text)
    assert data["publishable-key"] == PUBLISHABLE_KEY
    assert data["reference"].startswith("pi_")
    assert data["client-secret"].startswith(f"{data['reference']}_secret")
    assert re.fullmatch(r"https://testserver/pay/return/[0-9a-f-]{36}", data["return-url"])
    assert "This card form needs JavaScript" in page.text, "a visitor without JavaScript is told what to do"
    assert re.search(r'<button type="submit" hidden>', page.text), "no Pay button before the element is mounted"

    async with browser(stripe_portal) as client:
        script = await client.get(element_js)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "confirmPayment" in script.text
    assert "gateway-element" in script.text
    assert script.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


async def test_paying_on_the_element_settles_on_return_and_a_stripe_webhook_then_changes_nothing(
    stripe_portal, browser, clock, card_holder
):
    async with browser(stripe_portal) as client:
        patient_id, page = await element_page(stripe_portal, client, 43)
        data = data_attributes(page.text)
        checkout = Checkout(kind="element", reference=data["reference"], client_secret=data["client-secret"])
        await card_holder.pay(checkout, Patient.GOOD_CARD)

        returned = await client.get(data["return-url"], params={"payment_intent": checkout.reference})
        assert returned.status_code == 303
        receipt = await client.get(returned.headers["location"])
        assert receipt.status_code == 200
        assert "$25.00" in receipt.text
        assert "Visa ending 4242" in receipt.text

        intent = await card_holder.raw(f"/v1/payment_intents/{checkout.reference}")
        body = json.dumps(
            {"id": f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "created": int(clock.now.timestamp()),
             "data": {"object": intent}, "type": "payment_intent.succeeded"}, indent=2,
        ).encode()  # fmt: skip
        stale = await client.post(
            "/-/webhooks/gateway", content=body,
            headers={"Stripe-Signature": stripe_signature(body, clock.now - timedelta(minutes=6))},
        )  # fmt: skip
        assert stale.status_code == 400
        signed = {"Stripe-Signature": stripe_signature(body, clock.now)}
        assert (await client.post("/-/webhooks/gateway", content=body[:-1] + b" ", headers=signed)).status_code == 400
        assert (await client.post("/-/webhooks/gateway", content=body, headers=signed)).status_code == 200
        assert (await client.post("/-/webhooks/gateway", content=body, headers=signed)).status_code == 200

    (attempt,) = await attempts_of(patient_id)
    assert (attempt["status"], attempt["amount"], attempt["checkout_reference"]) == (
        "succeeded",
        2500,
        checkout.reference,
    )
    assert attempt["method_summary"] == "Visa ending 4242"
