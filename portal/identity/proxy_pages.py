"""Proxy pages: choosing whom to act for, the patient's list of proxies, adding a child, inviting a
caregiver or billing delegate, and accepting an invitation.

Controllers only: what a grant is and when it lives is ``portal.identity.proxies``. The invitation
code never travels in a URL the server sees: the email's link carries it after ``#`` (a browser
never sends that part), static/js/invitation-code.js copies it into the form, and without
JavaScript the invitee types it; so no access log, history or Referer holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.support import NullTranslations
from carefront_sdk.errors import Refused, Unavailable
from carefront_sdk.models import Channel, Message
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.params import Body, FromPath
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from portal.access import not_impersonating, patients_only
from portal.audit.log import Auditor, Entry
from portal.i18n import N_, I18n
from portal.identity import accounts, proxies, signing_in, throttle
from portal.identity.passwords import hash_password, password_problem
from portal.identity.patient_pages.account import IMPERSONATOR
from portal.identity.patient_pages.enrolment import Identifier, patient_query
from portal.identity.patient_pages.sign_up import IdentityForm, date_parts
from portal.identity.patient_pages.web import client_address, signed_in_account, translated, wait_minutes
from portal.identity.sessions import Access, Realm, Viewer, viewer
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.web.errors import SIGN_IN_ROUTE, ErrorText, error_response, route_path

HOME_ROUTE = "home"
ACCOUNT_ROUTE = "account"
URL_ENCODED = Body(media_type=RequestEncodingType.URL_ENCODED)

ACCESS_LABELS = {
    Access.GUARDIAN: N_("Parent or guardian"),
    Access.CAREGIVER: N_("Caregiver"),
    Access.BILLING: N_("Billing only"),
}
WHAT_YOU_ARE = {
    Access.SELF: N_("Your own account"),
    Access.GUARDIAN: N_("You are their parent or guardian"),
    Access.CAREGIVER: N_("You are their caregiver"),
    Access.BILLING: N_("You help with their bills only"),
}
"""On the list of whom to act for: what the reader is to each person."""
ACTING = ErrorText(
    N_("Not while acting for a patient"),
    N_("Who may see an account can only be changed by the patient, signed in as themselves."),
)
ACCESS_DESCRIPTIONS = {
    Access.CAREGIVER: N_("Everything in the account: bills, payments, insurance and appointments."),
    Access.BILLING: N_("Statements, payments and payment plans only: no appointments or health details."),
}


def _now_and_today(plugin_host: PluginHost, settings: Settings) -> tuple[datetime, date]:
    now = plugin_host.clock()
    return now, now.astimezone(ZoneInfo(settings.hospital.time_zone)).date()


async def _account(request: HTMXRequest) -> tuple[Viewer, dict[str, Any]]:
    current = viewer(request)
    account = await signed_in_account(request)
    if current is None or account is None:
        raise NotAuthorizedException("Please sign in to continue.")
    return current, account


def _nav(request: HTMXRequest) -> dict[str, Any]:
    """The patient navigation's items (identity/patient_nav.html), plugins' included."""
    plugin_host: PluginHost = request.app.state["plugin_host"]
    return {"nav_items": plugin_host.nav_items("patient", I18n.current())}


def _next_page(request: HTMXRequest) -> str:
    """Where a proxy goes once they have chosen: the home page (while none is installed, back to the list)."""
    return route_path(request.app, HOME_ROUTE) or request.app.route_reverse("switch")


def birth_date_of(form: Any, today: date) -> tuple[date | None, str | None]:
    """The date of birth typed in a form's ``birth_month``, ``birth_day`` and ``birth_year``, or why not.

    For someone other than the reader (a child, the patient on a bill), so the words say "the".
    """
    parts = (form.birth_year.strip(), form.birth_month.strip(), form.birth_day.strip())
    if not any(parts):
        return None, N_("Enter the date of birth.")
    if not all(part.isdigit() and part.isascii() for part in parts) or len(parts[0]) != 4:
        return None, N_("Enter the date of birth as numbers, with a four-digit year.")
    try:
        born = date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None, N_("Enter a real date of birth.")
    if born > today or born.year < 1900:
        return None, N_("Enter a real date of birth.")
    return born, None


# --- Choosing whom to act for ---------------------------------------------------------------------


@dataclass
class Choice:
    patient: str = ""


class SwitchController(Controller):
    """``/switch``: the people the signed-in account may act for, and the form that picks one."""

    path = "/switch"
    guards = [patients_only, not_impersonating]

    @get(name="switch")
    async def people(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], settings: NamedDependency[Settings]
    ) -> Template:
        current, account = await _account(request)
        now, today = _now_and_today(plugin_host, settings)
        try:
            people = await proxies.people_for(account, plugin_host.ehr, now, today)
        except Unavailable:
            return _switch_page(request, current, None, status_code=503)
        return _switch_page(request, current, people)

    @post()
    async def choose(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[Choice, URL_ENCODED],
    ) -> Template | Redirect:
        """Act for the chosen person from now on; the grant is checked again on every later request."""
        current, account = await _account(request)
        now, today = _now_and_today(plugin_host, settings)
        try:
            people = await proxies.people_for(account, plugin_host.ehr, now, today)
        except Unavailable:
            return _switch_page(request, current, None, status_code=503)
        chosen = next((person for person in people if person.patient_id == data.patient), None)
        if chosen is None:
            raise NotFoundException()  # PROMISES.md 2: someone not shared with you is like no one
        # The same session (no new key): who signed in is unchanged, only whom the pages show.
        request.set_session({**request.session, "acting_for": chosen.patient_id, "access": chosen.access.value})
        await _audit(
            request, account, "acting_for.switched", chosen.patient_id, chosen.patient_id, access=chosen.access
        )
        return Redirect(_next_page(request), status_code=303)


def _switch_page(
    request: HTMXRequest, current: Viewer, people: list[proxies.Person] | None, status_code: int = 200
) -> Template:
    """The list of people; ``None`` when the EHR cannot say who they are right now."""
    return Template(
        "identity/proxies/switch.html",
        context={
            "people": people,
            "acting_for": current.acting_for,
            "what_you_are": WHAT_YOU_ARE,
            **_nav(request),
        },
        status_code=status_code,
    )


# --- The patient's proxies ------------------------------------------------------------------------


@dataclass
class InviteForm:
    email: str = ""
    access: str = ""


class ProxiesController(Controller):
    """``/account/proxies``: who can act for the patient, invitations waiting, and the ways to add someone."""

    path = "/account/proxies"
    guards = [patients_only]

    @get(name="account-proxies")
    async def overview(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], settings: NamedDependency[Settings]
    ) -> Template:
        _, account = await _account(request)
        patient_id = account["patient_id"]
        now = plugin_host.clock()
        zone = ZoneInfo(settings.hospital.time_zone)
        invitations = await proxies.invitations_of(patient_id, now) if patient_id else []
        return Template(
            "identity/proxies/proxies.html",
            context={
                "is_patient": patient_id is not None,
                "proxies": await proxies.proxies_of(patient_id) if patient_id else [],
                "invitations": [
                    {**row, "expires_on": row["expires_at"].astimezone(zone).date()} for row in invitations
                ],
                "access_labels": ACCESS_LABELS,
                "account_url": route_path(request.app, ACCOUNT_ROUTE),
                **_nav(request),
            },
        )

    @get("/add-minor", name="add-minor")
    async def minor_form(self, request: HTMXRequest) -> Template:
        return _minor_page(request, IdentityForm(), {})

    @post("/add-minor")
    async def add_minor(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[IdentityForm, URL_ENCODED],
    ) -> Template | Redirect | Response[Any]:
        """Add a child the EHR lists the account holder as guardian of; one neutral answer otherwise."""
        if _acting(request):
            return error_response(request, 403, ACTING)
        _, account = await _account(request)
        now, today = _now_and_today(plugin_host, settings)
        errors: dict[str, str] = {}
        if not data.given_name:
            errors["given_name"] = N_("Enter the child's first name.")
        if not data.family_name:
            errors["family_name"] = N_("Enter the child's last name.")
        birth_date, problem = birth_date_of(data, today)
        if problem:
            errors[f"birth_{date_parts(I18n.current())[0]}"] = problem
        if data.identifier_kind not in set(Identifier):
            errors["identifier_kind"] = N_("Choose which number you have.")
        if not data.identifier:
            errors["identifier"] = N_("Enter the number or code.")
        if errors or birth_date is None:
            return _minor_page(request, data, errors, status_code=422)
        verdict = await throttle.attempt(f"add-minor:account:{account['public_id']}", proxies.ADD_MINOR_LIMIT, now)
        if not verdict.allowed:
            return _minor_page(request, data, {}, wait=wait_minutes(verdict.retry_after), status_code=429)
        query = patient_query(
            data.given_name, data.family_name, birth_date, Identifier(data.identifier_kind), data.identifier
        )
        try:
            grant = await proxies.add_minor(account, plugin_host.ehr, query, now, today)
        except Unavailable:
            return _minor_page(request, data, {}, unavailable=True, status_code=503)
        if grant is None:
            return _minor_page(request, data, {}, no_match=True, status_code=422)
        await _audit(
            request, account, "proxy.granted", grant["patient_id"], f"proxy_grant:{grant['id']}", access=grant["access"]
        )
        return Redirect(request.app.route_reverse("switch"), status_code=303)

    @get("/invite", name="invite-proxy")
    async def invite_form(self, request: HTMXRequest) -> Template:
        await _patient_account(request)
        return _invite_page(request, InviteForm(), {})

    @post("/invite")
    async def invite(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[InviteForm, URL_ENCODED],
    ) -> Template | Redirect | Response[Any]:
        """Invite a caregiver or billing delegate by email, in the patient's language."""
        if _acting(request):
            return error_response(request, 403, ACTING)
        account = await _patient_account(request)
        now = plugin_host.clock()
        errors: dict[str, str] = {}
        email = accounts.normal_email(data.email)
        if email is None:
            errors["email"] = N_("Enter their email address, like name@example.com.")
        elif email == account["email"]:
            errors["email"] = N_("That is your own email address. Enter the address of the person you are inviting.")
        if data.access not in proxies.INVITED_ACCESS:
            errors["access"] = N_("Choose what they may see.")
        if errors or email is None:
            return _invite_page(request, data, errors, status_code=422)
        verdict = await throttle.attempt(f"invite-proxy:account:{account['public_id']}", proxies.INVITE_LIMIT, now)
        if not verdict.allowed:
            too_many = N_("You have sent many invitations today. Please try again tomorrow.")
            return _invite_page(request, data, {"email": too_many}, status_code=429)
        invitation, code = await proxies.invite(account, email, Access(data.access), now)
        message = _invitation_message(request, settings, account, invitation, code)
        try:
            await plugin_host.notifier.send(message, idempotency_key=f"proxy-invitation:{invitation['id']}")
        except (Refused, Unavailable) as error:
            await proxies.withdraw_unsent(invitation["id"])
            problem = (
                N_("We could not send an email to that address. Check it and try again.")
                if isinstance(error, Refused)
                else N_("We could not send the invitation just now. Please try again in a few minutes.")
            )
            return _invite_page(
                request, data, {"email": problem}, status_code=422 if isinstance(error, Refused) else 503
            )
        subject = f"proxy_invitation:{invitation['id']}"
        await _audit(request, account, "proxy.invited", account["patient_id"], subject, access=invitation["access"])
        return Redirect(request.app.route_reverse("account-proxies"), status_code=303)

    @post("/{grant_id:int}/revoke", name="revoke-proxy")
    async def revoke(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], grant_id: FromPath[int]
    ) -> Redirect | Response[Any]:
        """End someone's access now: their next request for the patient is refused."""
        if _acting(request):
            return error_response(request, 403, ACTING)
        account = await _patient_account(request)
        if not await proxies.revoke_grant(grant_id, account["patient_id"], plugin_host.clock()):
            raise NotFoundException()
        await _audit(request, account, "proxy.revoked", account["patient_id"], f"proxy_grant:{grant_id}")
        return Redirect(request.app.route_reverse("account-proxies"), status_code=303)

    @post("/invitations/{invitation_id:int}/revoke", name="revoke-invitation")
    async def cancel_invitation(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], invitation_id: FromPath[int]
    ) -> Redirect | Response[Any]:
        """Cancel an invitation nobody has accepted yet: its code stops working."""
        if _acting(request):
            return error_response(request, 403, ACTING)
        account = await _patient_account(request)
        if not await proxies.revoke_invitation(invitation_id, account["patient_id"], plugin_host.clock()):
            raise NotFoundException()
        subject = f"proxy_invitation:{invitation_id}"
        await _audit(request, account, "proxy.invitation_cancelled", account["patient_id"], subject)
        return Redirect(request.app.route_reverse("account-proxies"), status_code=303)


