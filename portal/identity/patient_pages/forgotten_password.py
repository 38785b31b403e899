"""A forgotten password: a code to a verified email address or mobile number, then a new password.

Choosing it signs the account out everywhere else, since whoever knew the old password may be
signed in somewhere, and then signs the holder in here.
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

from portal.identity import accounts, sessions
from portal.identity.codes import Purpose
from portal.identity.passwords import hash_password, password_problem
from portal.identity.patient_pages.code_to_contact import CodeEntry, CodeRequest, CodeToContact
from portal.identity.patient_pages.web import (
    finish_sign_in,
    notices,
    session_store,
    translated,
)
from portal.plugin_host import PluginHost
from portal.settings import Settings

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
RESET_CONTACT = "reset_contact"
"""Session key: where the code to choose a new password was asked to go."""
RESET_ACCOUNT = "reset_account"
"""Session key: the account whose holder gave the right code and may now choose a password."""


@dataclass
class NewPassword:
    password: str = ""


async def _let_choose_password(request: HTMXRequest, account: dict[str, Any], now: datetime) -> Redirect:
    # A new session key: a key planted in this browser cannot choose the password.
    sessions.begin(request, now, **{RESET_ACCOUNT: str(account["public_id"])})
    return Redirect("/sign-in/forgot/password", status_code=303)


PASSWORD_RESET_CODE = CodeToContact(
    purpose=Purpose.RESET_PASSWORD,
    contact_key=RESET_CONTACT,
    request_path="/sign-in/forgot",
    entry_path="/sign-in/forgot/code",
    request_template="identity/forgotten_password/start.html",
    entry_template="identity/forgotten_password/code.html",
    on_right_code=_let_choose_password,
    voids=(RESET_ACCOUNT,),
)


class ForgottenPasswordController(Controller):
    path = "/sign-in/forgot"
    opt = {"public": True}

    @get(name="forgotten-password")
    async def start_page(self) -> Template:
        return PASSWORD_RESET_CODE.request_page(CodeRequest(), {})

    @post()
    async def request_code(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CodeRequest, FORM],
    ) -> Template | Redirect:
        return await PASSWORD_RESET_CODE.request_code(request, plugin_host, settings, data)

    @get("/code", name="forgotten-password-code")
    async def code_page(self, request: HTMXRequest) -> Template | Redirect:
        return PASSWORD_RESET_CODE.code_entry_page(request)

    @post("/code")
    async def check_code(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CodeEntry, FORM],
    ) -> Template | Redirect:
        return await PASSWORD_RESET_CODE.check_code(request, plugin_host, settings, data)

    @get("/password", name="forgotten-password-new")
    async def new_password_page(self, request: HTMXRequest) -> Template | Redirect:
        if not request.session.get(RESET_ACCOUNT):
            return Redirect("/sign-in/forgot", status_code=303)
        return self._new_password_page({})

    @post("/password")
    async def choose_password(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[NewPassword, FORM],
    ) -> Template | Redirect:
        """Keep the new password, end every other session of the account, and sign in."""
        public_id = request.session.get(RESET_ACCOUNT)
        account = await accounts.find(public_id) if public_id else None
        if account is None:
            return Redirect("/sign-in/forgot", status_code=303)
        now = plugin_host.clock()
        problem = password_problem(data.password, account["given_name"], account["family_name"], account["email"] or "")
        if problem:
            return self._new_password_page(translated(request, {"password": problem}), status_code=422)
        await accounts.update(public_id, password_hash=hash_password(data.password))
        await session_store(request).end_sessions_of(public_id)
        if account["email"]:
            await notices(request, settings, plugin_host).tell_of_change(account, "password", account["email"], now)
        return await finish_sign_in(request, account, "code", now)

    def _new_password_page(self, errors: dict[str, str], *, status_code: int = 200) -> Template:
        return Template(
            "identity/forgotten_password/new_password.html",
            context={"errors": errors},
            status_code=status_code,
        )
