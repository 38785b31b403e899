"""What the form fuzzer found (tests/scans/test_forms.py), pinned so it stays fixed on both databases."""

from __future__ import annotations

import re

import httpx

from portal.plans.builder import whole_number
from portal.questions.service import plain
from portal.web.controllers import MAX_PATH, same_site_path

CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')


async def _token(client: httpx.AsyncClient, page: str) -> str:
    found = CSRF_INPUT.search((await client.get(page)).text)
    assert found, f"no form on {page}"
    return found.group(1)


async def test_an_email_with_nul_or_past_any_length_gets_the_sign_in_form_back(client: httpx.AsyncClient) -> None:
    token = await _token(client, "/staff/sign-in/local")
    for email in ("\x00", "a" * 5_000, "admin\x00@example.org"):
        fields = {"_csrf_token": token, "email": email, "password": "a passphrase", "code": "123456"}
        answer = await client.post("/staff/sign-in/local", data=fields)
        assert answer.status_code in (401, 422, 429), answer.status_code
        assert 'name="email"' in answer.text


async def test_a_next_page_too_long_for_a_location_goes_home(client: httpx.AsyncClient) -> None:
    token = await _token(client, "/")
    answer = await client.post("/language", data={"_csrf_token": token, "language": "es", "next": "/" + "a" * 70_000})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_typed_input_that_cannot_be_stored_or_counted_is_made_safe_first() -> None:
    assert plain(" \x00What is this?\x01\n ") == "What is this?"
    assert whole_number("9" * 5_000) == 1_000_000, "int() refuses more than 4,300 digits"
    assert whole_number("0006") == 6
    assert whole_number("six") is None
    assert same_site_path("/" + "a" * MAX_PATH) == "/"
    assert same_site_path("/statements?page=2") == "/statements?page=2"
