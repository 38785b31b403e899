"""Staff sign-in: through the hospital's workforce OpenID provider, with MFA, and roles from its groups.

The provider (``[identity.staff_oidc]``) proves who signed in; its groups claim gives the role
(representative, supervisor or administrator: the highest any group maps to); no mapped role, no
entry. MFA is the provider's (its ``amr``/``acr`` must show a second factor) or Carefront's own TOTP
code, enrolled at the first sign-in. Signing in as staff always opens a new session, so a patient
session in the same browser ends (PROMISES.md 6). The local administrator made by
``carefront admin create`` signs in with a password and a TOTP code, for first set-up.

Controllers, and the role mapping they apply; accounts live in ``oidc_links`` and ``accounts``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.access import staff_with
from portal.i18n import N_, I18n
from portal.identity import accounts, oidc, oidc_links, recent_sign_in, sessions, signing_in, two_step
from portal.identity.passwords import hash_password
from portal.identity.secrets_at_rest import encrypt, unseal
from portal.identity.sessions import Realm, viewer
from portal.plugin_host import PluginHost
from portal.settings import OidcProvider, Settings

log = logging.getLogger("carefront.staff_sign_in")

SIGN_IN_ROUTE = "staff-sign-in"
CALLBACK_ROUTE = "staff-sign-in-callback"
CODE_ROUTE = "staff-sign-in-code"
HOME_ROUTE = "staff-home"

FLOW = "staff_oidc_flow"
"""Session key: the state, nonce and PKCE verifier of the staff sign-in under way."""
ENROLMENT = "staff_totp_enrolment"
"""Session key: the new TOTP secret (encrypted) of a staff member enrolling at their first sign-in."""

ROLES_BY_RANK = ("administrator", "supervisor", "representative")
"""Someone in several mapped groups gets the first of these they hold."""
ROLE_NAMES = {
    "representative": N_("Representative"),
    "supervisor": N_("Supervisor"),
    "administrator": N_("Administrator"),
}
NO_ROLE = N_(
    "Your account at %(provider)s is not in a group that Carefront knows. Ask an administrator to add you to the group for your role."
)
NO_MFA = N_(
    "Your sign-in at %(provider)s did not use a second factor, which Carefront requires for staff. Sign out there, then sign in again with your second factor."
)
CODE_MISSING = N_("Enter the 6-digit code your authenticator app shows.")
CODE_WRONG = N_("That code did not work. Enter the newest code your app shows; check that your phone's time is right.")
TOO_MANY = N_("Too many tries. Please wait a few minutes, then try again.")
EMAIL_MISSING = N_("Enter your email address.")
PASSWORD_MISSING = N_("Enter your password.")
LOCAL_WRONG = N_("That email address, password and code do not match an administrator. Please try again.")


@dataclass(frozen=True, slots=True)
class Enrolment:
    """What a new local administrator types into their authenticator app."""

    secret: str
    uri: str


def role_from_groups(provider: OidcProvider, groups: tuple[str, ...]) -> str | None:
    """The role the groups give under the provider's mapping, the highest of several; None for none."""
    held = {provider.roles[group] for group in groups if group in provider.roles}
    return next((role for role in ROLES_BY_RANK if role in held), None)


def mfa_proven(provider: OidcProvider, identity: oidc.VerifiedIdentity) -> bool:
    """The provider says the sign-in used a second factor: an accepted ``amr`` value, or ``acr``."""
    return bool(set(identity.amr) & set(provider.mfa_amr)) or (identity.acr in provider.mfa_acr)


