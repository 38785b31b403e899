"""The OpenID Connect client: signing in through a hospital's provider, with every check the protocol asks.

A service: it knows the protocol, nothing of the portal's pages or tables. :meth:`OidcClient.begin`
makes the authorization URL (authorization code flow, PKCE S256, a random state and nonce) and the
flow the caller keeps in the server-side session; :meth:`OidcClient.complete` takes the callback's
query and that flow, checks the state, exchanges the code (with the PKCE verifier) and verifies the
id_token: its signature against the provider's JWKS, issuer, audience, expiry, issued-at and nonce.

A failed check raises :class:`SignInFailed` naming the check; a provider that does not answer raises
:class:`ProviderUnavailable`. Log lines name the check or the step, never a token or a claim's value.

The discovery document and the JWKS are cached per issuer; an id_token signed with a key missing from
the cached JWKS fetches it again once (the provider rotated its keys). All HTTP goes through one httpx
transport with a timeout; tests and the demo may give their own (e.g. ``httpx.ASGITransport``).
"""

from __future__ import annotations

import logging
import secrets
import time
import warnings
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from authlib.integrations.base_client import OAuthError
from authlib.oidc.core import CodeIDToken
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from portal.settings import OidcProvider

with warnings.catch_warnings():
    # authlib notes on import that it would rather drive httpx2; the portal's HTTP client is httpx.
    warnings.filterwarnings("ignore", message="The httpx module is deprecated")
    from authlib.integrations.httpx_client import AsyncOAuth2Client

log = logging.getLogger("carefront.oidc")

HTTP_TIMEOUT_SECONDS = 10.0
FLOW_LIFETIME = timedelta(minutes=10)
"""How long a sign-in may take at the provider before the callback is refused."""
CLOCK_LEEWAY_SECONDS = 60
MAX_TOKEN_AGE = timedelta(minutes=10)
"""An id_token issued longer ago than this is refused: the portal asks for one and uses it at once."""
DISCOVERY_TTL_SECONDS = 3600.0
JWKS_TTL_SECONDS = 600.0
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Asymmetric signatures only: never "none", never a MAC keyed with the client secret."""

# The names of the failing checks, as log lines and tests use them, in the order claims are checked.
CLAIM_CHECKS = {
    "iss": "issuer",
    "aud": "audience",
    "azp": "audience",
    "exp": "expiry",
    "iat": "issued-at",
    "nbf": "issued-at",
    "at_hash": "signature",
}


class SignInFailed(Exception):
    """The sign-in did not complete; ``check`` names what failed (safe to log, never a value)."""

    def __init__(self, check: str) -> None:
        super().__init__(check)
        self.check = check


class ProviderUnavailable(Exception):
    """The provider did not answer, or answered nonsense; ``step`` names the call."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


@dataclass(frozen=True, slots=True)
class VerifiedIdentity:
    """Who the provider says signed in, after every check passed."""

    issuer: str
    subject: str
    email: str | None
    name: str | None
    given_name: str | None
    family_name: str | None
    groups: tuple[str, ...]
    amr: tuple[str, ...]
    acr: str | None


@dataclass(frozen=True, slots=True)
class Authorization:
    url: str
    """Where to send the browser."""
    flow: dict[str, str]
    """Keep it in the server-side session, and give it back to :meth:`OidcClient.complete`."""


STATE_KEY = "oidc_client"
"""Where the app keeps its one :class:`OidcClient` (tests may put one with their own transport there)."""


def client_of(state: MutableMapping[str, Any]) -> OidcClient:
    """The app's client, made on first use: its caches live as long as the app."""
    client = state.get(STATE_KEY)
    if not isinstance(client, OidcClient):
        client = state[STATE_KEY] = OidcClient()
    return client


@dataclass
class _Cached:
    value: dict[str, Any]
    fetched_at: float


