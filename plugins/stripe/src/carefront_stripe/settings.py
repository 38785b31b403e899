"""What a hospital configures for the Stripe gateway, and what a payment page must allow the browser.

The settings live under ``[adapters.stripe]`` in ``carefront.toml``; secrets are given by reference::

    [adapters.stripe]
    secret_key = { "$env" = "STRIPE_SECRET_KEY" }
    publishable_key = "pk_live_..."
    webhook_secret = { "$env" = "STRIPE_WEBHOOK_SECRET" }
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carefront_sdk.config import ConfigField
from carefront_sdk.errors import ConfigError

__all__ = ["CSP_SOURCES", "DEFAULT_API_BASE", "FIELDS", "PLUGIN", "StripeSettings"]

PLUGIN = "stripe"

DEFAULT_API_BASE = "https://api.stripe.com"

CSP_SOURCES: Mapping[str, tuple[str, ...]] = {
    "script-src": ("https://js.stripe.com",),
    "frame-src": ("https://js.stripe.com", "https://hooks.stripe.com"),
    "connect-src": ("https://api.stripe.com",),
}
"""The origins the payment pages must allow, by CSP directive: Stripe.js comes from js.stripe.com,
the Payment Element and 3-D Secure run in frames from js.stripe.com and hooks.stripe.com, and
Stripe.js talks to api.stripe.com. Nothing else, and only on pages that mount the element."""

FIELDS: tuple[ConfigField, ...] = (
    ConfigField("secret_key", str, "Stripe secret key (sk_live_... or a restricted rk_live_...)", secret=True),
    ConfigField("publishable_key", str, "Stripe publishable key (pk_live_...), handed to the Payment Element"),
    ConfigField("webhook_secret", str, "Signing secret of the webhook endpoint (whsec_...)", secret=True),
    ConfigField("api_base", str, "Base URL of the Stripe API; change it only to test", default=DEFAULT_API_BASE),
    ConfigField(
        "webhook_tolerance_seconds",
        int,
        "How old (or how far in the future) a webhook's signed timestamp may be",
        default=300,
    ),
    ConfigField(
        "statement_descriptor",
        str,
        "Suffix shown after the account's prefix on the patient's card statement (empty: Stripe's default)",
        default="",
    ),
    ConfigField("timeout_seconds", float, "Seconds one gateway call may take, retries included", default=8.0),
    ConfigField(
        "currency",
        str,
        "ISO 4217 code the hospital bills in; saving a card without a charge reports zero in it",
        default="USD",
    ),
)

_SECRET_PREFIXES = ("sk_", "rk_")
_STATEMENT_SUFFIX_LIMIT = 22
_FORBIDDEN_IN_DESCRIPTOR = set("<>\\'\"*")


@dataclass(frozen=True, slots=True)
class StripeSettings:
    """The resolved ``[adapters.stripe]`` settings, checked beyond their kinds."""

    secret_key: str
    publishable_key: str
    webhook_secret: str
    api_base: str
    webhook_tolerance_seconds: int
    statement_descriptor: str
    timeout_seconds: float
    currency: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> StripeSettings:
        settings = cls(**{spec.name: config[spec.name] for spec in FIELDS})
        settings._check()
        return settings

    def _check(self) -> None:
        if not self.secret_key.startswith(_SECRET_PREFIXES):
            raise ConfigError(PLUGIN, "secret_key", "a Stripe secret key starting sk_ or rk_")
        if not self.publishable_key.startswith("pk_"):
            raise ConfigError(PLUGIN, "publishable_key", "a Stripe publishable key starting pk_")
        if not self.webhook_secret.strip():
            raise ConfigError(PLUGIN, "webhook_secret", "the endpoint's signing secret (whsec_...)")
        if not self.api_base.startswith(("https://", "http://")):
            raise ConfigError(PLUGIN, "api_base", "an http(s) URL")
        if self.webhook_tolerance_seconds <= 0:
            raise ConfigError(PLUGIN, "webhook_tolerance_seconds", "a number of seconds above zero")
        if self.timeout_seconds <= 0:
            raise ConfigError(PLUGIN, "timeout_seconds", "a number of seconds above zero")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ConfigError(PLUGIN, "currency", "an ISO 4217 code such as USD")
        descriptor = self.statement_descriptor
        # Stripe's rules for a statement descriptor suffix: at most 22 characters, one letter, none of <>\'"*.
        if descriptor and (
            len(descriptor) > _STATEMENT_SUFFIX_LIMIT
            or not any(char.isalpha() for char in descriptor)
            or _FORBIDDEN_IN_DESCRIPTOR & set(descriptor)
        ):
            raise ConfigError(
                PLUGIN, "statement_descriptor", "at most 22 characters, with a letter and none of < > \\ ' \" *"
            )
