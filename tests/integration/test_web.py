"""The front page, the language form, error pages and toasts, headers, cookies, static files, budgets.

PROMISES.md 3, 4, 18-23 as far as the public pages reach them, and the first-load budget.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from urllib.parse import urlsplit

import carefront_sandbox.hooks
import httpx
import pytest
from carefront_sdk import hookimpl
from litestar import Litestar, get

from portal.app import CSRF_COOKIE, SESSION_COOKIE, STATIC_DIR, create_app
from portal.settings import Settings
from portal.web.errors import route_path

KIB = 1024
CSS_BUDGET = 10 * KIB
FIRST_LOAD_BUDGET = 30 * KIB
STATIC_URL = re.compile(r'(?:href|src)="(/static/[^"?]+)\?v=([0-9a-f]+)"')
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
SPANISH_ACCEPT = {"accept-language": "es-US,es;q=0.9,en;q=0.5"}
HTMX = {"hx-request": "true"}


def gzipped_size(body: bytes) -> int:
    # Level 6: what nginx, Caddy and most proxies use by default.
    return len(gzip.compress(body, compresslevel=6))


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each ``Set-Cookie`` of the response by cookie name, as sent."""
    return {header.split("=", 1)[0]: header for header in response.headers.get_list("set-cookie")}


def cookie_attributes(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


def csrf_token(page: httpx.Response) -> str:
    found = CSRF_INPUT.search(page.text)
    assert found, "the page has no language form with a CSRF token"
    return found.group(1)


def toast(response: httpx.Response) -> dict[str, str]:
    return json.loads(response.headers["hx-trigger"])["toast"]


# --- The front page ---------------------------------------------------------------------------------


async def test_front_page_names_the_hospital_and_the_way_in(client, app: Litestar, settings: Settings):
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert '<html lang="en">' in page
    assert settings.hospital.name in page
    assert "Sign in" in page
    sign_in = route_path(app, "sign-in")
    if sign_in:
        assert f'href="{sign_in}"' in page
    else:
        # Until accounts exist, the page says so and gives the phone instead of a link to a 404.
        assert 'href="/sign-in"' not in page
        assert 'href="tel:+15550104400"' in page
    assert 'href="#main"' in page
    assert 'id="main"' in page


async def test_front_page_follows_the_browser_language(client, settings: Settings):
    response = await client.get("/", headers=SPANISH_ACCEPT)
    assert response.status_code == 200
    assert '<html lang="es">' in response.text
    assert settings.hospital.name in response.text
    assert "Iniciar sesión" in response.text
    assert "Sign in" not in response.text


async def test_pages_have_no_inline_script_or_style(client):
    # The CSP forbids them (PROMISES.md 19): they would be blocked, so they must not exist.
    for path in ("/", "/no/such/page"):
        page = (await client.get(path)).text
        assert "<style" not in page
        assert " style=" not in page
        assert re.search(r"<script(?![^>]*\bsrc=)", page) is None, f"inline <script> on {path}"
        assert re.search(r"\son[a-z]+=", page) is None, f"inline event handler on {path}"


# --- The language form ------------------------------------------------------------------------------


async def test_language_form_switches_to_spanish_and_returns_to_the_page(client):
    token = csrf_token(await client.get("/"))
    response = await client.post("/language", data={"_csrf_token": token, "language": "es", "next": "/"})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = set_cookies(response)["lang"]
    assert cookie.startswith("lang=es;")
    attributes = cookie_attributes(cookie)
    assert {"secure", "samesite=lax", "path=/"} <= attributes
    assert any(attribute.startswith("max-age=") for attribute in attributes)

    page = await client.get("/")
    assert '<html lang="es">' in page.text
    assert "Iniciar sesión" in page.text
    assert 'aria-pressed="true">Español' in page.text

    token = csrf_token(page)
    back = await client.post("/language", data={"_csrf_token": token, "language": "en", "next": "/"})
    assert back.status_code == 303
    assert '<html lang="en">' in (await client.get("/")).text


async def test_language_form_posts_back_the_page_it_is_on(client):
    page = (await client.get("/no/such/page?x=1")).text
    # An unknown address is answered before CSRF runs: no token, so no form that would fail.
    assert 'action="/language"' not in page
    page = (await client.get("/")).text
    assert 'name="next" value="/"' in page


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example/",
        "/\t/evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "",
    ],
)
async def test_language_form_never_redirects_off_the_site(client, next_path: str):
    token = csrf_token(await client.get("/"))
    response = await client.post("/language", data={"_csrf_token": token, "language": "es", "next": next_path})
    assert response.status_code == 303
    assert response.headers["location"] == "/"