async def create_local_administrator(
    settings: Settings, *, email: str, given_name: str, family_name: str, password: str, now: datetime
) -> Enrolment:
    """An administrator who signs in with a password and a TOTP code, for the first set-up.

    Raises ValueError when the email address is not one, or a staff account already has it.
    """
    address = accounts.normal_email(email)
    if address is None:
        raise ValueError("not an email address")
    if await accounts.find_by_email(Realm.STAFF, address) is not None:
        raise ValueError("a staff account already has this email address")
    secret = two_step.new_secret()
    account = await accounts.create(
        now,
        realm=Realm.STAFF,
        email=address,
        email_verified_at=now,
        password_hash=hash_password(password),
        given_name=given_name[:100],
        family_name=family_name[:100],
        role="administrator",
        totp_secret=encrypt(settings, secret),
        totp_enabled_at=now,
    )
    if account is None:
        raise ValueError("a staff account already has this email address")
    return Enrolment(secret=secret, uri=two_step.setup_uri(secret, account, f"{settings.hospital.name} staff"))


def _gettext(request: Request[Any, Any, Any], message: str, **values: str) -> str:
    i18n: I18n = request.app.state["i18n"]
    return i18n.gettext(message) % values if values else i18n.gettext(message)


def _address(request: Request[Any, Any, Any]) -> str:
    return request.client.host if request.client else ""


