"""PROMISES.md 1: only an explicit allow-list of routes answers without a session."""

from __future__ import annotations

import re

from litestar.routes import HTTPRoute

# Every route that answers without a session, by method and path template. Adding a public route
# means adding it here, on purpose.
PUBLIC_ROUTES = {
    ("GET", "/"),
    ("POST", "/language"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/static/{file_path:path}"),
    ("GET", "/-/sandbox/outbox"),
    # Single sign-on for staff and patients (portal/identity/staff.py, patient_sso.py), the local
    # administrator, and the sandbox's development OpenID provider (its token endpoint is server to server).
    ("GET", "/staff/sign-in"),
    ("POST", "/staff/sign-in"),
    ("GET", "/staff/sign-in/callback"),
    ("GET", "/staff/sign-in/code"),
    ("POST", "/staff/sign-in/code"),
    ("GET", "/staff/sign-in/local"),
    ("POST", "/staff/sign-in/local"),
    ("POST", "/sign-in/oidc"),
    ("GET", "/sign-in/oidc/callback"),
    ("GET", "/sign-in/oidc/link"),
    ("GET", "/-/sandbox/oidc/.well-known/openid-configuration"),
    ("GET", "/-/sandbox/oidc/jwks"),
    ("GET", "/-/sandbox/oidc/authorize"),
    ("POST", "/-/sandbox/oidc/authorize"),
    ("POST", "/-/sandbox/oidc/token"),
    ("GET", "/-/sandbox/checkout/{reference:str}"),
    ("POST", "/-/sandbox/checkout/{reference:str}"),
    ("GET", "/-/sandbox/checkout/{reference:str}/authenticate"),
    ("POST", "/-/sandbox/checkout/{reference:str}/authenticate"),
    # Paying without an account, and accepting a proxy invitation (portal/identity/guest_pages.py, proxy_pages.py).
    ("GET", "/pay-as-guest"),
    # The payment gateway's signed webhook, and a representative's signed pay link (portal/payments/pages.py).
    ("POST", "/-/webhooks/gateway"),
    ("GET", "/pay/link/{token:str}"),
    ("POST", "/pay-as-guest"),
    ("GET", "/proxies/accept"),
    ("POST", "/proxies/accept"),
    ("POST", "/proxies/accept/new-account"),
    # Patients' ways in (portal/identity/patient_pages): sign-up, sign-in, a forgotten password, sign-out.
    ("GET", "/sign-up"),
    ("POST", "/sign-up"),
    ("GET", "/sign-up/contact"),
    ("POST", "/sign-up/contact"),
    ("GET", "/sign-up/verify"),
    ("POST", "/sign-up/verify"),
    ("POST", "/sign-up/verify/resend"),
    ("GET", "/sign-up/password"),
    ("POST", "/sign-up/password"),
    ("GET", "/sign-in"),
    ("POST", "/sign-in"),
    ("GET", "/sign-in/code"),
    ("POST", "/sign-in/code"),
    ("GET", "/sign-in/code/enter"),
    ("POST", "/sign-in/code/enter"),
    ("GET", "/sign-in/forgot"),
    ("POST", "/sign-in/forgot"),
    ("GET", "/sign-in/forgot/code"),
    ("POST", "/sign-in/forgot/code"),
    ("GET", "/sign-in/forgot/password"),
    ("POST", "/sign-in/forgot/password"),
    ("POST", "/sign-out"),
    # Passkey sign-in and the second step after a password (portal/identity/security_pages.py).
    ("POST", "/sign-in/passkey/options"),
    ("POST", "/sign-in/passkey/verify"),
    ("GET", "/sign-in/second-factor"),
    ("POST", "/sign-in/second-factor"),
}
IGNORED_METHODS = {"HEAD", "OPTIONS"}


def routes(app):
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for method, (handler, _) in route.route_handler_map.items():
            if method not in IGNORED_METHODS:
                yield method, route.path, handler


def public_routes(app) -> set[tuple[str, str]]:
    return {(method, path) for method, path, handler in routes(app) if handler.opt.get("public")}


def test_every_public_route_is_on_the_allow_list(app):
    unexpected = public_routes(app) - PUBLIC_ROUTES
    assert not unexpected, f"routes public without being on the allow-list: {sorted(unexpected)}"


def test_the_allow_list_names_only_routes_that_exist(app):
    stale = PUBLIC_ROUTES - public_routes(app)
    assert not stale, f"on the allow-list but not public or gone: {sorted(stale)}"


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "unknown-id", path)


async def test_every_other_route_refuses_an_anonymous_request(app, client):
    allowed = public_routes(app)
    answered = []
    for method, path, _handler in routes(app):
        if (method, path) in allowed:
            continue
        response = await client.request(method, concrete(path), follow_redirects=False)
        if response.status_code < 300:
            answered.append((method, path, response.status_code))
    assert not answered, f"answered without a session: {answered}"
