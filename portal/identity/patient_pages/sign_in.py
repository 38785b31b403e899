"""Signing in with a password or a one-time code, and signing out.

Every answer reads the same whether an account exists or not (PROMISES.md 5): a wrong email and a
wrong password get one message, and a code is "sent" to any address (it really is only when a
patient account verified that address).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.i18n import N_
from portal.identity import accounts, sessions
from portal.identity.accounts import Outcome
from portal.identity.codes import Purpose
from portal.identity.patient_pages.code_to_contact import CodeEntry, CodeRequest, CodeToContact
from portal.identity.patient_pages.contacts import read_email
from portal.identity.patient_pages.web import (
    ENTER_EMAIL,
    HOME,
    client_address,
    finish_sign_in,
    translated,
    wait_minutes,
)
from portal.identity.sessions import Realm
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.web.controllers import same_site_path

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
CODE_CONTACT = "sign_in_code_contact"
"""Session key: the address a sign-in code was asked for, so the next page knows where it went."""


@dataclass
class PasswordSignIn:
    email: str = ""
    password: str = ""
    next: str = ""


def _next_path(candidate: str) -> str:
    return HOME if not candidate else same_site_path(candidate)


async def _sign_in_by_code(request: HTMXRequest, account: dict[str, Any], now: datetime) -> Redirect:
    return await finish_sign_in(request, account, "code", now)


SIGN_IN_CODE = CodeToContact(
    purpose=Purpose.SIGN_IN,
    contact_key=CODE_CONTACT,
    request_path="/sign-in/code",
    entry_path="/sign-in/code/enter",
    request_template="identity/sign_in/code_request.html",
    entry_template="identity/sign_in/code_entry.html",
    on_right_code=_sign_in_by_code,
    records_wrong_codes=True,
)


class SignInController(Controller):
    path = "/sign-in"
    opt = {"public": True}

    # --- by password ---------------------------------------------------------------------------

    @get(name="sign-in")
    async def sign_in_page(self, request: HTMXRequest) -> Template | Redirect:
        """Email and password; links to sign in with a code, to a forgotten password and to sign-up."""
        current = sessions.viewer(request)
        if current is not None and current.realm is Realm.PATIENT:
            return Redirect(HOME, status_code=303)
        next_path = request.query_params.get("next", "")
        return self._password_page(PasswordSignIn(next=same_site_path(next_path) if next_path else ""), {})

    @post()
    async def sign_in_with_password(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        data: Annotated[PasswordSignIn, FORM],
    ) -> Template | Redirect:
        now = plugin_host.clock()
        email = read_email(data.email)
        if email is None or not data.password:
            errors = {}
            if email is None:
                errors["email"] = ENTER_EMAIL
            if not data.password:
                errors["password"] = N_("Enter your password.")
            return self._password_page(data, translated(request, errors), status_code=422)
        check = await accounts.check_password(
            Realm.PATIENT,
            email.address,
            data.password,
            address=client_address(request),
            user_agent=request.headers.get("user-agent", ""),
            now=now,
        )
        if check.outcome is Outcome.THROTTLED:
            return self._password_page(data, {}, status_code=429, wait=wait_minutes(check.retry_after))
        if check.outcome is not Outcome.SUCCEEDED or check.account is None:
            return self._password_page(data, {}, status_code=422, wrong=True)
        return await finish_sign_in(request, check.account, "password", now, _next_path(data.next))

    def _password_page(
        self, form: PasswordSignIn, errors: dict[str, str], *, status_code: int = 200, **notice: Any
    ) -> Template:
        return Template(
            "identity/sign_in/password.html",
            context={"form": form, "errors": errors, **notice},
            status_code=status_code,
        )

    # --- by one-time code ----------------------------------------------------------------------

    @get("/code", name="sign-in-code")
    async def code_request_page(self) -> Template:
        """Where a patient asks for a code by email or text message."""
        return SIGN_IN_CODE.request_page(CodeRequest(), {})

    @post("/code")
    async def request_code(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CodeRequest, FORM],
    ) -> Template | Redirect:
        return await SIGN_IN_CODE.request_code(request, plugin_host, settings, data)

    @get("/code/enter", name="sign-in-code-enter")
    async def code_entry_page(self, request: HTMXRequest) -> Template | Redirect:
        return SIGN_IN_CODE.code_entry_page(request)

    @post("/code/enter")
    async def sign_in_with_code(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CodeEntry, FORM],
    ) -> Template | Redirect:
        return await SIGN_IN_CODE.check_code(request, plugin_host, settings, data)


class SignOutController(Controller):
    path = "/sign-out"
    # Public, so that signing out of a session that has just expired still lands on the front page.
    opt = {"public": True}

    @post(name="sign-out")
    async def sign_out(self, request: HTMXRequest) -> Redirect:
        """End the session on the server, and say so on the front page."""
        sessions.end(request)
        return Redirect("/?signed-out=1", status_code=303)
