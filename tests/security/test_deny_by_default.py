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
    ("GET", "/-/sandbox/checkout/{reference:str}"),
    ("POST", "/-/sandbox/checkout/{reference:str}"),
    ("GET", "/-/sandbox/checkout/{reference:str}/authenticate"),
    ("POST", "/-/sandbox/checkout/{reference:str}/authenticate"),
    ("GET", "/-/sandbox/save-method/{reference:str}"),
    ("POST", "/-/sandbox/save-method/{reference:str}"),
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
