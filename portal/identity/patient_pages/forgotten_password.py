"""A forgotten password: a code to a verified email address or mobile number, then a new password.

Choosing it signs the account out everywhere else, since whoever knew the old password may be
signed in somewhere, and then signs the holder in here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import Controller, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.i18n import I18n
from portal.identity import accounts, codes, sessions
from portal.identity.codes import Purpose
from portal.identity.passwords import hash_password, password_problem
from portal.identity.patient_pages import code_sending
from portal.identity.patient_pages.contacts import Contact, account_reached_at, read_contact
from portal.identity.patient_pages.web import (
    ENTER_CODE,
    NOT_A_CONTACT,
    WRONG_CODE,
    client_address,
    finish_sign_in,
    notices,
    session_store,
    translated,
    wait_minutes,
)
from portal.plugin_host import PluginHost
from portal.settings import Settings

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
RESET_CONTACT = "reset_contact"
"""Session key: where the code to choose a new password was asked to go."""
RESET_ACCOUNT = "reset_account"
"""Session key: the account whose holder gave the right code and may now choose a password."""


@dataclass
class CodeRequest:
    contact: str = ""


@dataclass
class CodeEntry:
    code: str = ""


@dataclass
class NewPassword:
    password: str = ""


class ForgottenPasswordController(Controller):
    path = "/sign-in/forgot"
    opt = {"public": True}

    @get(name="forgotten-password")
    async def start_page(self) -> Template:
        return self._start_page(CodeRequest(), {})

    @post()
    async def request_code(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CodeRequest, FORM],
    ) -> Template | Redirect:
        """Send a code when an account verified the address; the answer is the same when none did."""
        now = plugin_host.clock()
        contact = read_contact(data.contact.strip())
        if contact is None:
            return self._start_page(data, translated(request, {"contact": NOT_A_CONTACT}), status_code=422)
        verdict = await code_sending.may_send([contact], client_address(request), now)
        if not verdict.allowed:
            return self._start_page(data, {}, status_code=429, wait=wait_minutes(verdict.retry_after))
        request.session.pop(RESET_ACCOUNT, None)
        request.session[RESET_CONTACT] = contact.address
        return Redirect(
            "/sign-in/forgot/code",
            status_code=303,
            background=BackgroundTask(
                code_sending.send_if_reachable,
                notices(request, settings, plugin_host),
                contact,
                Purpose.RESET_PASSWORD,
                secret_key=settings.secret_key,
                language=I18n.current(),
                now=now,
            ),
        )

    def _start_page(
        self, form: CodeRequest, errors: dict[str, str], *, status_code: int = 200, **notice: Any
    ) -> Template:
        return Template(
            "identity/forgotten_password/start.html",
            context={"form": form, "errors": errors, **notice},
            status_code=status_code,
        )

    @get("/code", name="forgotten-password-code")
    async def code_page(self, request: HTMXRequest) -> Template | Redirect:
        contact = _contact_in(request.session)
        if contact is None:
            return Redirect("/sign-in/forgot", status_code=303)
        return self._code_page(contact, {})

    @post("/code")
    async def check_code(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CodeEntry, FORM],
    ) -> Template | Redirect:
        contact = _contact_in(request.session)
        if contact is None:
            return Redirect("/sign-in/forgot", status_code=303)
        now = plugin_host.clock()
        if not data.code.strip():
            return self._code_page(contact, translated(request, {"code": ENTER_CODE}), status_code=422)
        account = await account_reached_at(contact)
        redeemed = await codes.redeem(
            Purpose.RESET_PASSWORD, contact.address, data.code, secret_key=settings.secret_key, now=now
        )
        if account is None or not redeemed:
            return self._code_page(contact, translated(request, {"code": WRONG_CODE}), status_code=422)
        # A new session key: a key planted in this browser cannot choose the password.
        sessions.begin(request, now, **{RESET_ACCOUNT: str(account["public_id"])})
        return Redirect("/sign-in/forgot/password", status_code=303)

    def _code_page(self, contact: Contact, errors: dict[str, str], *, status_code: int = 200) -> Template:
        return Template(
            "identity/forgotten_password/code.html",
            context={"contact": contact, "errors": errors},
            status_code=status_code,
        )

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


def _contact_in(session: dict[str, Any]) -> Contact | None:
    text = session.get(RESET_CONTACT)
    return read_contact(text) if text else None
