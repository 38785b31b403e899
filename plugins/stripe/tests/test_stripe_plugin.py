"""The plugin as the portal sees it: its hook and entry point, its settings, its health check, how a
Stripe that fails, refuses the key or does not answer shows up, and what never reaches the logs."""

from __future__ import annotations

import http.server
import importlib.metadata
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from carefront_sdk.adapters import AdapterRegistry, Port
from carefront_sdk.errors import ConfigError, Unavailable
from carefront_sdk.models import CheckoutRequest, Money, OffSessionCharge, RefundRequest
from carefront_sdk.testing import FakeClock, adapter_from_plugin, check_hookimpls, make_adapter_context
from carefront_stripe import CSP_SOURCES, hooks
from carefront_stripe.gateway import StripeGateway


def _request(customer: str = "guarantor-canary-7731") -> CheckoutRequest:
    return CheckoutRequest(Money(2500), "Statement", customer, "https://portal.test/r", "https://portal.test/c")


# --- Plugin and settings -------------------------------------------------------------------------


def test_the_hooks_match_the_sdk_specs() -> None:
    check_hookimpls(hooks)


def test_the_plugin_is_found_through_the_carefront_entry_point() -> None:
    (entry,) = [entry for entry in importlib.metadata.entry_points(group="carefront") if entry.name == "stripe"]
    assert entry.value == "carefront_stripe.hooks"
    assert entry.load() is hooks


def test_the_gateway_is_offered_with_its_secrets_marked() -> None:
    registry = AdapterRegistry(port=Port.GATEWAY, plugin="stripe")
    hooks.carefront_register_gateway(registry=registry)
    (registration,) = registry.registrations
    assert registration.name == "stripe"
    fields = {field.name: field for field in registration.config}
    assert {name for name, field in fields.items() if field.secret} == {"secret_key", "webhook_secret"}
    assert {name for name, field in fields.items() if field.required} == {
        "secret_key",
        "publishable_key",
        "webhook_secret",
    }
    assert fields["api_base"].default == "https://api.stripe.com"
    assert fields["webhook_tolerance_seconds"].default == 300


def test_the_gateway_declares_the_element_page_with_exactly_stripes_origins() -> None:
    registry = AdapterRegistry(port=Port.GATEWAY, plugin="stripe")
    hooks.carefront_register_gateway(registry=registry)
    (registration,) = registry.registrations
    assert registration.page is not None
    assert dict(registration.page.csp) == dict(CSP_SOURCES)
    # Stripe.js from Stripe itself (Stripe requires it), then the script that mounts the element.
    assert registration.page.scripts == ("https://js.stripe.com/v3/", "plugins/stripe/element.js")
    ((name, folder),) = hooks.carefront_static_dirs()
    assert name == "stripe"
    script = (folder / "element.js").read_text(encoding="utf-8")
    for needed in ("confirmPayment", "confirmSetup", "gateway-element", "gateway-error"):
        assert needed in script


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"secret_key": None}, "secret_key"),
        ({"secret_key": "pk_test_oops"}, "secret_key"),
        ({"publishable_key": "sk_test_oops"}, "publishable_key"),
        ({"webhook_secret": " "}, "webhook_secret"),
        ({"api_base": "api.stripe.com"}, "api_base"),
        ({"webhook_tolerance_seconds": 0}, "webhook_tolerance_seconds"),
        ({"timeout_seconds": -1.0}, "timeout_seconds"),
        ({"currency": "usd"}, "currency"),
        ({"statement_descriptor": "A" * 23}, "statement_descriptor"),
        ({"statement_descriptor": "12345"}, "statement_descriptor"),
        ({"statement_descriptor": "MRI <paid>"}, "statement_descriptor"),
        ({"secret": "sk_test_typo"}, "secret"),
    ],
)
def test_wrong_settings_stop_the_start_naming_the_setting(
    tmp_path: Path, stripe_config: dict[str, Any], change: dict[str, Any], setting: str
) -> None:
    config = {**stripe_config, **change}
    config = {name: value for name, value in config.items() if value is not None}
    with pytest.raises(ConfigError) as error:
        adapter_from_plugin(hooks, Port.GATEWAY, "stripe", make_adapter_context(tmp_path, config=config))
    assert error.value.field == setting


def test_the_csp_sources_are_exactly_stripes_script_frame_and_api_origins() -> None:
    assert dict(CSP_SOURCES) == {
        "script-src": ("https://js.stripe.com",),
        "frame-src": ("https://js.stripe.com", "https://hooks.stripe.com"),
        "connect-src": ("https://api.stripe.com",),
    }


# --- Health and failures -------------------------------------------------------------------------


async def test_health_is_ok_against_a_stripe_that_answers(gateway: StripeGateway) -> None:
    health = await gateway.health()
    assert health.ok
    assert health.detail == "stripe answered (test key)"


