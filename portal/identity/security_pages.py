"""Pages for how a patient signs in: passkeys, two-step verification, confirming who they are, and the
sign-in steps that use them (a passkey instead of a password; the code after a password).

Controllers only: the rules live in ``passkeys``, ``two_step`` and ``recent_sign_in``. Passkey
ceremonies are JSON exchanges with static/js/passkeys.js; everything else is a plain form that
works without JavaScript. Changing a way in needs a recent sign-in and is refused while a
representative acts as the patient (PROMISES.md 6 and 7).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody, URLEncodedBody
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from portal.access import not_impersonating, patients_only
from portal.i18n import N_, I18n
from portal.identity import accounts, passkeys, recent_sign_in, signing_in, throttle, two_step
from portal.identity.patient_pages.web import client_address, gettext, signed_in_account
from portal.identity.secrets_at_rest import encrypt, unseal
from portal.identity.sessions import Realm
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.web.controllers import same_site_path
from portal.web.errors import SIGN_IN_ROUTE, ErrorText, error_response, route_path

HOME_ROUTE = "home"
ACCOUNT_ROUTE = "account"
SECURITY_ROUTE = "account-security"
CONFIRM_ROUTE = "account-confirm"

CEREMONY = "passkey_ceremony"
"""Session key: the challenge of the passkey ceremony under way, its purpose and when it began."""
TWO_STEP_SETUP = "two_step_setup"
"""Session key: the new TOTP secret (encrypted) until a code from the app confirms it."""

ACTING = ErrorText(
    N_("Not while acting for a patient"),
    N_("Passkeys and two-step verification can only be changed by the patient, signed in as themselves."),
)
DONE = {
    "passkey-added": N_("Your passkey is ready. Next time, choose “Sign in with a passkey”."),
    "passkey-renamed": N_("The passkey's name is changed."),
    "passkey-removed": N_("The passkey is removed. It can no longer be used to sign in."),
    "two-step-on": N_("Two-step verification is on. We will ask for a code from your app after your password."),
    "two-step-off": N_("Two-step verification is off."),
    "confirmed": N_("Thank you. For the next 10 minutes you can change how you sign in."),
}
NAME_MISSING = N_("Enter a name for this passkey, for example “My phone”.")
PASSKEY_FAILED = N_("That passkey could not be used. Please try again, or sign in another way.")
PASSKEY_NOT_ADDED = N_("The passkey was not added. Please try again.")
CEREMONY_EXPIRED = N_("That took too long. Please try again.")
TOO_MANY = N_("Too many tries. Please wait a few minutes, then try again.")
CODE_MISSING = N_("Enter the 6-digit code your authenticator app shows.")
CODE_WRONG = N_("That code did not work. Enter the newest code your app shows; check that your phone's time is right.")
PASSWORD_WRONG = N_("That password is not right. Please try again.")
PASSWORD_MISSING = N_("Enter your password.")
CONFIRM_FIRST = N_("For your safety, please confirm it is you first.")


def _user_agent(request: HTMXRequest) -> str:
    return request.headers.get("user-agent", "")


async def _holder(request: HTMXRequest) -> dict[str, Any]:
    """The signed-in account itself (not a patient it acts for); a session naming none signs in again."""
    account = await signed_in_account(request)
    if account is None:
        raise NotAuthorizedException("Please sign in to continue.")
    return account


def _nav(request: HTMXRequest, plugin_host: PluginHost) -> dict[str, Any]:
    """What the patient navigation needs: these pages belong to the account page."""
    return {
        "nav_items": plugin_host.nav_items("patient", I18n.current()),
        "current_nav": route_path(request.app, ACCOUNT_ROUTE),
    }


def _acting(request: HTMXRequest) -> bool:
    """A representative is acting as the patient: credentials and MFA cannot change (PROMISES.md 7)."""
    return bool(request.session.get("impersonator"))


def _confirm_url(request: HTMXRequest) -> str:
    security = request.app.route_reverse(SECURITY_ROUTE)
    return f"{request.app.route_reverse(CONFIRM_ROUTE)}?{urlencode({'next': security})}"


def _security_url(request: HTMXRequest, done: str) -> str:
    """The security page, with the notice of what was just done."""
    return f"{request.app.route_reverse(SECURITY_ROUTE)}?{urlencode({'done': done})}"


def _done(request: HTMXRequest, what: str) -> Redirect:
    return Redirect(_security_url(request, what), status_code=303)


def _begin_ceremony(request: HTMXRequest, purpose: str, ceremony: passkeys.Ceremony, now: datetime) -> None:
    challenge = base64.urlsafe_b64encode(ceremony.challenge).decode("ascii")
    request.set_session(
        {**request.session, CEREMONY: {"purpose": purpose, "challenge": challenge, "began": now.isoformat()}}
    )


def _end_ceremony(request: HTMXRequest, purpose: str, now: datetime) -> bytes | None:
    """The challenge of the ceremony under way, which no later answer can use again; None if there is none."""
    session = dict(request.session)
    ceremony = session.pop(CEREMONY, None)
    request.set_session(session)
    if not isinstance(ceremony, dict) or ceremony.get("purpose") != purpose:
        return None
    try:
        began = datetime.fromisoformat(ceremony["began"])
        challenge = base64.urlsafe_b64decode(ceremony["challenge"])
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None
    return challenge if now - began <= passkeys.CEREMONY_TIMEOUT else None


async def _recovery_codes_page(
    request: HTMXRequest,
    settings: Settings,
    plugin_host: PluginHost,
    account: dict[str, Any],
    now: datetime,
    done: str | None = None,
) -> Template:
    """Shown once, right after the codes are made; only their HMACs are kept."""
    codes = await two_step.new_recovery_codes(settings, account, now)
    onward = _security_url(request, done) if done else request.app.route_reverse(SECURITY_ROUTE)
    context = {"codes": codes, "onward": onward, **_nav(request, plugin_host)}
    return Template("identity/security/recovery_codes.html", context=context)


def _json_error(request: HTMXRequest, status: int, message: str, **extra: str) -> Response[Any]:
    return Response({"message": gettext(request)(message), **extra}, status_code=status)


@dataclass
class PasskeyAnswer:
    credential: dict[str, Any]
    name: str = ""


@dataclass
class PasskeyName:
    name: str = ""


@dataclass
class CodeForm:
    code: str = ""


@dataclass
class PasswordForm:
    password: str = ""
    next: str = ""


class AccountSecurityController(Controller):
    """/account/security: the patient's passkeys and two-step verification."""

    path = "/account/security"
    guards = [patients_only]

    @get(name=SECURITY_ROUTE)
    async def overview(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], done: FromQuery[str | None] = None
    ) -> Template:
        """Passkeys (name, added, last used) and whether two-step verification is on."""
        account = await _holder(request)
        return Template(
            "identity/security/security.html",
            context={
                "passkeys": await passkeys.of_account(account["id"]),
                "two_step_since": account["totp_enabled_at"],
                "recovery_codes_left": await two_step.recovery_codes_left(account),
                "acting": _acting(request),
                "recent": recent_sign_in.is_recent(request.session, plugin_host.clock()),
                "notice": DONE.get(done or ""),
                "passkey_name": "",
                "errors": {},
                **_nav(request, plugin_host),
            },
        )

    @post("/passkeys/options", name="passkey-registration-options")
    async def registration_options(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Response[Any]:
        """WebAuthn creation options for navigator.credentials.create(); the challenge stays in the session."""
        now = plugin_host.clock()
        if _acting(request):
            return _json_error(request, 403, ACTING.message)
        if not recent_sign_in.is_recent(request.session, now):
            return _json_error(request, 403, CONFIRM_FIRST, confirm=_confirm_url(request))
        account = await _holder(request)
        ceremony = passkeys.registration_ceremony(settings, account, await passkeys.of_account(account["id"]))
        _begin_ceremony(request, "register", ceremony, now)
        return Response(ceremony.options_json.encode(), media_type="application/json", status_code=200)

    @post("/passkeys", name="passkey-add")
    async def add_passkey(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        data: JSONBody[PasskeyAnswer],
    ) -> Response[Any]:
        """Check the authenticator's answer and keep the passkey; the browser then goes where it is told."""
        now = plugin_host.clock()
        challenge = _end_ceremony(request, "register", now)
        if _acting(request):
            return _json_error(request, 403, ACTING.message)
        if not recent_sign_in.is_recent(request.session, now):
            return _json_error(request, 403, CONFIRM_FIRST, confirm=_confirm_url(request))
        if challenge is None:
            return _json_error(request, 400, CEREMONY_EXPIRED)
        account = await _holder(request)
        name = passkeys.clean_name(data.name) or gettext(request)(N_("Passkey"))
        try:
            await passkeys.register(settings, account, data.credential, challenge, name, now)
        except passkeys.PasskeyRefused:
            return _json_error(request, 400, PASSKEY_NOT_ADDED)
        return Response({"redirect": _security_url(request, "passkey-added")}, status_code=200)

    @get("/passkeys/{passkey_id:int}", name="passkey")
    async def passkey(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], passkey_id: FromPath[int]
    ) -> Template:
        """One passkey: rename it or remove it."""
        account = await _holder(request)
        found = await self._own_passkey(account, passkey_id)
        return self._passkey_page(request, plugin_host, found, found["name"], {})

    @post("/passkeys/{passkey_id:int}/name", name="passkey-rename")
    async def rename_passkey(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        passkey_id: FromPath[int],
        data: URLEncodedBody[PasskeyName],
    ) -> Template | Redirect | Response[Any]:
        account = await _holder(request)
        found = await self._own_passkey(account, passkey_id)
        if _acting(request):
            return error_response(request, 403, ACTING)
        if not passkeys.clean_name(data.name):
            errors = {"name": gettext(request)(NAME_MISSING)}
            return self._passkey_page(request, plugin_host, found, data.name, errors, status=422)
        await passkeys.rename(account["id"], passkey_id, data.name)
        return _done(request, "passkey-renamed")

    @post("/passkeys/{passkey_id:int}/remove", name="passkey-remove")
    async def remove_passkey(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], passkey_id: FromPath[int]
    ) -> Redirect | Response[Any]:
        account = await _holder(request)
        await self._own_passkey(account, passkey_id)
        if _acting(request):
            return error_response(request, 403, ACTING)
        if not recent_sign_in.is_recent(request.session, plugin_host.clock()):
            return Redirect(_confirm_url(request), status_code=303)
        await passkeys.remove(account["id"], passkey_id)
        return _done(request, "passkey-removed")

    @post("/two-step/start", name="two-step-start")
    async def start_two_step(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Redirect | Response[Any]:
        """Make a new secret for the app, kept (encrypted) in the session until a code confirms it."""
        if _acting(request):
            return error_response(request, 403, ACTING)
        if not recent_sign_in.is_recent(request.session, plugin_host.clock()):
            return Redirect(_confirm_url(request), status_code=303)
        await _holder(request)
        request.set_session({**request.session, TWO_STEP_SETUP: encrypt(settings, two_step.new_secret())})
        return Redirect(request.app.route_reverse("two-step-setup"), status_code=303)

    @get("/two-step", name="two-step-setup")
    async def two_step_setup(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Template | Redirect:
        """The QR code and the key to type by hand, and the field for the app's first code."""
        account = await _holder(request)
        secret = self._setup_secret(request, settings)
        if secret is None or _acting(request):
            return Redirect(request.app.route_reverse(SECURITY_ROUTE), status_code=303)
        return self._setup_page(request, plugin_host, account, secret, {})

    @post("/two-step", name="two-step-confirm")
    async def confirm_two_step(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        data: URLEncodedBody[CodeForm],
    ) -> Template | Redirect | Response[Any]:
        now = plugin_host.clock()
        if _acting(request):
            return error_response(request, 403, ACTING)
        if not recent_sign_in.is_recent(request.session, now):
            return Redirect(_confirm_url(request), status_code=303)
        account = await _holder(request)
        secret = self._setup_secret(request, settings)
        if secret is None:
            return Redirect(request.app.route_reverse(SECURITY_ROUTE), status_code=303)
        if not data.code.strip():
            return self._setup_page(request, plugin_host, account, secret, {"code": gettext(request)(CODE_MISSING)})
        check = await two_step.turn_on(settings, account, secret, data.code, now)
        if check.outcome is two_step.Outcome.THROTTLED:
            errors = {"code": gettext(request)(TOO_MANY)}
            return self._setup_page(request, plugin_host, account, secret, errors, status=429)
        if check.outcome is two_step.Outcome.WRONG:
            return self._setup_page(request, plugin_host, account, secret, {"code": gettext(request)(CODE_WRONG)})
        request.set_session({key: value for key, value in request.session.items() if key != TWO_STEP_SETUP})
        return await _recovery_codes_page(request, settings, plugin_host, account, now, done="two-step-on")

    @post("/two-step/recovery-codes", name="recovery-codes-new")
    async def new_recovery_codes(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Template | Redirect | Response[Any]:
        """New recovery codes (the old ones stop working), for a holder who used or lost theirs."""
        now = plugin_host.clock()
        if _acting(request):
            return error_response(request, 403, ACTING)
        if not recent_sign_in.is_recent(request.session, now):
            return Redirect(_confirm_url(request), status_code=303)
        account = await _holder(request)
        if account["totp_enabled_at"] is None:
            return Redirect(request.app.route_reverse(SECURITY_ROUTE), status_code=303)
        return await _recovery_codes_page(request, settings, plugin_host, account, now)

    @post("/two-step/off", name="two-step-off")
    async def turn_off_two_step(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost]
    ) -> Redirect | Response[Any]:
        if _acting(request):
            return error_response(request, 403, ACTING)
        if not recent_sign_in.is_recent(request.session, plugin_host.clock()):
            return Redirect(_confirm_url(request), status_code=303)
        await two_step.turn_off(await _holder(request))
        return _done(request, "two-step-off")

    @staticmethod
    async def _own_passkey(account: dict[str, Any], passkey_id: int) -> dict[str, Any]:
        # Someone else's passkey looks exactly like a missing one (PROMISES.md 2).
        for found in await passkeys.of_account(account["id"]):
            if found["id"] == passkey_id:
                return found
        raise NotFoundException()

    @staticmethod
    def _passkey_page(
        request: HTMXRequest,
        plugin_host: PluginHost,
        found: dict[str, Any],
        name: str,
        errors: dict[str, str],
        status: int = 200,
    ) -> Template:
        return Template(
            "identity/security/passkey.html",
            context={
                "passkey": found,
                "name": name,
                "errors": errors,
                "acting": _acting(request),
                **_nav(request, plugin_host),
            },
            status_code=status,
        )

    @staticmethod
    def _setup_secret(request: HTMXRequest, settings: Settings) -> str | None:
        return unseal(settings, request.session.get(TWO_STEP_SETUP))

    @staticmethod
    def _setup_page(
        request: HTMXRequest,
        plugin_host: PluginHost,
        account: dict[str, Any],
        secret: str,
        errors: dict[str, str],
        status: int = 422,
    ) -> Template:
        uri = two_step.setup_uri(secret, account, plugin_host.settings.hospital.name)
        return Template(
            "identity/security/two_step_setup.html",
            context={
                "qr_code": two_step.qr_code_svg(uri),
                "key": two_step.grouped(secret),
                "errors": errors,
                **_nav(request, plugin_host),
            },
            status_code=status if errors else 200,
        )


class ConfirmController(Controller):
    """/account/confirm: the password again, before a change that needs a recent sign-in."""

    path = "/account/confirm"
    guards = [patients_only, not_impersonating]

    @get(name=CONFIRM_ROUTE)
    async def confirm_page(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], next: FromQuery[str] = ""
    ) -> Template:
        account = await _holder(request)
        return self._page(request, plugin_host, account, next, {})

    @post()
    async def confirm(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], data: URLEncodedBody[PasswordForm]
    ) -> Template | Redirect:
        now = plugin_host.clock()
        account = await _holder(request)
        if not data.password:
            return self._page(
                request, plugin_host, account, data.next, {"password": gettext(request)(PASSWORD_MISSING)}
            )
        check = await accounts.check_password(
            account["realm"],
            account["email"] or "",
            data.password,
            address=client_address(request),
            user_agent=_user_agent(request),
            now=now,
        )
        if check.outcome is accounts.Outcome.THROTTLED:
            return self._page(
                request, plugin_host, account, data.next, {"password": gettext(request)(TOO_MANY)}, status=429
            )
        if (
            check.outcome is not accounts.Outcome.SUCCEEDED
            or check.account is None
            or check.account["id"] != account["id"]
        ):
            return self._page(request, plugin_host, account, data.next, {"password": gettext(request)(PASSWORD_WRONG)})
        recent_sign_in.confirmed(request, now)
        target = same_site_path(data.next)
        if target == "/" or target.split("?")[0] == request.app.route_reverse(SECURITY_ROUTE):
            return _done(request, "confirmed")
        return Redirect(target, status_code=303)

    @staticmethod
    def _page(
        request: HTMXRequest,
        plugin_host: PluginHost,
        account: dict[str, Any],
        next: str,
        errors: dict[str, str],
        status: int = 422,
    ) -> Template:
        return Template(
            "identity/security/confirm.html",
            context={
                "next": same_site_path(next),
                "cancel_url": route_path(request.app, ACCOUNT_ROUTE) or request.app.route_reverse(SECURITY_ROUTE),
                "has_password": bool(account["password_hash"]),
                "errors": errors,
                **_nav(request, plugin_host),
            },
            status_code=status if errors else 200,
        )


