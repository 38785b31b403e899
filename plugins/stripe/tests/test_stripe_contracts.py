"""The SDK's payment gateway contract, run against the Stripe adapter and localstripe."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pytest
from carefront_sdk.models import CheckoutRequest, Money
from carefront_sdk.testing import FakeClock, GatewayContract, GatewaySample
from carefront_stripe import hooks
from carefront_stripe.gateway import StripeGateway


class TestStripeGateway(GatewayContract):
    @pytest.fixture
    async def gateway_sample(
        self,
        gateway: StripeGateway,
        patient: Any,
        save_card: Any,
        new_reference: Callable[[], str],
        stripe_event: Callable[[str, Mapping[str, Any], datetime], bytes],
        sign: Callable[..., str],
        carefront_clock: FakeClock,
    ) -> GatewaySample:
        customer = new_reference()
        saved = await save_card(gateway, customer, patient.GOOD_CARD)
        declining = await save_card(gateway, customer, patient.DECLINED_CARD)
        # The notification is a real payment_intent.succeeded: a checkout paid at localstripe, as
        # localstripe serialises the intent, in Stripe's event envelope.
        request = CheckoutRequest(
            Money(4200), "Statement balance", customer, "https://portal.test/r", "https://portal.test/c"
        )
        checkout = await gateway.start_checkout(request, f"sample-{customer}")
        await patient.pay(checkout, patient.GOOD_CARD)
        intent = await patient.raw(f"/v1/payment_intents/{checkout.reference}")
        return GatewaySample(
            customer_reference=customer,
            saved_method=saved,
            declining_method=declining,
            webhook_body=stripe_event("payment_intent.succeeded", intent, carefront_clock()),
            sign=lambda body: {"Stripe-Signature": sign(body)},
            plugin=hooks,
            adapter_name="stripe",
        )
