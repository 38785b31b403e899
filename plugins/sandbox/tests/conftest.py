"""Fixtures for the sandbox's tests: a hospital context on a fake clock, and its four adapters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from carefront_sandbox.clearinghouse import SandboxClearinghouse, make_clearinghouse
from carefront_sandbox.ehr import SandboxEHR, make_ehr
from carefront_sandbox.gateway import TEST_CARDS, SandboxGateway, make_gateway
from carefront_sandbox.notifier import SandboxNotifier, make_notifier
from carefront_sandbox.store import live_stores
from carefront_sdk.adapters import AdapterContext
from carefront_sdk.models import SaveMethodRequest
from carefront_sdk.testing import FakeClock, make_adapter_context

TIME_ZONE = "America/Chicago"
PUBLIC_URL = "https://portal.test"


@pytest.fixture
def clock() -> FakeClock:
    """Monday 3 March 2025, 09:00 in Chicago."""
    return FakeClock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def context(data_dir: Path, clock: FakeClock) -> AdapterContext:
    return make_adapter_context(data_dir, name="sandbox", clock=clock, public_url=PUBLIC_URL, time_zone=TIME_ZONE)


@pytest.fixture(autouse=True)
def _close_stores() -> Iterator[None]:
    # Each test opens a store (thread pool and connections) on its own file: close them after it.
    yield
    for store in live_stores():
        store.close()


@pytest.fixture
def ehr(context: AdapterContext) -> SandboxEHR:
    return make_ehr(context)


@pytest.fixture
def clearinghouse(context: AdapterContext) -> SandboxClearinghouse:
    return make_clearinghouse(context)


@pytest.fixture
def gateway(context: AdapterContext) -> SandboxGateway:
    return make_gateway(context)


@pytest.fixture
def notifier(context: AdapterContext) -> SandboxNotifier:
    return make_notifier(context)


@pytest.fixture
def save_card(gateway: SandboxGateway) -> Callable[[str, str], Awaitable[str]]:
    """Save a test card (by its last four digits) for a customer, as a patient does on the hosted
    page; returns the saved method's reference."""

    async def save(customer: str, last_four: str) -> str:
        card = next(card for number, card in TEST_CARDS.items() if number.endswith(last_four))
        request = SaveMethodRequest(customer, f"{PUBLIC_URL}/autopay/done", f"{PUBLIC_URL}/autopay")
        checkout = await gateway.start_saving_method(request, f"save-{customer}-{last_four}")
        await gateway.submit_card(checkout.reference, card, "12/2030")
        reference = (await gateway.read_payment(checkout.reference)).saved_method_reference
        assert reference is not None
        return reference

    return save
