"""How long the adapter's calls take against localstripe on this machine, printed as a table.

The figures are the adapter's own cost (HTTP round trips to a local fake, the ledger's SQLite, the
translation), not Stripe's: Stripe's own answers take 100-600 ms more. The ceiling asserted is loose,
there to catch an accidental extra round trip per call or a sleep, not to benchmark.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from carefront_sdk.models import CheckoutRequest, Money, OffSessionCharge, RefundRequest, SaveMethodRequest
from carefront_sdk.testing import FakeClock
from carefront_stripe.gateway import StripeGateway

ROUNDS = 25
CEILING_SECONDS = 0.5


async def _timed(work: Callable[[], Awaitable[Any]]) -> list[float]:
    seconds = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        await work()
        seconds.append(time.perf_counter() - started)
    return seconds


async def test_call_latencies_against_localstripe(
    gateway: StripeGateway,
    patient: Any,
    save_card: Any,
    stripe_event: Callable[..., bytes],
    sign: Callable[..., str],
    carefront_clock: FakeClock,
    capsys: pytest.CaptureFixture[str],
) -> None:
    customer = f"guarantor-{uuid.uuid4().hex}"
    method = await save_card(gateway, customer, patient.GOOD_CARD)
    request = CheckoutRequest(Money(2500), "Statement", customer, "https://portal.test/r", "https://portal.test/c")
    checkout = await gateway.start_checkout(request, f"warm-{uuid.uuid4()}")
    await patient.pay(checkout, patient.GOOD_CARD)
    body = stripe_event(
        "payment_intent.succeeded", await patient.raw(f"/v1/payment_intents/{checkout.reference}"), carefront_clock()
    )
    headers = {"Stripe-Signature": sign(body)}
    replayed_key = f"replay-{uuid.uuid4()}"
    await gateway.start_checkout(request, replayed_key)

    async def new_customer_checkout() -> None:
        fresh = CheckoutRequest(Money(2500), "Statement", f"guarantor-{uuid.uuid4().hex}", "https://p/r", "https://p/c")
        await gateway.start_checkout(fresh, f"key-{uuid.uuid4()}")

    async def refund_a_charge() -> None:
        charge = OffSessionCharge(method, customer, Money(300), "Installment")
        paid = await gateway.charge_saved_method(charge, f"key-{uuid.uuid4()}")
        started = time.perf_counter()
        await gateway.refund(RefundRequest(paid.reference, Money(300), "test"), f"key-{uuid.uuid4()}")
        refund_seconds.append(time.perf_counter() - started)

    refund_seconds: list[float] = []
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "health": gateway.health,
        "start_checkout (known guarantor)": lambda: gateway.start_checkout(request, f"key-{uuid.uuid4()}"),
        "start_checkout (new guarantor)": new_customer_checkout,
        "start_checkout (repeated key)": lambda: gateway.start_checkout(request, replayed_key),
        "read_payment": lambda: gateway.read_payment(checkout.reference),
        "start_saving_method": lambda: gateway.start_saving_method(
            SaveMethodRequest(customer, "https://p/d", "https://p/a"), f"key-{uuid.uuid4()}"
        ),
        "read_saved_method": lambda: gateway.read_saved_method(method),
        "charge_saved_method": lambda: gateway.charge_saved_method(
            OffSessionCharge(method, customer, Money(300), "Installment"), f"key-{uuid.uuid4()}"
        ),
        "parse_webhook": lambda: gateway.parse_webhook(body, headers),
    }
    results = {name: await _timed(work) for name, work in calls.items()}
    await _timed(refund_a_charge)
    results["refund"] = refund_seconds

    with capsys.disabled():
        print(f"\nStripe adapter against localstripe, {ROUNDS} calls each (ms):")
        print(f"  {'call':<34}{'median':>8}{'p95':>8}{'max':>8}")
        for name, seconds in results.items():
            ordered = sorted(seconds)
            p95 = ordered[int(0.95 * (len(ordered) - 1))]
            print(f"  {name:<34}{statistics.median(ordered) * 1000:>8.1f}{p95 * 1000:>8.1f}{ordered[-1] * 1000:>8.1f}")
    for name, seconds in results.items():
        assert statistics.median(seconds) < CEILING_SECONDS, name