def _user_agent(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("user-agent", "")


def _provider(settings: Settings) -> OidcProvider:
    if settings.identity.staff_oidc is None:
        raise NotFoundException()
    return settings.identity.staff_oidc


def _provider_name(request: Request[Any, Any, Any], provider: OidcProvider) -> str:
    return provider.name or _gettext(request, N_("your organization's identity provider"))


def sign_in_failed(request: Request[Any, Any, Any], retry_url: str, *, unavailable: bool = False) -> Template:
    """The friendly page of a single sign-on that did not complete: nothing is said about why."""
    return Template(
        "identity/sso/failed.html",
        context={"retry_url": retry_url, "unavailable": unavailable},
        status_code=503 if unavailable else 400,
    )


def _home(request: Request[Any, Any, Any]) -> Redirect:
    return Redirect(request.app.route_reverse(HOME_ROUTE), status_code=303)


@dataclass
class CodeForm:
    code: str = ""


@dataclass
class LocalForm:
    email: str = ""
    password: str = ""
    code: str = ""


Form = Body(media_type=RequestEncodingType.URL_ENCODED)
PUBLIC = {"public": True}


class StaffSignInController(Controller):
    """/staff/sign-in: through the workforce provider, then the TOTP code when Carefront asks its own."""

    path = "/staff/sign-in"

    @get(name=SIGN_IN_ROUTE, opt=PUBLIC)
    async def sign_in_page(self, request: HTMXRequest, settings: NamedDependency[Settings]) -> Template:
        """The way in for staff: one button to the hospital's provider (or why there is none)."""
        provider = settings.identity.staff_oidc
        return Template(
            "identity/staff/sign_in.html",
            context={"provider_name": _provider_name(request, provider) if provider else None},
        )

    @post(name="staff-sign-in-start", opt=PUBLIC)
    async def start(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Redirect | Template:
        """Begin a sign-in at the provider; the state, nonce and PKCE verifier stay in the session."""
        provider = _provider(settings)
        try:
            authorization = await oidc.client_of(request.app.state).begin(
                provider, self._callback_url(request, settings), plugin_host.clock()
            )
        except oidc.ProviderUnavailable as error:
            log.warning("staff sign-in: provider unavailable at %s", error.step)
            return sign_in_failed(request, request.app.route_reverse(SIGN_IN_ROUTE), unavailable=True)
        request.set_session({**request.session, FLOW: authorization.flow})
        return Redirect(authorization.url, status_code=303)

    @get("/callback", name=CALLBACK_ROUTE, opt=PUBLIC)
    async def callback(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Redirect | Template:
        """Where the provider sends the browser back: check everything, then the role and MFA."""
        provider = _provider(settings)
        now = plugin_host.clock()
        session = dict(request.session)
        flow = session.pop(FLOW, None)  # one use: a second callback with the same state finds nothing
        request.set_session(session)
        retry = request.app.route_reverse(SIGN_IN_ROUTE)
        try:
            identity = await oidc.client_of(request.app.state).complete(
                provider, self._callback_url(request, settings), flow, dict(request.query_params), now
            )
        except oidc.SignInFailed as error:
            log.warning("staff sign-in did not complete: check=%s failed", error.check)
            return sign_in_failed(request, retry)
        except oidc.ProviderUnavailable as error:
            log.warning("staff sign-in: provider unavailable at %s", error.step)
            return sign_in_failed(request, retry, unavailable=True)
        role = role_from_groups(provider, identity.groups)
        account = await oidc_links.staff_account(identity, role, now)
        name = _provider_name(request, provider)
        if account is None or role is None:
            log.info("staff sign-in refused: no mapped group")
            if account is not None:
                await self._refused(request, account, now)
            return self._refusal(NO_ROLE, name)
        if provider.mfa == "amr":
            if not mfa_proven(provider, identity):
                log.info(
                    "staff sign-in refused: account=%s without a second factor at the provider", account["public_id"]
                )
                await self._refused(request, account, now)
                return self._refusal(NO_MFA, name)
            await signing_in.complete(request, account, "oidc", now)
            return _home(request)
        # Carefront's own TOTP: hold the sign-in until the code, enrolling the app first if need be.
        signing_in.await_second_factor(request, account, "oidc", now)
        if account["totp_enabled_at"] is None:
            request.set_session({**request.session, ENROLMENT: encrypt(settings, two_step.new_secret())})
        return Redirect(request.app.route_reverse(CODE_ROUTE), status_code=303)

    @get("/code", name=CODE_ROUTE, opt=PUBLIC)
    async def code_page(
        self, request: HTMXRequest, settings: NamedDependency[Settings], plugin_host: NamedDependency[PluginHost]
    ) -> Template | Redirect:
        """The code from the authenticator app; on the first sign-in, the key to add to the app first."""
        account = await self._pending(request, plugin_host.clock())
        if account is None:
            return Redirect(request.app.route_reverse(SIGN_IN_ROUTE), status_code=303)
        return self._code_page(request, settings, account, {})

    @post("/code", opt=PUBLIC)
    async def check_code(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        data: Annotated[CodeForm, Form],
    ) -> Template | Redirect:
        now = plugin_host.clock()
        account = await self._pending(request, now)
        if account is None:
            return Redirect(request.app.route_reverse(SIGN_IN_ROUTE), status_code=303)
        if not data.code.strip():
            return self._code_page(request, settings, account, {"code": _gettext(request, CODE_MISSING)})
        secret = self._enrolment(request, settings)
        if secret is not None:
            check = await two_step.turn_on(settings, account, secret, data.code, now)
        else:
            check = await two_step.check_sign_in(
                settings, account, data.code, address=_address(request), user_agent=_user_agent(request), now=now
            )
        if check.outcome is two_step.Outcome.THROTTLED:
            return self._code_page(request, settings, account, {"code": _gettext(request, TOO_MANY)}, status=429)
        if check.outcome is two_step.Outcome.WRONG:
            return self._code_page(request, settings, account, {"code": _gettext(request, CODE_WRONG)})
        await signing_in.complete(request, account, "oidc+totp", now)
        return _home(request)

    @get("/local", name="staff-sign-in-local", opt=PUBLIC)
    async def local_page(self) -> Template:
        """The local administrator's way in: email address, password and the code from the app."""
        return self._local_page(LocalForm(), {})

    @post("/local", opt=PUBLIC)
    async def local_sign_in(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        data: Annotated[LocalForm, Form],
    ) -> Template | Redirect:
        """Both the password and the code must be right; the answer never says which was wrong."""
        now = plugin_host.clock()
        email = accounts.normal_email(data.email) or data.email.strip().lower()
        errors = {
            name: _gettext(request, message)
            for name, message in (("email", EMAIL_MISSING), ("password", PASSWORD_MISSING), ("code", CODE_MISSING))
            if not getattr(data, name).strip()
        }
        if errors:
            return self._local_page(data, errors)
        if "\x00" in email:  # no account has a NUL in its address, and PostgreSQL refuses one in text
            return self._local_page(data, {"email": _gettext(request, LOCAL_WRONG)})
        check = await accounts.check_password(
            Realm.STAFF, email, data.password, address=_address(request), user_agent=_user_agent(request), now=now
        )
        if check.outcome is accounts.Outcome.THROTTLED:
            return self._local_page(data, {"email": _gettext(request, TOO_MANY)}, status=429)
        account = check.account
        if check.outcome is not accounts.Outcome.SUCCEEDED or account is None or account["role"] not in ROLE_NAMES:
            return self._local_page(data, {"email": _gettext(request, LOCAL_WRONG)})
        code = await two_step.check_sign_in(
            settings, account, data.code, address=_address(request), user_agent=_user_agent(request), now=now
        )
        if code.outcome is two_step.Outcome.THROTTLED:
            return self._local_page(data, {"email": _gettext(request, TOO_MANY)}, status=429)
        if code.outcome is not two_step.Outcome.ACCEPTED:
            return self._local_page(data, {"email": _gettext(request, LOCAL_WRONG)})
        await signing_in.complete(request, account, "password+totp", now)
        return _home(request)

    @staticmethod
    def _callback_url(request: Request[Any, Any, Any], settings: Settings) -> str:
        return settings.public_url + request.app.route_reverse(CALLBACK_ROUTE)

    @staticmethod
    async def _refused(request: Request[Any, Any, Any], account: dict[str, Any], now: datetime) -> None:
        """The provider let them in, Carefront did not: the attempt goes in the account's history."""
        await accounts.record(account["id"], "oidc", "refused", _address(request), _user_agent(request), now)

    @staticmethod
    def _refusal(message: str, provider_name: str) -> Template:
        return Template(
            "identity/staff/refused.html", context={"message": message, "provider": provider_name}, status_code=403
        )

    @staticmethod
    async def _pending(request: Request[Any, Any, Any], now: datetime) -> dict[str, Any] | None:
        """The staff account whose sign-in awaits its code, if the provider's part ended in the last ten minutes."""
        public_id = request.session.get(signing_in.PENDING)
        if not public_id or request.session.get("pending_method") != "oidc":
            return None
        if not recent_sign_in.is_recent(request.session, now):
            return None
        account = await accounts.find(public_id)
        return account if account is not None and account["realm"] == Realm.STAFF else None

    @staticmethod
    def _enrolment(request: Request[Any, Any, Any], settings: Settings) -> str | None:
        return unseal(settings, request.session.get(ENROLMENT))

    def _code_page(
        self,
        request: Request[Any, Any, Any],
        settings: Settings,
        account: dict[str, Any],
        errors: dict[str, str],
        status: int = 422,
    ) -> Template:
        secret = self._enrolment(request, settings)
        context: dict[str, Any] = {"errors": errors, "enrolling": secret is not None}
        if secret is not None:
            uri = two_step.setup_uri(secret, account, f"{settings.hospital.name} staff")
            context |= {"qr_code": two_step.qr_code_svg(uri), "key": two_step.grouped(secret), "uri": uri}
        return Template("identity/staff/code.html", context=context, status_code=status if errors else 200)

    @staticmethod
    def _local_page(form: LocalForm, errors: dict[str, str], status: int = 422) -> Template:
        # The password and the code are never sent back.
        return Template(
            "identity/staff/local.html",
            context={"email": form.email, "errors": errors},
            status_code=status if errors else 200,
        )


class StaffController(Controller):
    """/staff: the staff landing page, and signing out."""

    path = "/staff"
    guards = [staff_with()]

    @get(name=HOME_ROUTE)
    async def home(self, request: HTMXRequest) -> Template:
        """What exists for staff today, honestly: the plugins page, and signing out."""
        current = viewer(request)
        role = current.role if current else None
        return Template("identity/staff/home.html", context={"role": ROLE_NAMES.get(role or "", "")})

    @post("/sign-out", name="staff-sign-out")
    async def sign_out(self, request: HTMXRequest) -> Redirect:
        sessions.end(request)
        return Redirect(request.app.route_reverse(SIGN_IN_ROUTE), status_code=303)


ROUTES = [StaffSignInController, StaffController]
