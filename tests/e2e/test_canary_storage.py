"""PROMISES.md 18 in a real browser: a patient whose records carry canaries (tests/security/test_canary.py)
signs in and reads their pages, htmx partials included; no canary is in any URL the browser asked for,
in localStorage, sessionStorage (htmx's history cache is off) or in a cookie."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from carefront_sandbox.identifiers import format_id
from playwright.async_api import Page

from portal.settings import Settings
from tests.e2e.test_proxy_switch import PARENT_ACCOUNT as ACCOUNT
from tests.security.test_canary import canaries, found_in, plant

PASSWORD = "canary sings at dawn"
E2E_KEY = 12
"""The sandbox patient who carries the canaries here: one no other browser test signs in as (they use
the demo personas, 1 to 5, and patients from 21 up)."""
PLANTED: dict[Path, dict[str, str]] = {}
"""The phone and desktop runs share one server: the canaries are planted once per server."""


def planted_patient(server: Settings, portal_environ: Callable[..., dict[str, str]]) -> dict[str, str]:
    if server.data_dir not in PLANTED:
        values = canaries()
        plant(next(server.data_dir.glob("sandbox-*.sqlite3")), values, E2E_KEY)
        environ = portal_environ(server.database_url, server.data_dir, server.public_url)
        arguments = [
            format_id("pt", E2E_KEY),
            values["email"],
            values["given name"],
            values["family name"],
            PASSWORD,
        ]
        done = subprocess.run(
            [sys.executable, "-c", ACCOUNT, *arguments], env=environ, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        PLANTED[server.data_dir] = values
    return PLANTED[server.data_dir]


async def test_no_canary_in_urls_storage_or_cookies(
    page: Page, server: Settings, portal_environ: Callable[..., dict[str, str]]
) -> None:
    planted = planted_patient(server, portal_environ)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    await page.goto("/sign-in")
    await page.get_by_label("Email address").fill(planted["email"])
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url("**/home")
    await page.goto("/statements")
    await page.locator('a[href^="/statements/"]').first.click()
    await page.wait_for_load_state()
    expand = page.get_by_role("link", name="Show all")
    if await expand.count():
        await expand.first.click()
        await page.wait_for_load_state("networkidle")
    await page.goto("/insurance")
    assert planted["member ID"] in await page.content(), "the patient sees their own canaries on the page"
    for path in ("/payments", "/account", "/home"):
        await page.goto(path)
    stored = await page.evaluate(
        """() => JSON.stringify({
            local: Object.entries(localStorage), session: Object.entries(sessionStorage)
        })"""
    )
    cookies = repr(await page.context.cookies())
    assert urls, "the browser made requests"
    problems = {
        "URLs": found_in("\n".join(urls), planted),
        "browser storage": found_in(stored, planted),
        "cookies": found_in(cookies, planted),
    }
    assert not any(problems.values()), f"canaries found: {problems}"
    assert "htmx-history-cache" not in stored, "htmx keeps no copy of pages in localStorage"
