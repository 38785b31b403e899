"""Fixtures for the Stripe plugin's tests: a localstripe server, the adapter pointed at it, a stand-in
for what the patient's browser and Stripe do between adapter calls, and Stripe-signed event bodies.

localstripe (a stateful fake of the Stripe API) runs as a subprocess on a free 127.0.0.1 port for the
whole session. It is started through its aiohttp app rather than its command line, because the
command line listens on every interface and saves its store to /tmp after each request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import importlib.util
import json
import queue
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import stripe
from carefront_sdk.adapters import Port
from carefront_sdk.config import resolve_config
from carefront_sdk.models import Checkout, SaveMethodRequest
from carefront_sdk.testing import FakeClock, adapter_from_plugin, make_adapter_context
from carefront_stripe import hooks
from carefront_stripe.gateway import StripeGateway
from carefront_stripe.ledger import Ledger
from carefront_stripe.settings import FIELDS, StripeSettings

SECRET_KEY = "sk_test_carefront"
PUBLISHABLE_KEY = "pk_test_carefront"
WEBHOOK_SECRET = "whsec_carefront_test"
PUBLIC_URL = "https://portal.test"

_LAUNCHER = """
import sys
import threading
from aiohttp import web
from localstripe import resources
from localstripe.server import app
resources.Store.dump_to_disk = lambda self: None  # keep the fake's store in memory only
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""
_START_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(url: str) -> bool:
    request = urllib.request.Request(f"{url}/v1/balance", headers={"Authorization": f"Bearer {SECRET_KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def running_localstripe(log: Path) -> Iterator[str]:
    """Start localstripe on a free 127.0.0.1 port, yield its base URL, stop it on the way out."""
    if importlib.util.find_spec("localstripe") is None:
        pytest.fail("localstripe is missing: install the plugin's test extra (uv sync --all-packages --all-extras)")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        process = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(port)], stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + _START_SECONDS
        while not _answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"localstripe did not start; see {log}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(autouse=True)
def _quiet_stripe_form_bodies() -> Iterator[None]:
    # stripe's HTTPXClient hands httpx its form body as data=<str>, which httpx deprecates: not ours to fix.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"Use 'content=<\.\.\.>'", DeprecationWarning)
        yield


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_localstripe(tmp_path_factory.mktemp("localstripe") / "server.log") as url:
        yield url


@pytest.fixture
def private_localstripe(tmp_path: Path) -> Iterator[str]:
    """A localstripe of the test's own, for a test that changes the server's global settings
    (webhook endpoints are global there and cannot be removed)."""
    with running_localstripe(tmp_path / "private-localstripe.log") as url:
        yield url


@dataclass(frozen=True, slots=True)
class Delivery:
    headers: Mapping[str, str]
    body: bytes


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 that keeps every delivery, byte for byte, and answers 200."""

    def __init__(self) -> None:
        self.deliveries: queue.Queue[Delivery] = queue.Queue()
        deliveries = self.deliveries

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                deliveries.put(Delivery(dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/stripe"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    async def next(self) -> Delivery:
        """The next delivery; bound the wait with ``asyncio.timeout``."""
        while True:
            try:
                return self.deliveries.get_nowait()
            except queue.Empty:
                await asyncio.sleep(0.05)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def stripe_config(localstripe_url: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``[adapters.stripe]`` as a hospital writes it, secrets by ``$env`` reference."""
    monkeypatch.setenv("CAREFRONT_TEST_STRIPE_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("CAREFRONT_TEST_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    return {
        "secret_key": {"$env": "CAREFRONT_TEST_STRIPE_SECRET_KEY"},
        "publishable_key": PUBLISHABLE_KEY,
        "webhook_secret": {"$env": "CAREFRONT_TEST_STRIPE_WEBHOOK_SECRET"},
        "api_base": localstripe_url,
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def gateway(
    data_dir: Path, carefront_clock: FakeClock, stripe_config: dict[str, Any]
) -> AsyncIterator[StripeGateway]:
    """The adapter, built the way the portal builds it: through the plugin's hook."""
    context = make_adapter_context(data_dir, name="stripe", config=stripe_config, clock=carefront_clock)
    adapter = adapter_from_plugin(hooks, Port.GATEWAY, "stripe", context)
    assert isinstance(adapter, StripeGateway)
    yield adapter
    await adapter.aclose()


@dataclass(frozen=True, slots=True)
class SentRequest:
    method: str
    path: str
    idempotency_key: str | None
    form: Mapping[str, list[str]]


class RecordingHTTPClient(stripe.HTTPXClient):
    """Stripe's own HTTPX client, noting every request it sends (attempts, not calls)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sent: list[SentRequest] = []

    async def request_async(self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None) -> Any:
        form = parse_qs(post_data or "")
        self.sent.append(SentRequest(method.upper(), urlsplit(url).path, headers.get("Idempotency-Key"), form))
        return await super().request_async(method, url, headers, post_data)

    def posts(self, path: str) -> list[SentRequest]:
        return [sent for sent in self.sent if sent.method == "POST" and sent.path == path]


GatewayMaker = Callable[..., StripeGateway]


@pytest.fixture
async def make_gateway(
    data_dir: Path, carefront_clock: FakeClock, stripe_config: dict[str, Any]
) -> AsyncIterator[GatewayMaker]:
    """Build adapters with other settings or an HTTP client of the test's own; all closed afterwards."""
    made: list[StripeGateway] = []

    def make(
        http_client: stripe.HTTPClient | None = None, clock: Callable[[], datetime] | None = None, **settings: Any
    ) -> StripeGateway:
        resolved = resolve_config("stripe", FIELDS, {**stripe_config, **settings})
        adapter = StripeGateway(
            StripeSettings.from_config(resolved),
            Ledger(data_dir / "stripe" / "ledger.sqlite3"),
            clock or carefront_clock,
            http_client=http_client,
        )
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        await adapter.aclose()


class Patient:
    """What happens between adapter calls: the patient typing a card into Stripe's element (Stripe.js
    talking to Stripe), their bank's 3-D Secure page, and what Stripe does on its side."""

    GOOD_CARD = "4242424242424242"
    DECLINED_CARD = "4000000000000341"
    """Saves fine, and every charge on it is declined (localstripe's "charge customer fail" card)."""
    THREE_D_SECURE_CARD = "4000002500003155"
    """Asks for 3-D Secure when paid with the patient present."""
    ALWAYS_AUTHENTICATE_CARD = "4000002760003184"
    """Asks for authentication on every payment, off session too."""

    def __init__(self, api_base: str) -> None:
        self.api_base = api_base
        self._http = stripe.HTTPXClient(timeout=5)
        self.stripe = stripe.StripeClient(SECRET_KEY, base_addresses={"api": api_base}, http_client=self._http)

    async def close(self) -> None:
        await self._http.close_async()

    async def card(self, number: str) -> str:
        """A PaymentMethod for a test card, as the element creates it."""
        method = await self.stripe.v1.payment_methods.create_async(
            {"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"}}
        )
        return method.id

    async def pay(self, checkout: Checkout, number: str, *, keep: bool = False) -> None:
        """Submit the element with a card. A decline is what the patient sees; it does not raise here.

        ``keep``: Stripe attaches the card to the customer when the checkout asked to save it;
        localstripe ignores that request, so the stand-in does it.
        """
        method = await self.card(number)
        await self.stripe.v1.payment_intents.update_async(checkout.reference, {"payment_method": method})
        try:
            intent = await self.stripe.v1.payment_intents.confirm_async(checkout.reference)
        except stripe.CardError:
            return
        if keep and intent.status == "succeeded":
            assert intent.customer is not None
            await self.stripe.v1.payment_methods.attach_async(method, {"customer": str(intent.customer)})

    async def authenticate(self, checkout: Checkout, *, approve: bool) -> None:
        """Answer the bank's 3-D Secure challenge (localstripe's stand-in for it)."""
        async with httpx.AsyncClient(base_url=self.api_base, timeout=5) as client:
            response = await client.post(
                f"/v1/payment_intents/{checkout.reference}/_authenticate",
                params={"success": "true" if approve else "false"},
                data={"key": PUBLISHABLE_KEY, "client_secret": checkout.client_secret},
            )
        response.raise_for_status()

    async def save(self, checkout: Checkout, number: str) -> str:
        """Finish a saving checkout with a card; Stripe then attaches it to the intent's customer
        (localstripe does not, so the stand-in does). Returns the PaymentMethod's id."""
        method = await self.card(number)
        setup = await self.stripe.v1.setup_intents.confirm_async(checkout.reference, {"payment_method": method})
        assert setup.status == "succeeded", setup.status
        assert setup.customer is not None
        await self.stripe.v1.payment_methods.attach_async(method, {"customer": str(setup.customer)})
        return method

    async def attach(self, number: str, customer: str) -> str:
        """A card attached straight to a Stripe customer, as a card saved long ago would be."""
        method = await self.card(number)
        await self.stripe.v1.payment_methods.attach_async(method, {"customer": customer})
        return method

    async def register_webhook(self, url: str, secret: str, events: list[str]) -> None:
        """Add a webhook endpoint, as the hospital does in Stripe's dashboard (localstripe's own call)."""
        async with httpx.AsyncClient(base_url=self.api_base, timeout=5) as client:
            response = await client.post(
                "/_config/webhooks/carefront", json={"url": url, "secret": secret, "events": events}
            )
        response.raise_for_status()

    async def raw(self, path: str) -> dict[str, Any]:
        """An object exactly as the API serialises it (for event bodies)."""
        async with httpx.AsyncClient(base_url=self.api_base, timeout=5) as client:
            response = await client.get(path, headers={"Authorization": f"Bearer {SECRET_KEY}"})
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
async def patient(localstripe_url: str) -> AsyncIterator[Patient]:
    stand_in = Patient(localstripe_url)
    yield stand_in
    await stand_in.close()


SaveCard = Callable[[StripeGateway, str, str], Awaitable[str]]


@pytest.fixture
def save_card(patient: Patient) -> SaveCard:
    """Save a card for a customer reference through the adapter's saving checkout, as the patient
    does on the autopay page; returns the saved method's reference."""

    async def save(gateway: StripeGateway, customer_reference: str, number: str) -> str:
        request = SaveMethodRequest(customer_reference, f"{PUBLIC_URL}/autopay/done", f"{PUBLIC_URL}/autopay")
        checkout = await gateway.start_saving_method(request, f"save-{uuid.uuid4().hex}")
        await patient.save(checkout, number)
        payment = await gateway.read_payment(checkout.reference)
        assert payment.saved_method_reference is not None
        return payment.saved_method_reference

    return save


@pytest.fixture
def new_reference() -> Callable[[], str]:
    """Fresh opaque guarantor references, as the portal passes them."""
    return lambda: f"guarantor-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def stripe_event() -> Callable[[str, Mapping[str, Any], datetime], bytes]:
    """A webhook body laid out as Stripe sends one: the pretty-printed JSON of an Event."""

    def body(event_type: str, subject: Mapping[str, Any], created: datetime) -> bytes:
        event = {
            "id": f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "api_version": stripe.api_version,
            "created": int(created.timestamp()),
            "data": {"object": dict(subject)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        return json.dumps(event, indent=2).encode()

    return body


Sign = Callable[..., str]


@pytest.fixture
def sign(carefront_clock: FakeClock) -> Sign:
    """The ``Stripe-Signature`` Stripe sends for a body: by default signed now with the test secret."""

    def signature(body: bytes, *, secret: str = WEBHOOK_SECRET, at: datetime | None = None) -> str:
        timestamp = int((at or carefront_clock()).timestamp())
        digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return f"t={timestamp},v1={digest}"

    return signature


@pytest.fixture
async def recorder() -> AsyncIterator[RecordingHTTPClient]:
    client = RecordingHTTPClient(timeout=5)
    yield client
    await client.close_async()
