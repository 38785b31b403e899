"""Carefront's Stripe payment gateway: PaymentIntents with the Payment Element, SetupIntents for
autopay, off-session charges, refunds and verified webhooks.

:data:`CSP_SOURCES` lists the origins a page that mounts Stripe's element must allow.
"""

from carefront_stripe.settings import CSP_SOURCES

__all__ = ["CSP_SOURCES"]
