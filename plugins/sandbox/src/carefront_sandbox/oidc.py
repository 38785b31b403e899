"""The sandbox's development OpenID provider: staff sign in to the demo without an outside identity provider.

Demo sign-in, not for production: anyone who reaches the page may sign in as any demo staff member.
It exists so that ``carefront demo`` runs the same staff sign-in code as a hospital's real provider:
OpenID Connect authorization code flow with PKCE (S256 required), RS256-signed id_tokens, discovery
and JWKS, built on authlib's authorization server components.

Under ``/-/sandbox/oidc`` (the issuer is that address on the host the request came to):
``/.well-known/openid-configuration``, ``/jwks``, ``/authorize`` (a page listing the demo staff, a
button each), ``/token``. One confidential client, documented here and in the README:

    client_id = "carefront-sandbox-staff"
    client_secret = "sandbox-staff-secret-not-a-secret"   (public on purpose, like the webhook secret)

It may redirect only to its own origin, i.e. to the portal that serves it. id_tokens carry
``groups`` (``carefront-representatives``, ``carefront-supervisors``, ``carefront-administrators``)
and ``amr: ["pwd", "otp"]``, so the portal's MFA rule is met. The signing key is made once per data
folder (``sandbox-oidc-key.json`` beside the sandbox's file); authorization codes live in memory
for five minutes and work once.
"""

from __future__ import annotations

import hmac
import json
import os
import random
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import (
    AuthorizationCodeGrant,
    AuthorizationCodeMixin,
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import OpenIDCode, UserInfo
from joserfc.jwk import RSAKey
from litestar import Request, Response, Router, get, post
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.response import Template

from carefront_sandbox import names
from carefront_sandbox.generator import plain_email
from carefront_sandbox.personas import demo_personas
from carefront_sandbox.store import live_stores

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "GROUPS", "PATH", "router"]

PATH = "/-/sandbox/oidc"
CLIENT_ID = "carefront-sandbox-staff"
CLIENT_SECRET = "sandbox-staff-secret-not-a-secret"  # noqa: S105 (published: the demo guards nothing real)
GROUPS = {
    "representative": "carefront-representatives",
    "supervisor": "carefront-supervisors",
    "administrator": "carefront-administrators",
}
"""The group each demo staff member is in; the demo maps each to the portal role of the same name."""
SCOPES = ("openid", "email", "profile", "groups")
AMR = ["pwd", "otp"]
CODE_LIFETIME_SECONDS = 300
KEY_FILE = "sandbox-oidc-key.json"

_PUBLIC = {"public": True}
_NO_STORE = CacheControlHeader(no_store=True)


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A demo staff member one can sign in as."""

    key: str
    role: str
    label: str
    given_name: str
    family_name: str
    email: str

    @property
    def subject(self) -> str:
        return f"sandbox-staff-{self.key}"


def staff_members(seed: int) -> list[StaffMember]:
    """The sandbox's staff personas (representative, supervisor), and an administrator, for ``seed``."""
    people = [
        StaffMember(p.role, p.role, p.label, p.given_name, p.family_name, p.email)
        for p in demo_personas(seed)
        if p.role in GROUPS
    ]
    rng = random.Random(f"carefront-sandbox-oidc-administrator:{seed}")
    given, family = rng.choice(names.GIVEN_NAMES_FEMALE), rng.choice(names.FAMILY_NAMES)
    email = plain_email(given, family, "staff.example.org")
    label = "An administrator: sets the portal up"
    return [*people, StaffMember("administrator", "administrator", label, given, family, email)]


# --- the provider of one data folder: its key, its codes --------------------------------------------


@dataclass
class _Code(AuthorizationCodeMixin):
    code: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    member: StaffMember
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> list[str]:
        return AMR


@dataclass
class _Provider:
    key: RSAKey
    seed: int
    codes: dict[str, _Code] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


_PROVIDERS: dict[Path, _Provider] = {}
_PROVIDERS_LOCK = threading.Lock()


