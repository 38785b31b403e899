"""The Stripe plugin's hooks: it offers the ``stripe`` payment gateway adapter, with what the portal's
payment page needs to mount the Payment Element, and serves the script that mounts it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from carefront_sdk import hookimpl
from carefront_sdk.adapters import AdapterRegistry
from carefront_sdk.models import GatewayPage

from carefront_stripe.gateway import make_gateway
from carefront_stripe.settings import CSP_SOURCES, FIELDS, PLUGIN

__all__ = ["PAGE", "STATIC", "carefront_register_gateway", "carefront_static_dirs"]

STATIC = Path(__file__).parent / "static"

PAGE = GatewayPage(csp=CSP_SOURCES, scripts=("https://js.stripe.com/v3/", f"plugins/{PLUGIN}/element.js"))
"""Stripe.js from Stripe (never bundled or self-hosted, as Stripe requires), then our element.js."""


@hookimpl
def carefront_register_gateway(registry: AdapterRegistry) -> None:
    registry.add(PLUGIN, make_gateway, config=FIELDS, page=PAGE)


@hookimpl
def carefront_static_dirs() -> Iterable[tuple[str, Path]]:
    return [(PLUGIN, STATIC)]
