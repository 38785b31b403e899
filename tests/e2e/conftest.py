"""Browser tests: the real server in a subprocess, Debian's Chromium driven by Playwright, two viewports.

Every page a test looks at through ``visit`` or ``check_page`` is checked with axe-core (WCAG 2.2 AA),
for horizontal scroll at 360 px, and for Content-Security-Policy violations and uncaught script
errors; a full-page screenshot lands in tests/e2e/screenshots/ for people to look at.

The server runs on SQLite only; the HTTP-level suite covers PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Playwright, async_playwright

from portal.cli import DEMO_STAFF_OIDC
from portal.settings import Settings

HERE = Path(__file__).parent
SCREENSHOTS = HERE / "screenshots"
IN_CI = os.environ.get("CI") == "true"
AXE_SCRIPT = HERE / "node_modules" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
CHROMIUM = "/usr/bin/chromium"
# This machine's network is closed: without the background-networking flags Chromium keeps dialling out.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
NARROWEST_PHONE = 360
DESKTOP = {"viewport": {"width": 1280, "height": 800}}

Check = Callable[[], Awaitable[None]]
Visit = Callable[[str], Awaitable[Page]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    unused_tcp_port_factory: Callable[[], int],
    portal_environ: Callable[..., dict[str, str]],
) -> Iterator[Settings]:
    """``carefront serve`` on a free loopback port with a fresh migrated SQLite database; its settings.

    The server's address is ``settings.public_url``.
    """
    folder = tmp_path_factory.mktemp("e2e-server")
    port = unused_tcp_port_factory()
    # "localhost", not 127.0.0.1: WebAuthn takes no IP address as its relying party id, and Chromium
    # treats http://localhost as a secure context. The server still listens on 127.0.0.1 only.
    url = f"http://localhost:{port}"
    environ = portal_environ(f"sqlite:///{folder / 'carefront.sqlite3'}", folder / "data", url)
    Path(environ["CAREFRONT_CONFIG"]).write_text(sandbox_staff_sign_in(url))
    env = {**os.environ, **environ}
    carefront = Path(sys.executable).parent / "carefront"
    migrated = subprocess.run([carefront, "migrate"], env=env, capture_output=True, text=True, check=False)
    assert migrated.returncode == 0, f"carefront migrate failed:\n{migrated.stdout}{migrated.stderr}"
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [carefront, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        _wait_until_healthy(url, process, log_path)
        yield Settings.load(environ)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def sandbox_staff_sign_in(url: str) -> str:
    """``[identity.staff_oidc]`` as ``carefront demo`` sets it: staff sign in through the sandbox's
    development OpenID provider, served by the portal itself, so e2e tests take the real sign-in path."""
    lines = [
        "[identity.staff_oidc]",
        f"issuer = {json.dumps(url + '/-/sandbox/oidc')}",
        f"client_id = {json.dumps(DEMO_STAFF_OIDC['client_id'])}",
        f"client_secret = {json.dumps(DEMO_STAFF_OIDC['client_secret'])}",
        'name = "the sandbox\'s demo identity provider"',
        "[identity.staff_oidc.roles]",
        *(f"{json.dumps(group)} = {json.dumps(role)}" for group, role in DEMO_STAFF_OIDC["roles"].items()),
    ]
    return "\n".join(lines) + "\n"


async def sign_in_as_staff(page: Page, name: str) -> None:
    """Sign in at /staff/sign-in through the sandbox's provider as the demo staff member ``name``."""
    await page.goto("/staff/sign-in")
    await page.get_by_role("button", name="Sign in with the sandbox's demo identity provider").click()
    await page.get_by_role("button", name=f"Sign in as {name}").click()
    await page.wait_for_url("**/staff")


def _wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"carefront serve exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"carefront serve did not answer /healthz within 30 s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
async def playwright() -> AsyncIterator[Playwright]:
    async with async_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
async def browser(playwright: Playwright) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless (Playwright cannot download its own browsers here)."""
    chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    await chromium.close()


@pytest.fixture(params=["phone", "desktop"])
def viewport(request: pytest.FixtureRequest) -> str:
    """``"phone"``: an iPhone 13's screen, touch and user agent, in Chromium; ``"desktop"``: 1280 by 800."""
    name: str = request.param
    return name