async def test_language_form_keeps_a_path_on_the_site(client):
    token = csrf_token(await client.get("/"))
    response = await client.post(
        "/language", data={"_csrf_token": token, "language": "es", "next": "/-/plugins/?tab=health"}
    )
    assert response.headers["location"] == "/-/plugins/?tab=health"


async def test_language_form_without_a_csrf_token_is_refused(client):
    # No cookie and no token: a cross-site form post.
    response = await client.post("/language", data={"language": "es", "next": "/"})
    assert response.status_code == 403
    assert "lang" not in set_cookies(response)
    assert "This form has expired" in response.text
    # A cookie but no token in the form: still refused.
    await client.get("/")
    response = await client.post("/language", data={"language": "es", "next": "/"})
    assert response.status_code == 403
    assert "lang" not in set_cookies(response)
    assert '<html lang="en">' in (await client.get("/")).text


async def test_language_form_with_a_language_the_hospital_does_not_offer(client):
    token = csrf_token(await client.get("/"))
    response = await client.post("/language", data={"_csrf_token": token, "language": "fr", "next": "/"})
    assert response.status_code == 400
    assert "That language is not available" in response.text
    assert "lang" not in set_cookies(response)


async def test_language_form_without_a_language(client):
    token = csrf_token(await client.get("/"))
    response = await client.post("/language", data={"_csrf_token": token})
    assert response.status_code == 400
    assert "We could not use what was sent" in response.text
    assert "Traceback" not in response.text


# --- Headers and cookies ----------------------------------------------------------------------------


async def test_every_response_carries_the_security_headers(client):
    await client.get("/")
    static = STATIC_URL.search((await client.get("/")).text)
    assert static
    answers = {
        "front page": await client.get("/"),
        "unknown page": await client.get("/no/such/page"),
        "wrong method": await client.delete("/"),
        "csrf refusal": await client.post("/language", data={"language": "es"}),
        "probe": await client.get("/healthz"),
        "static file": await client.get(f"{static.group(1)}?v={static.group(2)}"),
    }
    for what, response in answers.items():
        headers = response.headers
        policy = headers.get("content-security-policy", "")
        assert "default-src 'none'" in policy, what
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert "style-src 'self'" in policy, what
        assert headers.get("strict-transport-security", "").startswith("max-age="), what
        assert headers.get("x-content-type-options") == "nosniff", what
        assert headers.get("referrer-policy") == "no-referrer", what
        expected_cache = "immutable" if what == "static file" else "no-store"
        assert expected_cache in headers.get("cache-control", ""), what


async def test_session_and_csrf_cookies_are_host_only_secure_httponly_and_lax(client, session_as):
    await session_as("patient")
    response = await client.get("/")
    cookies = set_cookies(response)
    assert CSRF_COOKIE in cookies
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        if name not in cookies:
            continue
        assert name.startswith("__Host-")
        attributes = cookie_attributes(cookies[name])
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= attributes, cookies[name]
        assert not any(attribute.startswith("domain=") for attribute in attributes), cookies[name]


async def test_static_files_have_a_content_hash_and_a_long_cache(client):
    page = (await client.get("/")).text
    assets = STATIC_URL.findall(page)
    assert {path for path, _ in assets} >= {"/static/css/carefront.css", "/static/js/toast.js"}
    for path, version in assets:
        response = await client.get(f"{path}?v={version}")
        assert response.status_code == 200, path
        assert version == hashlib.sha256(response.content).hexdigest()[:10], path
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable", path
        # A shared cache would hand a cookie sent with a year-long public answer to everyone.
        assert "set-cookie" not in response.headers, path


# --- Errors and toasts ------------------------------------------------------------------------------


async def test_unknown_page_is_a_friendly_404(client):
    response = await client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "We cannot find that page" in response.text
    assert 'href="/"' in response.text
    assert "Traceback" not in response.text

    spanish = await client.get("/no/such/page", headers=SPANISH_ACCEPT)
    assert spanish.status_code == 404
    assert '<html lang="es">' in spanish.text
    assert "No encontramos esa página" in spanish.text


async def test_htmx_request_for_an_unknown_page_gets_a_toast(client):
    response = await client.get("/no/such/page", headers=HTMX)
    assert response.status_code == 404
    assert toast(response)["level"] == "error"
    assert "We cannot find that page" in toast(response)["message"]
    assert "<html" not in response.text
    assert len(response.content) < 500

    spanish = await client.get("/no/such/page", headers={**HTMX, **SPANISH_ACCEPT})
    # \u escapes keep the header ASCII; the browser's JSON.parse restores the accents.
    assert "\\u" in spanish.headers["hx-trigger"]
    assert "No encontramos esa página" in toast(spanish)["message"]