class PasskeySignInController(Controller):
    """/sign-in/passkey: sign in with a passkey, no username needed (discoverable credentials)."""

    path = "/sign-in/passkey"

    @post("/options", name="passkey-sign-in-options", opt={"public": True})
    async def options(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Response[Any]:
        """WebAuthn request options for navigator.credentials.get(); the challenge stays in the session."""
        now = plugin_host.clock()
        verdict = await throttle.attempt(f"passkey:address:{client_address(request)}", passkeys.ADDRESS_LIMIT, now)
        if not verdict.allowed:
            return _json_error(request, 429, TOO_MANY)
        ceremony = passkeys.authentication_ceremony(settings)
        _begin_ceremony(request, "sign-in", ceremony, now)
        return Response(ceremony.options_json.encode(), media_type="application/json", status_code=200)

    @post("/verify", name="passkey-sign-in", opt={"public": True})
    async def verify(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        data: JSONBody[PasskeyAnswer],
    ) -> Response[Any]:
        """Check the signed challenge; a passkey is two factors, so the session opens at once."""
        now = plugin_host.clock()
        challenge = _end_ceremony(request, "sign-in", now)
        verdict = await throttle.attempt(f"passkey:address:{client_address(request)}", passkeys.ADDRESS_LIMIT, now)
        if not verdict.allowed:
            return _json_error(request, 429, TOO_MANY)
        if challenge is None:
            return _json_error(request, 400, CEREMONY_EXPIRED)
        try:
            account = await passkeys.authenticate(
                settings,
                data.credential,
                challenge,
                address=client_address(request),
                user_agent=_user_agent(request),
                now=now,
            )
        except passkeys.PasskeyRefused:
            return _json_error(request, 400, PASSKEY_FAILED)
        await signing_in.complete(request, account, "passkey", now)
        return Response({"redirect": route_path(request.app, HOME_ROUTE) or "/"}, status_code=200)


class SecondFactorController(Controller):
    """/sign-in/second-factor: the code from the authenticator app, after a password or a one-time code.

    Public: the session holds only the pending sign-in until the code is right.
    """

    path = "/sign-in/second-factor"

    @get(name="sign-in-second-factor", opt={"public": True})
    async def second_factor(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost]
    ) -> Template | Redirect:
        if await self._pending(request, plugin_host.clock()) is None:
            return self._start_again(request)
        return self._page({})

    @post(opt={"public": True})
    async def check_code(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        data: URLEncodedBody[CodeForm],
    ) -> Template | Redirect:
        now = plugin_host.clock()
        account = await self._pending(request, now)
        if account is None:
            return self._start_again(request)
        if not data.code.strip():
            return self._page({"code": gettext(request)(CODE_MISSING)})
        check = await two_step.check_sign_in(
            settings, account, data.code, address=client_address(request), user_agent=_user_agent(request), now=now
        )
        if check.outcome is two_step.Outcome.THROTTLED:
            return self._page({"code": gettext(request)(TOO_MANY)}, status=429)
        if check.outcome is two_step.Outcome.WRONG:
            return self._page({"code": gettext(request)(CODE_WRONG)})
        second = "recovery" if two_step.looks_like_recovery_code(data.code) else "totp"
        method = f"{request.session.get('pending_method', 'password')}+{second}"
        await signing_in.complete(request, account, method, now)
        return Redirect(route_path(request.app, HOME_ROUTE) or "/", status_code=303)

    @staticmethod
    async def _pending(request: HTMXRequest, now: datetime) -> dict[str, Any] | None:
        """The account whose sign-in awaits its second factor, if that began in the last ten minutes."""
        public_id = request.session.get(signing_in.PENDING)
        # The pending session began when the first factor was given: the same ten minutes apply.
        if not public_id or not recent_sign_in.is_recent(request.session, now):
            return None
        try:
            account = await accounts.find(str(UUID(public_id)))
        except ValueError:
            return None
        # Staff finish their own second step on the staff pages: the two areas never share a session.
        if account is None or account["realm"] != Realm.PATIENT or account["totp_enabled_at"] is None:
            return None
        return account

    @staticmethod
    def _start_again(request: HTMXRequest) -> Redirect:
        return Redirect(route_path(request.app, SIGN_IN_ROUTE) or "/", status_code=303)

    @staticmethod
    def _page(errors: dict[str, str], status: int = 422) -> Template:
        return Template(
            "identity/security/second_factor.html",
            context={"errors": errors},
            status_code=status if errors else 200,
        )


ROUTES = [AccountSecurityController, ConfirmController, PasskeySignInController, SecondFactorController]
