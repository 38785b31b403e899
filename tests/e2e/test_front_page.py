"""The front page names the hospital and the way in, in English and, through the language form, Spanish."""

from __future__ import annotations

from playwright.async_api import Page, expect

from portal.settings import Settings


async def test_front_page_in_english_then_spanish(page: Page, visit, check_page, server: Settings) -> None:
    hospital = server.hospital.name
    await visit("/")
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"{hospital} patient portal")
    sign_in = page.get_by_role("region", name="Sign in")
    await expect(sign_in.get_by_role("heading", name="Sign in")).to_be_visible()
    await expect(sign_in.get_by_role("link").first).to_be_visible()

    await page.get_by_role("button", name="Español").click()
    await page.wait_for_url("/")
    await check_page()
    await expect(page.locator("html")).to_have_attribute("lang", "es")
    await expect(page.get_by_role("heading", level=1)).to_have_text(f"Portal del paciente de {hospital}")
    sign_in = page.get_by_role("region", name="Iniciar sesión")
    await expect(sign_in.get_by_role("heading", name="Iniciar sesión")).to_be_visible()
    await expect(sign_in.get_by_role("link").first).to_be_visible()
    await expect(page.get_by_role("button", name="Español")).to_have_attribute("aria-pressed", "true")
