"""The front page, and the form that changes the language."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from litestar import Controller, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from portal.i18n import LANGUAGE_COOKIE, N_
from portal.settings import Settings
from portal.web.errors import SIGN_IN_ROUTE, ErrorText, error_response, route_path

SIGN_UP_ROUTE = "sign-up"
STATEMENTS_ROUTE = "statements"
GUEST_PAYMENT_ROUTE = "guest-payment"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 60 * 60
MAX_PATH = 2_000
"""Longer than any page of the portal: a longer ``Location`` is refused by browsers and proxies."""

UNKNOWN_LANGUAGE = ErrorText(
    N_("That language is not available"),
    N_("Please choose one of the languages at the top of the page."),
)


class FrontPageController(Controller):
    path = "/"

    @get(name="front-page", opt={"public": True})
    async def front_page(self, request: HTMXRequest) -> Template:
        """The hospital's name and the ways in; a way lights up once the code that serves it is installed."""
        return Template(
            "web/front_page.html",
            context={
                "sign_in_url": route_path(request.app, SIGN_IN_ROUTE),
                "sign_up_url": route_path(request.app, SIGN_UP_ROUTE),
                "guest_payment_url": route_path(request.app, GUEST_PAYMENT_ROUTE),
                # The list of what an account offers speaks in the present only once bills are online.
                "statements_url": route_path(request.app, STATEMENTS_ROUTE),
            },
        )


@dataclass
class LanguageChoice:
    language: str
    next: str = "/"
    """The page the form was on, to go back to."""


class LanguageController(Controller):
    path = "/language"

    @post(name="language", opt={"public": True})
    async def choose_language(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        data: Annotated[LanguageChoice, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response:
        """Remember the language in a cookie and go back to the page the form was on (PRG)."""
        if data.language not in settings.hospital.languages:
            return error_response(request, 400, UNKNOWN_LANGUAGE)
        cookie = Cookie(
            key=LANGUAGE_COOKIE,
            value=data.language,
            max_age=LANGUAGE_COOKIE_MAX_AGE,
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )
        return Redirect(same_site_path(data.next), status_code=303, cookies=[cookie])


def same_site_path(candidate: str) -> str:
    """``candidate`` if it is a path on this site, else ``/``: a form can never send a patient elsewhere."""
    if (
        len(candidate) > MAX_PATH
        or not candidate.startswith("/")
        or candidate.startswith("//")
        or "\\" in candidate
        # Browsers drop tabs and newlines from URLs, so "/\t/evil.example" would become "//evil.example".
        or any(ord(character) < 0x20 or ord(character) == 0x7F for character in candidate)
    ):
        return "/"
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return "/"
    return candidate