async def _audit(
    request: HTMXRequest, account: dict[str, Any], action: str, acting_as: str, subject: str, **detail: str
) -> None:
    """One audit row for a change to who may see a patient's account (PROMISES.md 8): ids only."""
    auditor: Auditor = request.app.state["auditor"]
    await auditor.record(
        Entry(
            actor=f"account:{account['public_id']}",
            actor_role=Realm.PATIENT,
            action=action,
            outcome="succeeded",
            acting_as=acting_as,
            subject=subject,
            address=client_address(request),
            detail=detail,
        )
    )


def _acting(request: HTMXRequest) -> bool:
    """A representative is acting as the patient: who may see the account cannot change (PROMISES.md 7)."""
    return bool(request.session.get(IMPERSONATOR))


async def _patient_account(request: HTMXRequest) -> dict[str, Any]:
    """The signed-in account, when it is a patient's own (only a patient shares their account)."""
    _, account = await _account(request)
    if account["patient_id"] is None:
        raise NotFoundException()
    return account


def _minor_page(
    request: HTMXRequest,
    form: IdentityForm,
    errors: dict[str, str],
    *,
    no_match: bool = False,
    wait: int = 0,
    unavailable: bool = False,
    status_code: int = 200,
) -> Template:
    return Template(
        "identity/proxies/add_minor.html",
        context={
            "form": form,
            "errors": translated(request, errors),
            "date_parts": date_parts(I18n.current()),
            "identifiers": list(Identifier),
            "no_match": no_match,
            "wait": wait,
            "unavailable": unavailable,
            **_nav(request),
        },
        status_code=status_code,
    )