class OidcClient:
    """The portal's client of its OpenID providers, with their discovery documents and keys cached."""

    def __init__(
        self, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = HTTP_TIMEOUT_SECONDS
    ) -> None:
        self.transport = transport
        self.timeout = timeout
        self._metadata: dict[str, _Cached] = {}
        self._jwks: dict[str, _Cached] = {}

    async def begin(self, provider: OidcProvider, redirect_uri: str, now: datetime) -> Authorization:
        """The provider's authorization URL for a new sign-in, and the flow that completes it."""
        metadata = await self.metadata(provider)
        state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        async with self._oauth(provider, redirect_uri) as oauth:
            url, _ = oauth.create_authorization_url(
                metadata["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
            )
        flow = {"issuer": provider.issuer, "state": state, "nonce": nonce, "verifier": verifier}
        return Authorization(url=url, flow=flow | {"started_at": now.isoformat()})

    async def complete(
        self,
        provider: OidcProvider,
        redirect_uri: str,
        flow: Mapping[str, str] | None,
        params: Mapping[str, str],
        now: datetime,
    ) -> VerifiedIdentity:
        """Check the callback against ``flow``, exchange its code and verify the id_token."""
        if not flow or flow.get("issuer") != provider.issuer:
            raise SignInFailed("state")  # no sign-in was begun here (or it was for another provider)
        if not secrets.compare_digest(params.get("state", "").encode(), flow["state"].encode()):
            raise SignInFailed("state")
        if now - datetime.fromisoformat(flow["started_at"]) > FLOW_LIFETIME:
            raise SignInFailed("flow-expired")
        if "error" in params:
            # The provider refused, e.g. access_denied or invalid_request (PKCE missing).
            raise SignInFailed("provider-error")
        if not params.get("code"):
            raise SignInFailed("code-missing")
        if "iss" in params and params["iss"] != provider.issuer:
            raise SignInFailed("issuer")  # RFC 9207: the answer came from another provider (mix-up)
        metadata = await self.metadata(provider)
        async with self._oauth(provider, redirect_uri, metadata) as oauth:
            try:
                token = await oauth.fetch_token(
                    metadata["token_endpoint"],
                    grant_type="authorization_code",
                    code=params["code"],
                    code_verifier=flow["verifier"],
                )
            except OAuthError:
                # invalid_grant: a replayed or expired code, a wrong PKCE verifier, a wrong client secret.
                raise SignInFailed("token-exchange") from None
            except (httpx.HTTPError, ValueError):
                raise ProviderUnavailable("token") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SignInFailed("id-token-missing")
        access_token = token.get("access_token")
        return await self.verify(
            provider,
            id_token,
            nonce=flow["nonce"],
            now=now,
            access_token=access_token if isinstance(access_token, str) else None,
        )

    async def verify(
        self, provider: OidcProvider, id_token: str, *, nonce: str, now: datetime, access_token: str | None = None
    ) -> VerifiedIdentity:
        """Verify an id_token's signature with the provider's keys, then its claims."""
        try:
            decoded = jwt.decode(id_token, await self.keys(provider), algorithms=ALGORITHMS)
        except InvalidKeyIdError:
            # Signed with a key we have not seen: the provider may have rotated its keys since we cached them.
            try:
                decoded = jwt.decode(id_token, await self.keys(provider, refresh=True), algorithms=ALGORITHMS)
            except JoseError:
                raise SignInFailed("signature") from None
        except JoseError:
            raise SignInFailed("signature") from None
        return verified_identity(
            provider, decoded.header, decoded.claims, nonce=nonce, now=now, access_token=access_token
        )

    async def metadata(self, provider: OidcProvider) -> dict[str, Any]:
        """The provider's discovery document, checked, from the cache while it is fresh."""
        cached = self._metadata.get(provider.issuer)
        if cached and time.monotonic() - cached.fetched_at < DISCOVERY_TTL_SECONDS:
            return cached.value
        url = provider.issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery")
        try:
            OpenIDProviderMetadata(document).validate()
        except (ValueError, KeyError, TypeError):
            log.warning("issuer=%s discovery document is not valid OpenID provider metadata", provider.issuer)
            raise ProviderUnavailable("discovery") from None
        if document.get("issuer") != provider.issuer:
            log.warning("issuer=%s discovery document names another issuer", provider.issuer)
            raise ProviderUnavailable("discovery")
        self._metadata[provider.issuer] = _Cached(document, time.monotonic())
        return document

    async def keys(self, provider: OidcProvider, *, refresh: bool = False) -> KeySet:
        """The provider's signing keys, from the cache while it is fresh (unless ``refresh``)."""
        cached = self._jwks.get(provider.issuer)
        if refresh or not cached or time.monotonic() - cached.fetched_at >= JWKS_TTL_SECONDS:
            metadata = await self.metadata(provider)
            cached = _Cached(await self._get_json(metadata["jwks_uri"], "jwks"), time.monotonic())
            self._jwks[provider.issuer] = cached
        try:
            return KeySet.import_key_set(cached.value)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError):
            raise ProviderUnavailable("jwks") from None

    async def _get_json(self, url: str, step: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=self.timeout) as http:
                response = await http.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            document = response.json()
        except (httpx.HTTPError, ValueError):
            log.warning("OpenID provider %s request failed", step)
            raise ProviderUnavailable(step) from None
        if not isinstance(document, dict):
            raise ProviderUnavailable(step)
        return document

    def _oauth(
        self, provider: OidcProvider, redirect_uri: str, metadata: Mapping[str, Any] | None = None
    ) -> AsyncOAuth2Client:
        if provider.client_secret is None:
            method = "none"
        else:
            supported = (metadata or {}).get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
            method = "client_secret_basic" if "client_secret_basic" in supported else "client_secret_post"
        return AsyncOAuth2Client(
            client_id=provider.client_id,
            client_secret=provider.client_secret,
            token_endpoint_auth_method=method,
            scope=" ".join(provider.scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            transport=self.transport,
            timeout=self.timeout,
        )


def verified_identity(
    provider: OidcProvider,
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    *,
    nonce: str,
    now: datetime,
    access_token: str | None = None,
) -> VerifiedIdentity:
    """Check an id_token's claims (its signature already verified) and read the identity from them.

    The checks run in a fixed order, so that a token wrong in several ways is named by its first
    failure: issuer, audience, expiry, issued-at, then the nonce.
    """
    ordered = {name: claims[name] for name in CLAIM_CHECKS if name in claims} | dict(claims)
    id_token = CodeIDToken(
        ordered,
        dict(header),
        options={
            "iss": {"essential": True, "value": provider.issuer},
            "aud": {"essential": True, "value": provider.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
            "nonce": {"essential": True},
        },
        # With the access token, an at_hash claim is checked too.
        params={"nonce": nonce, "client_id": provider.client_id, "access_token": access_token},
    )
    try:
        id_token.validate(now=int(now.timestamp()), leeway=CLOCK_LEEWAY_SECONDS)
    except ExpiredTokenError:
        raise SignInFailed("expiry") from None
    except ClaimError as error:
        raise SignInFailed(CLAIM_CHECKS.get(error.claim, error.claim)) from None
    if now.timestamp() - id_token["iat"] > (MAX_TOKEN_AGE.total_seconds() + CLOCK_LEEWAY_SECONDS):
        raise SignInFailed("issued-at")
    return VerifiedIdentity(
        issuer=provider.issuer,
        subject=id_token["sub"],
        email=_text(id_token.get("email")),
        name=_text(id_token.get("name")),
        given_name=_text(id_token.get("given_name")),
        family_name=_text(id_token.get("family_name")),
        groups=_texts(id_token.get(provider.groups_claim)),
        amr=_texts(id_token.get("amr")),
        acr=_text(id_token.get("acr")),
    )


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _texts(value: Any) -> tuple[str, ...]:
    """A claim that should be a list of strings; a single string counts as a list of one."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(item for item in value if isinstance(item, str))
    return ()
