"""The hosted test checkout, its 3-D Secure step and the outbox, served by an in-process Litestar app
with CSRF protection on, as the portal runs them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from carefront_sandbox import hooks
from carefront_sandbox.gateway import SandboxGateway
from carefront_sandbox.notifier import SandboxNotifier
from carefront_sdk.models import Channel, CheckoutRequest, Message, Money, PaymentStatus, SaveMethodRequest
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

RETURN_URL = "https://portal.test/payments/done"
CANCEL_URL = "https://portal.test/payments"


def _app() -> Litestar:
    environment = Environment(
        loader=ChoiceLoader(
            [
                FileSystemLoader(Path(__file__).parent / "templates"),
                *map(FileSystemLoader, hooks.carefront_template_dirs()),
            ]
        ),
        autoescape=select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
    )
    environment.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    return Litestar(
        route_handlers=list(hooks.carefront_routes()),
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment)),
        csrf_config=CSRFConfig(secret="sandbox-page-tests-secret-0123456789"),
    )


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _checkout(gateway: SandboxGateway, amount: int = 4_200) -> str:
    request = CheckoutRequest(Money(amount), "Balance of statement 3", "cus_1", RETURN_URL, CANCEL_URL)
    return (await gateway.start_checkout(request, f"checkout-{amount}")).reference


def _token(page: str) -> str:
    match = re.search(r'name="_csrf_token" value="([^"]+)"', page)
    assert match, "the form carries no CSRF token"
    return match.group(1)


async def _submit(browser: httpx.AsyncClient, path: str, **fields: str) -> httpx.Response:
    page = await browser.get(path)
    return await browser.post(path, data={"_csrf_token": _token(page.text), **fields})


async def test_the_checkout_page_is_clearly_a_test(browser: httpx.AsyncClient, gateway: SandboxGateway) -> None:
    reference = await _checkout(gateway)
    page = await browser.get(f"/-/sandbox/checkout/{reference}")
    assert page.status_code == 200
    assert "Test mode — no real card is charged." in page.text
    assert "$42.00" in page.text
    assert "Balance of statement 3" in page.text
    assert "4242 4242 4242 4242" in page.text
    assert f'href="{CANCEL_URL}"' in page.text
    assert "no-store" in page.headers["cache-control"]
    assert "<script" not in page.text
    assert "style=" not in page.text


async def test_paying_with_the_test_card_goes_back_to_the_portal(
    browser: httpx.AsyncClient, gateway: SandboxGateway
) -> None:
    reference = await _checkout(gateway)
    paid = await _submit(
        browser, f"/-/sandbox/checkout/{reference}", number="4242 4242 4242 4242", expiry="12/30", cvc="123"
    )
    assert paid.status_code == 303
    assert paid.headers["location"] == f"{RETURN_URL}?checkout={reference}"
    assert (await gateway.read_payment(reference)).status is PaymentStatus.SUCCEEDED
    page = await browser.get(f"/-/sandbox/checkout/{reference}")
    assert "This checkout is complete." in page.text
    assert 'name="number"' not in page.text


async def test_a_real_looking_card_is_refused_and_never_echoed(
    browser: httpx.AsyncClient, gateway: SandboxGateway
) -> None:
    reference = await _checkout(gateway)
    page = await _submit(
        browser, f"/-/sandbox/checkout/{reference}", number="4111 1111 1111 1111", expiry="12/30", cvc="987"
    )
    assert page.status_code == 422
    assert "use one of the test card numbers" in page.text
    assert "never shown again" in page.text
    assert "4111" not in page.text
    assert "987" not in page.text
    assert 'value="12/30"' in page.text
    assert 'aria-invalid="true"' in page.text
    assert (await gateway.read_payment(reference)).status is PaymentStatus.PENDING


async def test_expiry_and_security_code_are_checked(browser: httpx.AsyncClient, gateway: SandboxGateway) -> None:
    reference = await _checkout(gateway)
    page = await _submit(
        browser, f"/-/sandbox/checkout/{reference}", number="4242424242424242", expiry="01/20", cvc="1"
    )
    assert page.status_code == 422
    assert "Enter an expiry date in the future." in page.text
    assert "Enter the 3 or 4 digit security code." in page.text


@pytest.mark.parametrize(
    ("number", "message"),
    [("4000000000000002", "Your card was declined."), ("4000000000009995", "Your card has insufficient funds.")],
)
async def test_a_declined_card_says_why(
    browser: httpx.AsyncClient, gateway: SandboxGateway, number: str, message: str
) -> None:
    reference = await _checkout(gateway)
    page = await _submit(browser, f"/-/sandbox/checkout/{reference}", number=number, expiry="12/30", cvc="123")
    assert page.status_code == 200
    assert message in page.text
    assert number not in page.text
    assert (await gateway.read_payment(reference)).status is PaymentStatus.PENDING


async def test_3d_secure_complete_and_fail(browser: httpx.AsyncClient, gateway: SandboxGateway) -> None:
    reference = await _checkout(gateway)
    path = f"/-/sandbox/checkout/{reference}"
    asked = await _submit(browser, path, number="4000002500003155", expiry="12/30", cvc="123")
    assert asked.status_code == 303
    assert asked.headers["location"] == f"{path}/authenticate"
    failed = await _submit(browser, f"{path}/authenticate", outcome="fail")
    assert failed.headers["location"] == path
    assert "We could not verify your card." in (await browser.get(path)).text
    await _submit(browser, path, number="4000002500003155", expiry="12/30", cvc="123")
    step = await browser.get(f"{path}/authenticate")
    assert "Visa ending 3155" in step.text
    assert "$42.00" in step.text
    done = await browser.post(f"{path}/authenticate", data={"_csrf_token": _token(step.text), "outcome": "complete"})
    assert done.headers["location"] == f"{RETURN_URL}?checkout={reference}"
    assert (await gateway.read_payment(reference)).status is PaymentStatus.SUCCEEDED
    assert (await browser.get(f"{path}/authenticate")).status_code == 303


async def test_the_saving_page_saves_a_test_card(browser: httpx.AsyncClient, gateway: SandboxGateway) -> None:
    request = SaveMethodRequest("cus_1", RETURN_URL, CANCEL_URL)
    reference = (await gateway.start_saving_method(request, "save")).reference
    page = await browser.get(f"/-/sandbox/checkout/{reference}")
    assert "Save a card" in page.text
    saved = await _submit(
        browser, f"/-/sandbox/checkout/{reference}", number="4000000000000341", expiry="12/30", cvc="123"
    )
    assert saved.status_code == 303
    method = (await gateway.read_payment(reference)).saved_method_reference
    assert method is not None
    assert (await gateway.read_saved_method(method)).summary == "Visa ending 0341"


async def test_posting_without_the_csrf_token_is_forbidden(browser: httpx.AsyncClient, gateway: SandboxGateway) -> None:
    reference = await _checkout(gateway)
    await browser.get(f"/-/sandbox/checkout/{reference}")
    refused = await browser.post(
        f"/-/sandbox/checkout/{reference}", data={"number": "4242424242424242", "expiry": "12/30", "cvc": "123"}
    )
    assert refused.status_code == 403
    assert (await gateway.read_payment(reference)).status is PaymentStatus.PENDING


async def test_an_unknown_checkout_is_not_found(browser: httpx.AsyncClient, gateway: SandboxGateway) -> None:
    assert (await browser.get("/-/sandbox/checkout/cs_test_nonesuch")).status_code == 404
    assert (await browser.get("/-/sandbox/checkout/cs_test_nonesuch/authenticate")).status_code == 404


async def test_the_outbox_lists_messages_newest_first(browser: httpx.AsyncClient, notifier: SandboxNotifier) -> None:
    await notifier.send(
        Message(Channel.EMAIL, "pat@example.org", "Your code is 314159\nIt expires in 10 minutes.", "Sign-in code"),
        "m-1",
    )
    await notifier.send(Message(Channel.SMS, "+13125550123", "Code 271828"), "m-2")
    page = await browser.get("/-/sandbox/outbox")
    assert page.status_code == 200
    assert page.text.index("271828") < page.text.index("314159")
    assert "Your code is 314159<br>It expires in 10 minutes." in page.text
    assert "pat@example.org" in page.text
    assert "<table" not in page.text  # cards, not a wide table: readable on a phone


def test_every_page_is_public_and_under_the_plugin_prefix() -> None:
    app = Litestar(route_handlers=list(hooks.carefront_routes()), openapi_config=None)
    handlers = {(route.path, handler) for route in app.routes for handler in route.route_handlers}  # type: ignore[attr-defined]
    assert {path for path, _ in handlers} == {
        "/-/sandbox/checkout/{reference:str}",
        "/-/sandbox/checkout/{reference:str}/authenticate",
        "/-/sandbox/outbox",
        "/-/sandbox/oidc/.well-known/openid-configuration",
        "/-/sandbox/oidc/jwks",
        "/-/sandbox/oidc/authorize",
        "/-/sandbox/oidc/token",
    }
    pages = [handler for _, handler in handlers if "OPTIONS" not in handler.http_methods]  # Litestar adds OPTIONS
    assert len(pages) == 10
    assert all(page.opt.get("public") is True for page in pages)