def _invite_page(request: HTMXRequest, form: InviteForm, errors: dict[str, str], status_code: int = 200) -> Template:
    return Template(
        "identity/proxies/invite.html",
        context={
            "form": form,
            "errors": translated(request, errors),
            "descriptions": ACCESS_DESCRIPTIONS,
            "labels": ACCESS_LABELS,
            **_nav(request),
        },
        status_code=status_code,
    )


def _invitation_message(
    request: HTMXRequest, settings: Settings, inviter: dict[str, Any], invitation: dict[str, Any], code: str
) -> Message:
    """The invitation email, in the inviting patient's language."""
    i18n: I18n = request.app.state["i18n"]
    language = inviter["language"] if inviter["language"] in i18n.languages else i18n.default
    gettext = (i18n.catalogs.get(language) or NullTranslations()).gettext
    page = settings.public_url.rstrip("/") + request.app.route_reverse("accept-invitation")
    expires_on = invitation["expires_at"].astimezone(ZoneInfo(settings.hospital.time_zone)).date()
    values = {
        "name": f"{inviter['given_name']} {inviter['family_name']}",
        "hospital": settings.hospital.name,
        "link": f"{page}#{code}",
        "page": page,
        "code": code,
        "date": format_date(expires_on, format="long", locale=language),
        "what": gettext(ACCESS_DESCRIPTIONS[Access(invitation["access"])]),
    }
    paragraphs = [
        N_("%(name)s invited you to help with their patient account at %(hospital)s."),
        N_("What you will see: %(what)s"),
        N_("To accept, open this link: %(link)s"),
        N_("Or go to %(page)s and enter this invitation code: %(code)s"),
        N_("The invitation works once and ends on %(date)s. If you did not expect it, you can ignore this email."),
    ]
    return Message(
        channel=Channel.EMAIL,
        to=invitation["email"],
        subject=gettext(N_("%(name)s invited you to their patient account")) % values,
        text="\n\n".join(gettext(paragraph) % values for paragraph in paragraphs),
        language=language,
    )