def _context_options(playwright: Playwright, viewport: str) -> dict[str, Any]:
    if viewport == "desktop":
        return dict(DESKTOP)
    device = playwright.devices["iPhone 13"]
    keys = ("viewport", "screen", "user_agent", "device_scale_factor", "is_mobile", "has_touch")
    return {key: device[key] for key in keys if key in device}


@pytest.fixture
def page_problems() -> list[str]:
    """CSP violations and uncaught script errors the test's page has reported so far."""
    return []


@pytest.fixture
async def page(
    browser: Browser, playwright: Playwright, viewport: str, server: Settings, page_problems: list[str]
) -> AsyncIterator[Page]:
    """A page in a new browser context on this viewport, with relative URLs resolved against the server.

    The test fails if the page logs a Content-Security-Policy violation or throws an uncaught error.
    """
    context = await browser.new_context(base_url=server.public_url, **_context_options(playwright, viewport))
    tab = await context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            page_problems.append(f"CSP violation on {tab.url}: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: page_problems.append(f"uncaught error on {tab.url}: {error}"))
    yield tab
    await context.close()
    assert not page_problems, "\n".join(page_problems)


async def assert_no_axe_violations(page: Page) -> None:
    """Run axe-core's WCAG 2.2 AA rules on the page; fail with one line per violation and element.

    axe's source goes in through ``evaluate``, not a script tag: the portal's CSP forbids inline
    scripts, and ``evaluate`` is not subject to it.
    """
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE_SCRIPT.read_text())
    violations = await page.evaluate(
        """async (tags) => {
            const results = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return results.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
                targets: v.nodes.map((n) => n.target.join(" ")),
            }));
        }""",
        AXE_TAGS,
    )
    if violations:
        lines = [f"axe-core found {len(violations)} WCAG 2.2 AA violation(s) on {page.url}:"]
        for violation in violations:
            lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']} <{violation['url']}>")
            lines.extend(f"    {target}" for target in violation["targets"])
        pytest.fail("\n".join(lines), pytrace=False)


async def assert_no_horizontal_scroll(page: Page, width: int) -> None:
    """At ``width`` CSS pixels, the page fits: no sideways scrolling (PROMISES.md 21)."""
    size = page.viewport_size
    assert size is not None
    await page.set_viewport_size({"width": width, "height": size["height"]})
    try:
        measured = await page.evaluate(
            "() => ({inner: window.innerWidth, scroll: document.documentElement.scrollWidth})"
        )
    finally:
        await page.set_viewport_size(size)
    # Without <meta name=viewport content="width=device-width"> a phone lays the page out 980 px wide.
    assert measured["inner"] == width, f"{page.url} lays out {measured['inner']} px wide on a {width} px phone"
    assert measured["scroll"] <= width, f"{page.url} scrolls sideways at {width} px: {json.dumps(measured)}"


@pytest.fixture
def check_page(page: Page, viewport: str, page_problems: list[str], request: pytest.FixtureRequest) -> Check:
    """Check the page as it is now: axe, sideways scroll, CSP; then save a screenshot of it."""
    test_name = re.sub(r"[^\w-]", "_", request.node.originalname)
    shots = 0

    async def check() -> None:
        nonlocal shots
        await page.wait_for_load_state("load")
        shots += 1
        if not IN_CI:  # screenshots are for people to look at; CI has nobody looking and 20 minutes
            SCREENSHOTS.mkdir(exist_ok=True)
            await page.screenshot(path=SCREENSHOTS / f"{test_name}-{viewport}-{shots}.png", full_page=True)
        await assert_no_axe_violations(page)
        await assert_no_horizontal_scroll(page, NARROWEST_PHONE if viewport == "phone" else 1280)
        assert not page_problems, "\n".join(page_problems)

    return check


@pytest.fixture
def visit(page: Page, check_page: Check) -> Visit:
    """Go to a path on the server, expect a 2xx answer, and check the page (see ``check_page``)."""

    async def go(path: str) -> Page:
        response = await page.goto(path)
        assert response is not None, f"no response for {path}"
        assert response.ok, f"GET {path} answered {response.status}"
        await check_page()
        return page

    return go
