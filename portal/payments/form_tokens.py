"""The pay form's token: minted when the pay page renders, it becomes the payment's idempotency key.

A double-tap, a resubmit or many concurrent submits of one form carry one token, so they find one
ledger row and one gateway checkout (PROMISES.md 10). The token is signed with the portal's secret
for the patient it was shown to: a token from another patient's page, or a made-up one, is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def _signature(secret: str, patient_id: str, nonce: str) -> str:
    digest = hmac.new(secret.encode(), f"pay-form:{patient_id}:{nonce}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def mint(secret: str, patient_id: str) -> str:
    """A new token for a pay form shown to ``patient_id``."""
    nonce = secrets.token_urlsafe(18)
    return f"{nonce}.{_signature(secret, patient_id, nonce)}"


def idempotency_key(secret: str, patient_id: str, token: str) -> str | None:
    """The payment's idempotency key for ``token``; None unless the token was minted for this patient."""
    nonce, _, signature = token.partition(".")
    if not nonce or len(token) > 100 or not hmac.compare_digest(signature, _signature(secret, patient_id, nonce)):
        return None
    return f"pay:{nonce}"
