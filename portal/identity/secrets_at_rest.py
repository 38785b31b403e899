"""Encryption of small secrets the portal must keep and read back (TOTP seeds), at rest in the database.

Reusable by any domain: ``encrypt(settings, text) -> str`` and ``decrypt(settings, token) -> str``.
The key is derived from ``settings.secret_key`` with HKDF-SHA256 (its own ``info`` label, so it never
equals a key used elsewhere), and the text is sealed with Fernet (AES-128-CBC + HMAC-SHA256): a token
changed by one byte, or sealed under another secret key, fails to decrypt with :class:`SecretUnreadable`.
Rotating ``secret_key`` therefore makes stored secrets unreadable: people enrol their authenticator again.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from portal.settings import Settings

_INFO = b"carefront secrets at rest v1"


class SecretUnreadable(Exception):
    """The stored token was altered, or sealed under a different secret key."""


def encrypt(settings: Settings, text: str) -> str:
    """Seal ``text``; the result is ASCII, safe for a text column, different on every call."""
    return _fernet(settings.secret_key).encrypt(text.encode()).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    """Open a token made by :func:`encrypt` under the same ``secret_key``."""
    try:
        return _fernet(settings.secret_key).decrypt(token.encode("ascii")).decode()
    except (InvalidToken, UnicodeError):
        raise SecretUnreadable from None


def unseal(settings: Settings, sealed: object) -> str | None:
    """What :func:`encrypt` sealed into ``sealed`` (a session value, say); None when absent or unreadable."""
    if not isinstance(sealed, str):
        return None
    try:
        return decrypt(settings, sealed)
    except SecretUnreadable:
        return None


@lru_cache(maxsize=4)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))