def _provider() -> _Provider:
    """The provider of the sandbox file in use (the latest opened); 404 while no sandbox adapter is."""
    stores = live_stores()
    if not stores:
        raise NotFoundException()
    store = stores[-1]
    folder = store.path.parent
    with _PROVIDERS_LOCK:
        if folder not in _PROVIDERS:
            _PROVIDERS[folder] = _Provider(key=_signing_key(folder / KEY_FILE), seed=store.seed)
        return _PROVIDERS[folder]


def _signing_key(path: Path) -> RSAKey:
    """The data folder's RSA key, made on first use; the first process to write it wins."""
    if not path.exists():
        key = RSAKey.generate_key(2048, {"kid": secrets.token_urlsafe(8), "use": "sig", "alg": "RS256"}, private=True)
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
                json.dump(key.as_dict(private=True), handle)
        except FileExistsError:
            pass
    return RSAKey.import_key(json.loads(path.read_text()))


# --- authlib's authorization server, for one request ------------------------------------------------


class _Client(ClientMixin):
    """The demo client: a confidential client that may redirect only to the provider's own origin."""

    def __init__(self, origin: str) -> None:
        self.origin = origin

    def get_client_id(self) -> str:
        return CLIENT_ID

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(part for part in (scope or "").split() if part in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        parts = urlsplit(redirect_uri)
        return f"{parts.scheme}://{parts.netloc}" == self.origin and not parts.fragment

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(client_secret.encode(), CLIENT_SECRET.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in {"client_secret_basic", "client_secret_post"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items

    @property
    def data(self) -> dict[str, str]:
        return dict(self._items)

    @property
    def datalist(self) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for name, value in self._items:
            grouped.setdefault(name, []).append(value)
        return grouped


class _Request(OAuth2Request):
    """A Litestar request, its query or form already read, as authlib's server wants it."""

    def __init__(self, request: Request[Any, Any, Any], items: list[tuple[str, str]], member: StaffMember | None):
        super().__init__(request.method, str(request.url), headers=request.headers)
        self.payload = _Payload(items)
        self._form = dict(items)
        self.user = member

    @property
    def args(self) -> dict[str, str]:
        return self._form

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _RequirePkce(CodeChallenge):
    """PKCE on every request, and only S256."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with code_challenge_method=S256 is required.")
        super().validate_code_challenge(grant, redirect_uri)


class _CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
    provider: _Provider

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        with self.provider.lock:
            self.provider.codes[code] = _Code(
                code=code,
                redirect_uri=data["redirect_uri"],
                scope=request.scope,
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                member=request.user,
                auth_time=int(time.time()),
                expires_at=time.time() + CODE_LIFETIME_SECONDS,
            )

    def query_authorization_code(self, code: str, client: ClientMixin) -> _Code | None:
        with self.provider.lock:
            found = self.provider.codes.get(code)
        return found if found is not None and found.expires_at > time.time() else None

    def delete_authorization_code(self, authorization_code: _Code) -> None:
        with self.provider.lock:
            self.provider.codes.pop(authorization_code.code, None)

    def authenticate_user(self, authorization_code: _Code) -> StaffMember:
        return authorization_code.member


class _OpenIdCode(OpenIDCode):
    def __init__(self, issuer: str, key: RSAKey) -> None:
        super().__init__(require_nonce=True)
        self.issuer = issuer
        self.key = key

    def resolve_client_private_key(self, client: ClientMixin) -> RSAKey:
        return self.key

    def get_client_algorithm(self, client: ClientMixin) -> str:
        return "RS256"

    def get_client_claims(self, client: ClientMixin) -> dict[str, Any]:
        return {"iss": self.issuer}

    def get_encode_header(self, client: ClientMixin) -> dict[str, str]:
        return {"alg": "RS256", "kid": str(self.key.kid)}

    def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
        return False

    def generate_user_info(self, user: StaffMember, scope: str) -> UserInfo:
        return UserInfo(
            sub=user.subject,
            name=f"{user.given_name} {user.family_name}",
            given_name=user.given_name,
            family_name=user.family_name,
            email=user.email,
            email_verified=True,
            groups=[GROUPS[user.role]],
        )


class _Server(AuthorizationServer):
    """authlib's authorization server for one request: the issuer is the address the request came to."""

    def __init__(self, provider: _Provider, issuer: str) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.client = _Client(_origin(issuer))
        grant = type("_Grant", (_CodeGrant,), {"provider": provider})
        self.register_grant(grant, [_RequirePkce(required=True), _OpenIdCode(issuer, provider.key)])
        self.register_token_generator("default", BearerTokenGenerator(lambda **_: secrets.token_urlsafe(32)))

    def query_client(self, client_id: str) -> _Client | None:
        return self.client if client_id == CLIENT_ID else None

    def save_token(self, token: Mapping[str, Any], request: OAuth2Request) -> None:
        """Access tokens open nothing here (there is no userinfo endpoint): they are not kept."""

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        return request  # the handlers read the request (async in Litestar) and hand over a _Request

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No one listens."""

    def handle_response(self, status: int, body: Any, headers: Any) -> Response[Any]:
        return Response(
            content=body,
            status_code=status,
            headers=dict(headers),
            media_type="application/json" if isinstance(body, dict) else "text/plain",
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _issuer(request: Request[Any, Any, Any]) -> str:
    return str(request.base_url).rstrip("/") + PATH


# --- the pages --------------------------------------------------------------------------------------


@get("/.well-known/openid-configuration", opt=_PUBLIC, include_in_schema=False, cache_control=_NO_STORE)
async def discovery(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The OpenID provider metadata the portal reads first."""
    _provider()
    issuer = _issuer(request)
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": list(SCOPES),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "name", "given_name", "family_name", "email", "groups", "amr", "nonce"],
    }


@get("/jwks", opt=_PUBLIC, include_in_schema=False, cache_control=_NO_STORE)
async def jwks() -> dict[str, Any]:
    """The public half of the signing key."""
    return {"keys": [_provider().key.as_dict(private=False)]}


@get("/authorize", name="sandbox:oidc-authorize", opt=_PUBLIC, include_in_schema=False, cache_control=_NO_STORE)
async def authorize_page(request: Request[Any, Any, Any]) -> Template | Response[Any]:
    """Check the authorization request, then list the demo staff to sign in as."""
    provider = _provider()
    server = _Server(provider, _issuer(request))
    items = list(request.query_params.multi_items())
    try:
        server.get_consent_grant(_Request(request, items, None))
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    return Template(
        template_name="sandbox/oidc_sign_in.html",
        context={"members": staff_members(provider.seed), "request_fields": items},
    )


@post("/authorize", opt=_PUBLIC, include_in_schema=False, cache_control=_NO_STORE)
async def authorize(request: Request[Any, Any, Any]) -> Response[Any]:
    """Sign in as the chosen staff member: back to the client with a code."""
    provider = _provider()
    server = _Server(provider, _issuer(request))
    form = await request.form()
    member = next((m for m in staff_members(provider.seed) if m.key == form.get("member")), None)
    if member is None:
        raise NotFoundException()
    items = [(name, str(value)) for name, value in form.multi_items() if name not in {"member", "_csrf_token"}]
    oauth_request = _Request(request, items, member)
    try:
        grant = server.get_consent_grant(oauth_request, end_user=member)
    except OAuth2Error as error:
        return server.handle_error_response(None, error)
    response: Response[Any] = server.create_authorization_response(oauth_request, grant_user=member, grant=grant)
    response.status_code = 303  # after a POST, the browser GETs the client's callback
    return response


@post(
    "/token",
    opt={**_PUBLIC, "exclude_from_csrf": True},
    include_in_schema=False,
    cache_control=_NO_STORE,
)
async def token(request: Request[Any, Any, Any]) -> Response[Any]:
    """The token endpoint: a server-to-server call, authenticated by the client secret, not a form."""
    provider = _provider()
    server = _Server(provider, _issuer(request))
    form = await request.form()
    items = [(name, str(value)) for name, value in form.multi_items()]
    response: Response[Any] = server.create_token_response(_Request(request, items, None))
    return response


def router() -> Router:
    """A new router of the development provider's pages under ``/-/sandbox/oidc``."""
    return Router(path=PATH, route_handlers=[discovery, jwks, authorize_page, authorize, token])
