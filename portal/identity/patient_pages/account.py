"""The account page: contact details, preferences, password, sign-in history and sessions.

Changing an email address, a mobile number or the password needs a sign-in within the last ten
minutes (PROMISES.md 6); otherwise the holder first confirms it is them on the ``account-confirm``
page (identity/security_pages.py). A new address takes effect only once a code sent to it comes back.
While a representative acts as the patient none of these can change (PROMISES.md 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from portal.access import not_impersonating, patients_only
from portal.i18n import LANGUAGE_COOKIE, N_, I18n
from portal.identity import accounts, codes, recent_sign_in
from portal.identity.accounts import Outcome
from portal.identity.codes import Purpose
from portal.identity.passwords import hash_password, password_problem
from portal.identity.patient_pages import code_sending, enrolment
from portal.identity.patient_pages.code_to_contact import CodeEntry
from portal.identity.patient_pages.contacts import Contact, email_contact, phone_contact, read_email, read_phone
from portal.identity.patient_pages.devices import device_name
from portal.identity.patient_pages.web import (
    EMAIL_IN_USE,
    ENTER_EMAIL,
    ENTER_PHONE,
    WRONG_CODE,
    client_address,
    gettext,
    notices,
    sending_problems,
    session_store,
    signed_in_account,
    signed_out,
    translated,
)
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.web.controllers import LANGUAGE_COOKIE_MAX_AGE
from portal.web.errors import ErrorText, error_response, route_path

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
ACCOUNT = "/account"
CONFIRM_ROUTE = "account-confirm"
PENDING_EMAIL = "pending_email"
PENDING_PHONE = "pending_phone"
"""Session keys: a new address waiting for its code."""

IMPERSONATOR = "impersonator"
"""Session key set while a representative acts as the patient (PROMISES.md 7)."""
ACTING = ErrorText(
    N_("Not while acting as the patient"),
    N_("Contact details and the password can be changed only by the patient, signed in as themselves."),
)

SAVED = {
    "preferences": N_("Your preferences are saved."),
    "email": N_("Your email address is changed."),
    "phone": N_("Your mobile number is changed."),
    "phone-removed": N_("Your mobile number is removed."),
    "password": N_("Your password is changed. Every other session of your account has ended."),
    "sessions": N_("Every other session of your account has ended."),
}
METHODS = {
    # A sign-in with two factors is recorded as both, e.g. "password+totp".
    "password": N_("Password"),
    "code": N_("One-time code"),
    "passkey": N_("Passkey"),
    "oidc": N_("Hospital sign-in"),
    "totp": N_("Authenticator app"),
}
OUTCOMES = {
    "succeeded": N_("Signed in"),
    "wrong_secret": N_("Wrong password or code"),
    "locked": N_("Blocked after too many tries"),
    "throttled": N_("Blocked after too many tries"),
}


@dataclass
class Preferences:
    language: str = ""
    paperless: str = ""


@dataclass
class NewEmail:
    email: str = ""


@dataclass
class NewPhone:
    phone: str = ""


@dataclass
class NewPassword:
    password: str = ""


def _confirm_first(request: HTMXRequest, path: str) -> Redirect:
    """To the page where the holder confirms it is them, and back to ``path`` after."""
    confirm = request.app.route_reverse(CONFIRM_ROUTE)
    return Redirect(f"{confirm}?{urlencode({'next': path})}", status_code=303)


def _refusal(request: HTMXRequest, now: datetime, path: str) -> Response[Any] | None:
    """Why a change to contact details or the password cannot go ahead now, or None when it can."""
    if request.session.get(IMPERSONATOR):
        return error_response(request, 403, ACTING)
    if not recent_sign_in.is_recent(request.session, now):
        return _confirm_first(request, path)
    return None


def _saved(what: str) -> Redirect:
    return Redirect(f"{ACCOUNT}?saved={what}", status_code=303)


class AccountController(Controller):
    path = ACCOUNT
    guards = [patients_only]

    # --- the page ------------------------------------------------------------------------------

    @get(name="account")
    async def account_page(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], settings: NamedDependency[Settings]
    ) -> Template | Redirect:
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        _ = gettext(request)
        zone = ZoneInfo(settings.hospital.time_zone)
        this_session = request.get_session_id()
        history = [
            {
                "at": event["occurred_at"].astimezone(zone),
                "method": " + ".join(_(METHODS.get(part, part)) for part in event["method"].split("+")),
                "outcome": _(OUTCOMES.get(event["outcome"], event["outcome"])),
                "succeeded": event["outcome"] == Outcome.SUCCEEDED,
                "address": event["address"],
                "device": device_name(event["user_agent"], _),
            }
            for event in await accounts.history(account["id"])
        ]
        live = [
            {
                "started": row["created_at"].astimezone(zone),
                "device": device_name(row["data"].get("user_agent", ""), _),
                "address": row["data"].get("address", ""),
                "current": row["key"] == this_session,
            }
            for row in await session_store(request).sessions_of(str(account["public_id"]))
        ]
        saved = SAVED.get(request.query_params.get("saved", ""))
        return Template(
            "identity/account/index.html",
            context={
                "account": account,
                "history": history,
                "live_sessions": live,
                "saved": _(saved) if saved else None,
                "security_url": route_path(request.app, "account-security"),
                "proxies_url": route_path(request.app, "account-proxies"),
                "nav_items": plugin_host.nav_items("patient", I18n.current()),
                "current_nav": ACCOUNT,
            },
        )

    @post("/preferences", name="account-preferences")
    async def save_preferences(
        self, request: HTMXRequest, settings: NamedDependency[Settings], data: Annotated[Preferences, FORM]
    ) -> Redirect:
        """Language (also the reader's cookie, as the language buttons set it) and paperless statements."""
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        language = data.language if data.language in settings.hospital.languages else account["language"]
        await accounts.update(str(account["public_id"]), language=language, paperless=data.paperless == "on")
        cookie = Cookie(
            key=LANGUAGE_COOKIE,
            value=language,
            max_age=LANGUAGE_COOKIE_MAX_AGE,
            path="/",
            secure=True,
            httponly=True,
            samesite="lax",
        )
        return Redirect(f"{ACCOUNT}?saved=preferences", status_code=303, cookies=[cookie])

    @post("/sessions/end-others", name="account-end-other-sessions", guards=[not_impersonating])
    async def end_other_sessions(self, request: HTMXRequest) -> Redirect:
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        await session_store(request).end_sessions_of(str(account["public_id"]), keep=request.get_session_id())
        return _saved("sessions")

    # --- email address -------------------------------------------------------------------------

    @get("/email", name="account-email")
    async def email_page(self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost]) -> Template | Redirect:
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        if refusal := _refusal(request, plugin_host.clock(), f"{ACCOUNT}/email"):
            return refusal
        return self._address_page("email", account, NewEmail(email=account["email"] or ""), {})

    @post("/email")
    async def change_email(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[NewEmail, FORM],
    ) -> Template | Redirect:
        """Send a code to the new address; it replaces the old one once the code comes back."""
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        now = plugin_host.clock()
        if refusal := _refusal(request, now, f"{ACCOUNT}/email"):
            return refusal
        contact = read_email(data.email)
        problem = None
        if contact is None:
            problem = ENTER_EMAIL
        elif contact.address == account["email"]:
            problem = N_("That is already your email address.")
        elif await enrolment.email_taken(contact.address):
            problem = EMAIL_IN_USE
        if problem or contact is None:
            return self._address_page("email", account, data, translated(request, {"email": problem or ""}), 422)
        problems = await self._send_verification(request, plugin_host, settings, contact, now)
        if problems is not None:
            errors, notice, status = problems
            return self._address_page("email", account, data, errors, status, notice)
        request.session[PENDING_EMAIL] = contact.address
        return Redirect(f"{ACCOUNT}/email/verify", status_code=303)

    @get("/email/verify", name="account-email-verify")
    async def email_code_page(self, request: HTMXRequest) -> Template | Redirect:
        pending = request.session.get(PENDING_EMAIL)
        if not pending:
            return Redirect(f"{ACCOUNT}/email", status_code=303)
        return self._code_page("email", email_contact(pending), {})

    @post("/email/verify")
    async def verify_email(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CodeEntry, FORM],
    ) -> Template | Redirect:
        account = await signed_in_account(request)
        pending = request.session.get(PENDING_EMAIL)
        if account is None:
            return signed_out(request)
        if not pending:
            return Redirect(f"{ACCOUNT}/email", status_code=303)
        now = plugin_host.clock()
        if refusal := _refusal(request, now, f"{ACCOUNT}/email/verify"):
            return refusal
        contact = email_contact(pending)
        if not await codes.redeem(Purpose.VERIFY_EMAIL, pending, data.code, secret_key=settings.secret_key, now=now):
            return self._code_page("email", contact, translated(request, {"code": WRONG_CODE}), 422)
        if await enrolment.email_taken(pending):
            request.session.pop(PENDING_EMAIL)
            return self._address_page(
                "email", account, NewEmail(email=pending), translated(request, {"email": EMAIL_IN_USE}), 422
            )
        await accounts.update(str(account["public_id"]), email=pending, email_verified_at=now)
        request.session.pop(PENDING_EMAIL)
        if account["email"]:
            await notices(request, settings, plugin_host).tell_of_change(account, "email", account["email"], now)
        return _saved("email")

    # --- mobile number -------------------------------------------------------------------------

    @get("/phone", name="account-phone")
    async def phone_page(self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost]) -> Template | Redirect:
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        if refusal := _refusal(request, plugin_host.clock(), f"{ACCOUNT}/phone"):
            return refusal
        return self._address_page("phone", account, NewPhone(phone=account["phone"] or ""), {})

    @post("/phone")
    async def change_phone(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[NewPhone, FORM],
    ) -> Template | Redirect:
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        now = plugin_host.clock()
        if refusal := _refusal(request, now, f"{ACCOUNT}/phone"):
            return refusal
        contact = read_phone(data.phone)
        problem = None
        if contact is None:
            problem = ENTER_PHONE
        elif contact.address == account["phone"] and account["phone_verified_at"]:
            problem = N_("That is already your mobile number.")
        if problem or contact is None:
            return self._address_page("phone", account, data, translated(request, {"phone": problem or ""}), 422)
        problems = await self._send_verification(request, plugin_host, settings, contact, now)
        if problems is not None:
            errors, notice, status = problems
            return self._address_page("phone", account, data, errors, status, notice)
        request.session[PENDING_PHONE] = contact.address
        return Redirect(f"{ACCOUNT}/phone/verify", status_code=303)

    @post("/phone/remove", name="account-phone-remove")
    async def remove_phone(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], settings: NamedDependency[Settings]
    ) -> Redirect:
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        now = plugin_host.clock()
        if refusal := _refusal(request, now, f"{ACCOUNT}/phone"):
            return refusal
        await accounts.update(str(account["public_id"]), phone=None, phone_verified_at=None)
        if account["email"]:
            await notices(request, settings, plugin_host).tell_of_change(account, "phone", account["email"], now)
        return _saved("phone-removed")

    @get("/phone/verify", name="account-phone-verify")
    async def phone_code_page(self, request: HTMXRequest) -> Template | Redirect:
        pending = request.session.get(PENDING_PHONE)
        if not pending:
            return Redirect(f"{ACCOUNT}/phone", status_code=303)
        return self._code_page("phone", phone_contact(pending), {})

    @post("/phone/verify")
    async def verify_phone(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CodeEntry, FORM],
    ) -> Template | Redirect:
        account = await signed_in_account(request)
        pending = request.session.get(PENDING_PHONE)
        if account is None:
            return signed_out(request)
        if not pending:
            return Redirect(f"{ACCOUNT}/phone", status_code=303)
        now = plugin_host.clock()
        if refusal := _refusal(request, now, f"{ACCOUNT}/phone/verify"):
            return refusal
        if not await codes.redeem(Purpose.VERIFY_PHONE, pending, data.code, secret_key=settings.secret_key, now=now):
            return self._code_page("phone", phone_contact(pending), translated(request, {"code": WRONG_CODE}), 422)
        await accounts.update(str(account["public_id"]), phone=pending, phone_verified_at=now)
        request.session.pop(PENDING_PHONE)
        if account["email"]:
            await notices(request, settings, plugin_host).tell_of_change(account, "phone", account["email"], now)
        return _saved("phone")

    # --- shared by email and phone -------------------------------------------------------------

    async def _send_verification(
        self, request: HTMXRequest, plugin_host: PluginHost, settings: Settings, contact: Contact, now: datetime
    ) -> tuple[dict[str, str], dict[str, Any], int] | None:
        """Send a code to a new address: None when sent, else the errors, notice and status to show."""
        sending = await code_sending.send_verification_codes(
            notices(request, settings, plugin_host),
            [contact],
            address=client_address(request),
            secret_key=settings.secret_key,
            language=I18n.current(),
            now=now,
        )
        return None if sending.sent else sending_problems(request, sending)

    def _address_page(
        self,
        kind: str,
        account: dict[str, Any],
        form: Any,
        errors: dict[str, str],
        status_code: int = 200,
        notice: dict[str, Any] | None = None,
    ) -> Template:
        return Template(
            f"identity/account/{kind}.html",
            context={"account": account, "form": form, "errors": errors, **(notice or {})},
            status_code=status_code,
        )

    def _code_page(self, kind: str, contact: Contact, errors: dict[str, str], status_code: int = 200) -> Template:
        return Template(
            "identity/account/verify.html",
            context={"kind": kind, "contact": contact, "errors": errors},
            status_code=status_code,
        )

    # --- password ------------------------------------------------------------------------------

    @get("/password", name="account-password")
    async def password_page(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost]
    ) -> Template | Redirect:
        if refusal := _refusal(request, plugin_host.clock(), f"{ACCOUNT}/password"):
            return refusal
        return self._password_page({})

    @post("/password")
    async def change_password(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[NewPassword, FORM],
    ) -> Template | Redirect:
        """A new password; every other session of the account ends."""
        account = await signed_in_account(request)
        if account is None:
            return signed_out(request)
        now = plugin_host.clock()
        if refusal := _refusal(request, now, f"{ACCOUNT}/password"):
            return refusal
        problem = password_problem(data.password, account["given_name"], account["family_name"], account["email"] or "")
        if problem:
            return self._password_page(translated(request, {"password": problem}), 422)
        public_id = str(account["public_id"])
        await accounts.update(public_id, password_hash=hash_password(data.password))
        await session_store(request).end_sessions_of(public_id, keep=request.get_session_id())
        if account["email"]:
            await notices(request, settings, plugin_host).tell_of_change(account, "password", account["email"], now)
        return _saved("password")

    def _password_page(self, errors: dict[str, str], status_code: int = 200) -> Template:
        return Template("identity/account/password.html", context={"errors": errors}, status_code=status_code)