async def test_wrong_method_is_a_friendly_405_that_names_the_allowed_ones(client):
    response = await client.delete("/")
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    assert "That did not work from here" in response.text


async def test_not_signed_in_goes_to_the_way_in(client, app: Litestar):
    way_in = route_path(app, "sign-in") or "/"
    response = await client.get("/-/plugins/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == way_in

    htmx = await client.get("/-/plugins/", headers=HTMX, follow_redirects=False)
    assert htmx.status_code == 401
    assert htmx.headers["hx-redirect"] == way_in
    assert "sign in again" in toast(htmx)["message"]


async def test_forbidden_page_is_a_friendly_403(client, session_as):
    await session_as("patient")
    response = await client.get("/-/plugins/")
    assert response.status_code == 403
    assert "This page is not available to you" in response.text


class FailingRoutes:
    """A plugin whose page fails with an exception whose message names a patient."""

    @hookimpl
    def carefront_routes(self):
        @get("/-/failing/page", opt={"public": True})
        async def failing_page() -> str:
            raise RuntimeError("patient Jane Canary born 1970-01-01")

        return [failing_page]


async def test_a_failure_is_a_500_page_with_a_reference_that_the_log_has_without_phi(
    settings: Settings, client_for, caplog: pytest.LogCaptureFixture
):
    app = create_app(settings, plugins=[("sandbox", carefront_sandbox.hooks), ("failing", FailingRoutes())])
    # Building the app configures logging afresh, which takes caplog's handler off the root logger.
    errors_log = logging.getLogger("carefront.errors")
    errors_log.addHandler(caplog.handler)
    try:
        async with client_for(app) as client:
            response = await client.get("/-/failing/page")
            htmx = await client.get("/-/failing/page", headers=HTMX)
    finally:
        errors_log.removeHandler(caplog.handler)
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert "Canary" not in response.text
    reference = re.search(r'class="reference">([0-9a-f]+)<', response.text)
    assert reference
    logged = caplog.text
    assert f"reference={reference.group(1)}" in logged
    assert "RuntimeError" in logged
    assert "failing_page" in logged
    assert "Canary" not in logged
    assert "1970-01-01" not in logged

    assert htmx.status_code == 500
    assert "Reference" in toast(htmx)["message"]
    assert "Canary" not in htmx.text


# --- Budgets (PROMISES.md "Budgets") ----------------------------------------------------------------


def test_stylesheet_is_under_10_kib_gzipped():
    size = gzipped_size((STATIC_DIR / "css" / "carefront.css").read_bytes())
    assert size < CSS_BUDGET, f"carefront.css is {size} bytes gzipped"


async def test_front_page_first_load_is_within_30_kib_gzipped(client):
    page = await client.get("/")
    sizes = {"/": gzipped_size(page.content)}
    for path, version in STATIC_URL.findall(page.text):
        if urlsplit(path).path.endswith((".css", ".js")):
            sizes[path] = gzipped_size((await client.get(f"{path}?v={version}")).content)
    total = sum(sizes.values())
    assert total <= FIRST_LOAD_BUDGET, f"first load is {total} bytes gzipped: {sizes}"


async def test_a_client_gone_before_its_body_is_logged_as_that_not_as_a_failure(app: Litestar, caplog):
    """A phone that loses signal mid-upload is not a failure of ours: no ERROR, no reference to chase."""
    errors_log = logging.getLogger("carefront.errors")
    errors_log.addHandler(caplog.handler)
    sent: list[dict] = []

    async def hang_up() -> dict:
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "https",
        "server": ("testserver", 443), "client": ("127.0.0.1", 40000), "root_path": "", "path": "/language",
        "raw_path": b"/language", "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/x-www-form-urlencoded"),
                    (b"content-length", b"400")],
    }  # fmt: skip
    caplog.set_level(logging.INFO, logger="carefront.errors")
    try:
        await app(scope, hang_up, send)
    finally:
        errors_log.removeHandler(caplog.handler)
    ours = [record for record in caplog.records if record.name == "carefront.errors"]
    assert ours, "the hang-up is logged"
    assert {record.levelname for record in ours} == {"INFO"}
    assert "the client went away" in caplog.text
    assert "reference=" not in caplog.text
