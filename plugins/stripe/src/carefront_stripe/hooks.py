"""The Stripe plugin's hook: it offers the ``stripe`` payment gateway adapter."""

from __future__ import annotations

from carefront_sdk import hookimpl
from carefront_sdk.adapters import AdapterRegistry

from carefront_stripe.gateway import make_gateway
from carefront_stripe.settings import FIELDS, PLUGIN

__all__ = ["carefront_register_gateway"]


@hookimpl
def carefront_register_gateway(registry: AdapterRegistry) -> None:
    registry.add(PLUGIN, make_gateway, config=FIELDS)
