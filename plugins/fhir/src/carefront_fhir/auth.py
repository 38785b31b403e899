"""SMART Backend Services authorization: a signed client assertion buys an access token, kept until
shortly before it expires.

The assertion is a JWT signed with the client's private key (RS384 or ES384) whose ``iss`` and
``sub`` are the client id, ``aud`` the token endpoint, ``exp`` a few minutes ahead and ``jti``
unique; it is posted with ``grant_type=client_credentials`` (SMART App Launch 2.x, Backend
Services). The token endpoint comes from configuration or from the server's
``.well-known/smart-configuration``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass

import httpx
from authlib.oauth2.rfc7523 import private_key_jwt_sign  # type: ignore[import-untyped]
from carefront_sdk.errors import Unavailable

from carefront_fhir.config import Settings

__all__ = ["ASSERTION_LIFETIME", "ASSERTION_TYPE", "SmartAuth"]

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 120
"""Seconds an assertion is valid; Backend Services allows at most 300."""

_REFRESH_MARGIN = 30.0
"""Refresh this many seconds before expiry (or at 90 % of a shorter lifetime)."""


@dataclass(frozen=True, slots=True)
class _Token:
    value: str
    refresh_at: float
    """``monotonic()`` time after which the token is fetched anew."""


class SmartAuth:
    """Fetches, caches and refreshes the access token of one client."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        assert settings.private_key is not None, "read_settings checks the key when auth is smart"
        self._settings = settings
        self._key = settings.private_key
        self._http = http
        self._token_url = settings.token_url
        self._token: _Token | None = None
        # One refresh at a time: twenty concurrent calls must not buy twenty tokens.
        self._lock = asyncio.Lock()

    async def authorization(self) -> str:
        """The ``Authorization`` header value, fetching a token when none is fresh."""
        token = self._token
        if token is None or time.monotonic() >= token.refresh_at:
            async with self._lock:
                token = self._token
                if token is None or time.monotonic() >= token.refresh_at:
                    token = self._token = await self._fetch()
        return f"Bearer {token.value}"

    def forget(self, rejected: str) -> None:
        """Drop the token the server just refused (401), unless a newer one has replaced it."""
        if self._token is not None and f"Bearer {self._token.value}" == rejected:
            self._token = None

    async def _discover(self) -> str:
        url = f"{self._settings.base_url}/.well-known/smart-configuration"
        try:
            response = await self._http.get(url, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise Unavailable(f"fhir: {type(error).__name__} reading smart-configuration") from None
        if response.status_code != 200:
            raise Unavailable(f"fhir: smart-configuration answered {response.status_code}")
        try:
            endpoint = response.json()["token_endpoint"]
        except (ValueError, KeyError, TypeError):
            raise Unavailable("fhir: smart-configuration has no token_endpoint") from None
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            raise Unavailable("fhir: smart-configuration's token_endpoint is not a URL")
        return endpoint

    def _assertion(self, token_url: str) -> str:
        header = {"typ": "JWT"}
        if self._settings.key_id:
            header["kid"] = self._settings.key_id
        now = int(time.time())
        return str(
            private_key_jwt_sign(
                self._key,
                client_id=self._settings.client_id,
                token_endpoint=token_url,
                alg=self._settings.algorithm,
                claims={"jti": uuid.uuid4().hex},
                header=header,
                issued_at=now,
                expires_at=now + ASSERTION_LIFETIME,
            )
        )

    async def _fetch(self) -> _Token:
        if not self._token_url:
            self._token_url = await self._discover()
        form = {
            "grant_type": "client_credentials",
            "scope": " ".join(self._settings.scopes),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self._assertion(self._token_url),
        }
        started = time.monotonic()
        try:
            response = await self._http.post(self._token_url, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as error:
            raise Unavailable(f"fhir: {type(error).__name__} calling the token endpoint") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            # The OAuth error code (invalid_client, invalid_scope...) names the problem and holds no PHI.
            error_code = body.get("error", "no error code") if isinstance(body, dict) else "no error code"
            raise Unavailable(f"fhir: token endpoint answered {response.status_code} ({error_code})")
        value, expires_in = body.get("access_token"), body.get("expires_in", 300)
        if not isinstance(value, str) or not value or not isinstance(expires_in, int | float) or expires_in <= 0:
            raise Unavailable("fhir: token endpoint's answer has no usable access_token and expires_in")
        lifetime = float(expires_in)
        log.info("fhir: new access token, valid %.0f s", lifetime)
        return _Token(value, started + lifetime - min(_REFRESH_MARGIN, lifetime / 10))
