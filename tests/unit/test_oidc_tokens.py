"""The OpenID Connect client's checks, with id_tokens signed here by a test key (no provider needed).

The provider's discovery document, JWKS and token endpoint are an ``httpx.MockTransport``: each test
can count what the client fetched.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from portal.identity import oidc
from portal.settings import OidcProvider

ISSUER = "https://login.hospital.example.org"
CLIENT_ID = "carefront-staff"
REDIRECT_URI = "https://portal.example.org/staff/sign-in/callback"
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
PROVIDER = OidcProvider(issuer=ISSUER, client_id=CLIENT_ID, client_secret="s3cret", roles={"reps": "representative"})


def rsa_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, {"kid": kid, "use": "sig", "alg": "RS256"}, private=True)


KEY = rsa_key("key-1")


def claims(**changes: Any) -> dict[str, Any]:
    base = {
        "iss": ISSUER,
        "sub": "248289761001",
        "aud": CLIENT_ID,
        "iat": int(NOW.timestamp()) - 5,
        "exp": int(NOW.timestamp()) + 300,
        "nonce": "the-nonce",
        "email": "pat.lee@hospital.example.org",
        "name": "Pat Lee",
        "groups": ["reps", "everyone"],
        "amr": ["pwd", "otp"],
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def sign(payload: dict[str, Any], key: RSAKey | OctKey = KEY, alg: str = "RS256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid or "none"}, payload, key, algorithms=[alg])


class Provider:
    """A provider's HTTP answers; ``keys`` is what its JWKS lists now, and every request is counted."""

    def __init__(self, keys: list[RSAKey] | None = None, id_token: str | None = None) -> None:
        self.keys = keys if keys is not None else [KEY]
        self.id_token = id_token
        self.token_status = 200
        self.requests: list[str] = []
        self.token_forms: list[dict[str, list[str]]] = []
        self.discovery_issuer = ISSUER

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(path)
        if path == "/.well-known/openid-configuration":
            return httpx.Response(
                200,
                json={
                    "issuer": self.discovery_issuer,
                    "authorization_endpoint": f"{ISSUER}/authorize",
                    "token_endpoint": f"{ISSUER}/token",
                    "jwks_uri": f"{ISSUER}/jwks",
                    "response_types_supported": ["code"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [key.as_dict(private=False) for key in self.keys]})
        if path == "/token":
            self.token_forms.append(parse_qs(request.content.decode()))
            if self.token_status != 200:
                return httpx.Response(self.token_status, json={"error": "invalid_grant"})
            return httpx.Response(200, json={"access_token": "at", "token_type": "Bearer", "id_token": self.id_token})
        return httpx.Response(404)

    def client(self) -> oidc.OidcClient:
        return oidc.OidcClient(transport=httpx.MockTransport(self.handle))


async def verify(token: str, provider: Provider | None = None, nonce: str = "the-nonce", now: datetime = NOW):
    return await (provider or Provider()).client().verify(PROVIDER, token, nonce=nonce, now=now)


async def failed_check(token: str, **kwargs: Any) -> str:
    with pytest.raises(oidc.SignInFailed) as failure:
        await verify(token, **kwargs)
    return failure.value.check


async def test_a_good_id_token_gives_the_identity():
    identity = await verify(sign(claims()))
    assert identity == oidc.VerifiedIdentity(
        issuer=ISSUER,
        subject="248289761001",
        email="pat.lee@hospital.example.org",
        name="Pat Lee",
        given_name=None,
        family_name=None,
        groups=("reps", "everyone"),
        amr=("pwd", "otp"),
        acr=None,
    )


async def test_a_changed_signature_is_refused():
    header, payload, signature = sign(claims()).split(".")
    flipped = ("A" if signature[5] != "A" else "B").join((signature[:5], signature[6:]))
    assert await failed_check(f"{header}.{payload}.{flipped}") == "signature"


async def test_changed_claims_under_the_old_signature_are_refused():
    header, _, signature = sign(claims()).split(".")
    forged = jwt.encode({"alg": "RS256", "kid": "key-1"}, claims(sub="someone-else"), KEY).split(".")[1]
    assert await failed_check(f"{header}.{forged}.{signature}") == "signature"


async def test_a_token_signed_by_another_key_with_the_same_kid_is_refused():
    assert await failed_check(sign(claims(), key=rsa_key("key-1"))) == "signature"


async def test_an_unsigned_token_is_refused():
    payload = sign(claims()).split(".")[1]
    assert await failed_check(f"eyJhbGciOiJub25lIn0.{payload}.") == "signature"  # {"alg":"none"}


async def test_a_token_keyed_with_the_client_secret_is_refused():
    secret_key = OctKey.import_key(b"s3cret" * 6, {"kid": "key-1"})
    assert await failed_check(sign(claims(), key=secret_key, alg="HS256")) == "signature"


async def test_a_token_for_another_client_is_refused():
    assert await failed_check(sign(claims(aud="another-app"))) == "audience"


async def test_several_audiences_need_this_client_as_authorized_party():
    assert await failed_check(sign(claims(aud=[CLIENT_ID, "another-app"]))) == "audience"
    identity = await verify(sign(claims(aud=[CLIENT_ID, "another-app"], azp=CLIENT_ID)))
    assert identity.subject == "248289761001"


async def test_a_token_from_another_issuer_is_refused():
    assert await failed_check(sign(claims(iss="https://evil.example.org"))) == "issuer"


async def test_an_expired_token_is_refused_after_the_leeway():
    expired = sign(claims(exp=int(NOW.timestamp()) - 1))
    assert (await verify(expired)).subject  # within the minute of clock skew
    later = NOW + timedelta(seconds=oidc.CLOCK_LEEWAY_SECONDS + 1)
    assert await failed_check(expired, now=later) == "expiry"


async def test_a_token_issued_in_the_future_or_long_ago_is_refused():
    assert await failed_check(sign(claims(iat=int(NOW.timestamp()) + 3600))) == "issued-at"
    stale = claims(iat=int((NOW - timedelta(hours=1)).timestamp()), exp=int(NOW.timestamp()) + 3600)
    assert await failed_check(sign(stale)) == "issued-at"


@pytest.mark.parametrize("nonce", ["another-nonce", None])
async def test_a_missing_or_other_nonce_is_refused(nonce):
    assert await failed_check(sign(claims(nonce=nonce))) == "nonce"


@pytest.mark.parametrize(("claim", "check"), [("sub", "sub"), ("exp", "expiry"), ("iat", "issued-at")])
async def test_essential_claims_must_be_there(claim, check):
    assert await failed_check(sign(claims(**{claim: None}))) == check


async def test_keys_are_cached_and_fetched_again_once_for_an_unknown_kid():
    provider = Provider(keys=[KEY])
    client = provider.client()
    await client.verify(PROVIDER, sign(claims()), nonce="the-nonce", now=NOW)
    await client.verify(PROVIDER, sign(claims()), nonce="the-nonce", now=NOW)
    assert provider.requests.count("/jwks") == 1
    assert provider.requests.count("/.well-known/openid-configuration") == 1

    rotated = rsa_key("key-2")
    provider.keys = [KEY, rotated]
    identity = await client.verify(PROVIDER, sign(claims(), key=rotated), nonce="the-nonce", now=NOW)
    assert identity.subject == "248289761001"
    assert provider.requests.count("/jwks") == 2

    with pytest.raises(oidc.SignInFailed) as failure:
        await client.verify(PROVIDER, sign(claims(), key=rsa_key("key-3")), nonce="the-nonce", now=NOW)
    assert failure.value.check == "signature"
    assert provider.requests.count("/jwks") == 3, "one fetch for the unknown key, not more"


async def test_a_discovery_document_naming_another_issuer_makes_the_provider_unavailable():
    provider = Provider()
    provider.discovery_issuer = "https://evil.example.org"
    with pytest.raises(oidc.ProviderUnavailable) as failure:
        await provider.client().begin(PROVIDER, REDIRECT_URI, NOW)
    assert failure.value.step == "discovery"


async def test_a_provider_that_does_not_answer_is_unavailable():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = oidc.OidcClient(transport=httpx.MockTransport(refuse))
    with pytest.raises(oidc.ProviderUnavailable):
        await client.begin(PROVIDER, REDIRECT_URI, NOW)


async def begin(provider: Provider) -> tuple[oidc.OidcClient, oidc.Authorization, dict[str, list[str]]]:
    client = provider.client()
    authorization = await client.begin(PROVIDER, REDIRECT_URI, NOW)
    return client, authorization, parse_qs(urlsplit(authorization.url).query)


async def test_begin_asks_for_a_code_with_pkce_s256_state_and_nonce():
    _, authorization, query = await begin(Provider())
    assert authorization.url.startswith(f"{ISSUER}/authorize?")
    assert query["response_type"] == ["code"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["redirect_uri"] == [REDIRECT_URI]
    assert query["scope"] == ["openid email profile"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["state"] == [authorization.flow["state"]]
    assert query["nonce"] == [authorization.flow["nonce"]]
    # The verifier stays on the server: only its hash travels.
    assert authorization.flow["verifier"] not in authorization.url
    assert len(query["code_challenge"][0]) == 43


async def test_complete_exchanges_the_code_with_the_verifier():
    provider = Provider()
    client, authorization, _ = await begin(provider)
    provider.id_token = sign(claims(nonce=authorization.flow["nonce"]))
    params = {"code": "the-code", "state": authorization.flow["state"]}
    identity = await client.complete(PROVIDER, REDIRECT_URI, authorization.flow, params, NOW)
    assert identity.subject == "248289761001"
    (form,) = provider.token_forms
    assert form["code"] == ["the-code"]
    assert form["code_verifier"] == [authorization.flow["verifier"]]
    assert form["grant_type"] == ["authorization_code"]
    assert form["redirect_uri"] == [REDIRECT_URI]


@pytest.mark.parametrize(
    ("change", "check"),
    [
        (lambda flow, params: params.update(state=secrets.token_urlsafe(32)), "state"),
        (lambda flow, params: params.pop("state"), "state"),
        (lambda flow, params: params.update(state="\u00e9t\u00e9"), "state"),
        (lambda flow, params: flow.clear(), "state"),
        (lambda flow, params: flow.update(issuer="https://other.example.org"), "state"),
        (lambda flow, params: params.update(error="access_denied"), "provider-error"),
        (lambda flow, params: params.pop("code"), "code-missing"),
        (lambda flow, params: params.update(iss="https://other.example.org"), "issuer"),
        (lambda flow, params: flow.update(started_at=(NOW - timedelta(minutes=11)).isoformat()), "flow-expired"),
    ],
)
async def test_complete_refuses_a_callback_that_does_not_match_the_flow(change, check):
    provider = Provider()
    client, authorization, _ = await begin(provider)
    provider.id_token = sign(claims(nonce=authorization.flow["nonce"]))
    flow, params = dict(authorization.flow), {"code": "the-code", "state": authorization.flow["state"]}
    change(flow, params)
    with pytest.raises(oidc.SignInFailed) as failure:
        await client.complete(PROVIDER, REDIRECT_URI, flow, params, NOW)
    assert failure.value.check == check
    assert provider.token_forms == [], "nothing is exchanged for a callback that fails its checks"


async def test_a_refused_code_exchange_is_a_failed_sign_in():
    provider = Provider()
    client, authorization, _ = await begin(provider)
    provider.token_status = 400
    params = {"code": "the-code", "state": authorization.flow["state"]}
    with pytest.raises(oidc.SignInFailed) as failure:
        await client.complete(PROVIDER, REDIRECT_URI, authorization.flow, params, NOW)
    assert failure.value.check == "token-exchange"


async def test_the_token_endpoint_failing_is_unavailable():
    provider = Provider()
    client, authorization, _ = await begin(provider)
    provider.token_status = 502
    params = {"code": "the-code", "state": authorization.flow["state"]}
    with pytest.raises(oidc.ProviderUnavailable):
        await client.complete(PROVIDER, REDIRECT_URI, authorization.flow, params, NOW)


def test_a_failure_names_the_check_and_carries_no_value():
    failure = oidc.SignInFailed("audience")
    assert str(failure) == "audience"
    assert json.dumps(failure.args) == '["audience"]'