# --- Accepting an invitation ----------------------------------------------------------------------


@dataclass
class CodeForm:
    code: str = ""


@dataclass
class JoinForm:
    code: str = ""
    given_name: str = ""
    family_name: str = ""
    password: str = ""


NO_INVITATION = N_(
    "That code does not open an invitation. It may be mistyped, used already or expired: "
    "ask the person who invited you to send a new one."
)
TOO_MANY_CODES = N_("Too many tries. Please wait a few minutes, then try again.")


class InvitationController(Controller):
    """``/proxies/accept``: the invitee enters the code, then accepts signed in or with a new account."""

    path = "/proxies/accept"

    @get(name="accept-invitation", opt={"public": True})
    async def code_form(self, request: HTMXRequest) -> Template:
        return _code_page(request, CodeForm(), {})

    @post(opt={"public": True})
    async def check_code(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], data: Annotated[CodeForm, URL_ENCODED]
    ) -> Template:
        """Show what the invitation offers and how to accept it (nothing changes until then)."""
        invitation, refusal = await _invitation(request, plugin_host, data.code)
        if invitation is None:
            return refusal
        return _choice_page(request, invitation, data.code, JoinForm(code=data.code), {})

    @post("/new-account", name="accept-invitation-new-account", opt={"public": True})
    async def join(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], data: Annotated[JoinForm, URL_ENCODED]
    ) -> Template | Redirect:
        """Create a Carefront account for the invitee (email verified by the code) and accept for it."""
        invitation, refusal = await _invitation(request, plugin_host, data.code)
        if invitation is None:
            return refusal
        now = plugin_host.clock()
        errors: dict[str, str] = {}
        if not data.given_name.strip():
            errors["given_name"] = N_("Enter your first name.")
        if not data.family_name.strip():
            errors["family_name"] = N_("Enter your last name.")
        problem = password_problem(data.password, data.given_name, data.family_name, invitation["email"])
        if problem:
            errors["password"] = problem
        if not errors and await accounts.find_by_email(Realm.PATIENT, invitation["email"]) is not None:
            errors["email"] = N_(
                "An account already uses this email address. Sign in with it, then open the link in the email again."
            )
        if errors:
            form = JoinForm(code=data.code, given_name=data.given_name, family_name=data.family_name)
            return _choice_page(request, invitation, data.code, form, errors, status_code=422)
        account = await proxies.join(
            invitation,
            now,
            given_name=data.given_name.strip(),
            family_name=data.family_name.strip(),
            password_hash=hash_password(data.password),
            language=I18n.current(),
        )
        if account is None:
            return _code_page(request, CodeForm(), {"code": NO_INVITATION}, status_code=422)
        await _audit(
            request,
            account,
            "proxy.granted",
            invitation["patient_id"],
            f"proxy_invitation:{invitation['id']}",
            access=invitation["access"],
        )
        await signing_in.complete(request, account, "invitation", now)
        request.set_session({**request.session, "acting_for": invitation["patient_id"], "access": invitation["access"]})
        return Redirect(_next_page(request), status_code=303)

    @post("/signed-in", name="accept-invitation-signed-in", guards=[patients_only, not_impersonating])
    async def accept(
        self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost], data: Annotated[CodeForm, URL_ENCODED]
    ) -> Template | Redirect | Response[Any]:
        """Accept for the account that is signed in; then choose whom to act for."""
        if _acting(request):
            return error_response(request, 403, ACTING)
        invitation, refusal = await _invitation(request, plugin_host, data.code)
        if invitation is None:
            return refusal
        _, account = await _account(request)
        if await proxies.accept(invitation, account, plugin_host.clock()) is None:
            return _code_page(request, CodeForm(), {"code": NO_INVITATION}, status_code=422)
        subject = f"proxy_invitation:{invitation['id']}"
        await _audit(request, account, "proxy.granted", invitation["patient_id"], subject, access=invitation["access"])
        return Redirect(request.app.route_reverse("switch"), status_code=303)