async def test_health_reports_a_refused_key_without_showing_it(make_gateway: Callable[..., StripeGateway]) -> None:
    # localstripe accepts any sk_ key and refuses others, as Stripe refuses a revoked one.
    health = await make_gateway(secret_key="rk_test_revoked").health()
    assert not health.ok
    assert "AuthenticationError" in health.detail
    assert "HTTP 401" in health.detail
    assert "rk_test_revoked" not in health.detail


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_stripe() -> Iterator[str]:
    """An address that takes connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.fixture
def failing_stripe() -> Iterator[Callable[[int, dict[str, Any], dict[str, str]], str]]:
    """Start servers on 127.0.0.1 that answer every request with one status, JSON body and headers."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(status: int, body: dict[str, Any], headers: dict[str, str]) -> str:
        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                payload = json.dumps(body).encode()
                self.send_response(status)
                for name, value in {**headers, "Content-Type": "application/json"}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


async def test_an_unreachable_stripe_is_unavailable(
    make_gateway: Callable[..., StripeGateway], closed_port: str
) -> None:
    gateway = make_gateway(api_base=closed_port)
    assert not (await gateway.health()).ok
    with pytest.raises(Unavailable) as error:
        await gateway.start_checkout(_request(), "key-1")
    assert "APIConnectionError" in error.value.detail
    assert "guarantor-canary-7731" not in error.value.detail


async def test_a_stripe_that_does_not_answer_is_unavailable_within_the_timeout(
    make_gateway: Callable[..., StripeGateway], silent_stripe: str
) -> None:
    gateway = make_gateway(api_base=silent_stripe, timeout_seconds=0.5)
    started = time.monotonic()
    with pytest.raises(Unavailable) as error:
        await gateway.read_payment("pi_123")
    assert time.monotonic() - started < 1.5
    assert error.value.detail == "stripe read payment: no answer within 0.5 s"

    started = time.monotonic()
    assert not (await gateway.health()).ok
    assert time.monotonic() - started < 3


async def test_a_stripe_server_error_is_unavailable(
    make_gateway: Callable[..., StripeGateway], failing_stripe: Callable[..., str]
) -> None:
    url = failing_stripe(500, {"error": {"type": "api_error", "message": "internal"}}, {"Request-Id": "req_abc"})
    with pytest.raises(Unavailable) as error:
        await make_gateway(api_base=url).refund(RefundRequest("pi_123", Money(100), "test"), "key-1")
    assert error.value.detail == "stripe retrieve payment: APIError, HTTP 500, request req_abc"


async def test_a_rate_limit_is_unavailable_with_the_wait_stripe_asks_for(
    make_gateway: Callable[..., StripeGateway], failing_stripe: Callable[..., str]
) -> None:
    url = failing_stripe(429, {"error": {"type": "invalid_request_error", "code": "rate_limit"}}, {"Retry-After": "7"})
    with pytest.raises(Unavailable) as error:
        await make_gateway(api_base=url).read_payment("pi_123")
    assert error.value.retry_after == 7.0
    assert "RateLimitError" in error.value.detail


async def test_the_statement_descriptor_is_sent_as_the_card_suffix(
    make_gateway: Callable[..., StripeGateway], recorder: Any
) -> None:
    gateway = make_gateway(http_client=recorder, statement_descriptor="CAREFRONT")
    # localstripe does not know statement_descriptor_suffix and refuses the request; Stripe takes it.
    with pytest.raises(Unavailable):
        await gateway.start_checkout(_request(f"guarantor-{uuid.uuid4().hex}"), f"key-{uuid.uuid4()}")
    (sent,) = recorder.posts("/v1/payment_intents")
    assert sent.form["statement_descriptor_suffix"] == ["CAREFRONT"]


# --- Logs ----------------------------------------------------------------------------------------


async def test_nothing_about_the_card_or_the_payer_reaches_the_logs(
    gateway: StripeGateway,
    patient: Any,
    save_card: Any,
    caplog: pytest.LogCaptureFixture,
    carefront_clock: FakeClock,
) -> None:
    customer = f"guarantor-canary-{uuid.uuid4().hex}"
    with caplog.at_level(logging.DEBUG):
        checkout = await gateway.start_checkout(_request(customer), f"key-{uuid.uuid4()}")
        await patient.pay(checkout, patient.GOOD_CARD)
        await gateway.read_payment(checkout.reference)
        method = await save_card(gateway, customer, patient.GOOD_CARD)
        await gateway.read_saved_method(method)
        payment = await gateway.charge_saved_method(
            OffSessionCharge(method, customer, Money(700), "Installment"), f"key-{uuid.uuid4()}"
        )
        await gateway.refund(RefundRequest(payment.reference, Money(700), "test"), f"key-{uuid.uuid4()}")

    assert checkout.client_secret is not None
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Request to Stripe api" in logged, "the library's INFO lines are captured, so the check is real"
    for secret in (patient.GOOD_CARD, "4242", checkout.client_secret, customer, "Visa", "exp_month", "sk_test"):
        assert secret not in logged