async def _invitation(
    request: HTMXRequest, plugin_host: PluginHost, code: str
) -> tuple[dict[str, Any], None] | tuple[None, Template]:
    """The invitation the code opens, or the page that says it opens none (tries limited per address)."""
    now = plugin_host.clock()
    verdict = await throttle.attempt(f"invitation-code:address:{client_address(request)}", proxies.CODE_LIMIT, now)
    if not verdict.allowed:
        return None, _code_page(request, CodeForm(code=code), {"code": TOO_MANY_CODES}, status_code=429)
    invitation = await proxies.pending_invitation(code, now) if code.strip() else None
    if invitation is None:
        return None, _code_page(request, CodeForm(code=code), {"code": NO_INVITATION}, status_code=422)
    return invitation, None


def _code_page(request: HTMXRequest, form: CodeForm, errors: dict[str, str], status_code: int = 200) -> Template:
    return Template(
        "identity/proxies/accept.html",
        context={"form": form, "errors": translated(request, errors)},
        status_code=status_code,
    )


def _choice_page(
    request: HTMXRequest,
    invitation: dict[str, Any],
    code: str,
    form: JoinForm,
    errors: dict[str, str],
    status_code: int = 200,
) -> Template:
    current = viewer(request)
    return Template(
        "identity/proxies/accept_choice.html",
        context={
            "invitation": invitation,
            "code": code,
            "form": form,
            "errors": translated(request, errors),
            "signed_in": current is not None and current.realm is Realm.PATIENT,
            "access_label": ACCESS_LABELS[Access(invitation["access"])],
            "access_description": ACCESS_DESCRIPTIONS[Access(invitation["access"])],
            "sign_in_url": route_path(request.app, SIGN_IN_ROUTE),
        },
        status_code=status_code,
    )


ROUTES = [SwitchController, ProxiesController, InvitationController]
