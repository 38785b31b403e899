"""Sign-up pages: who you are (matched in the EHR), how to reach you (verified by code), a password.

The sign-up in progress lives in the server-side session as identifiers only: the matched patient's
EHR id, the step, and the addresses being verified. Names and the birth date stay in the form.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Annotated, Any

from babel import Locale
from carefront_sdk.errors import Refused, Unavailable
from litestar import Controller, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.i18n import N_, I18n
from portal.identity import codes, sessions, throttle
from portal.identity.passwords import password_problem
from portal.identity.patient_pages import code_sending, enrolment
from portal.identity.patient_pages.contacts import email_contact, phone_contact, read_email, read_phone
from portal.identity.patient_pages.enrolment import Identifier
from portal.identity.patient_pages.web import (
    EMAIL_IN_USE,
    ENTER_CODE,
    ENTER_EMAIL,
    ENTER_PHONE,
    HOME,
    WRONG_CODE,
    client_address,
    finish_sign_in,
    notices,
    sending_problems,
    translated,
    wait_minutes,
)
from portal.identity.sessions import Realm
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.web.errors import route_path

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)
# Ten tries of name, birth date and number from one address in fifteen minutes: enough for typos,
# too few to search the EHR for someone's record.
MATCH_LIMIT = throttle.Limit(attempts=10, window=timedelta(minutes=15))

PATIENT = "sign_up_patient"
STEP = "sign_up_step"
EMAIL = "sign_up_email"
PHONE = "sign_up_phone"
EMAIL_VERIFIED = "sign_up_email_verified"
PHONE_VERIFIED = "sign_up_phone_verified"
CONTACT, VERIFY, PASSWORD = "contact", "verify", "password"
STEP_PATHS = {CONTACT: "/sign-up/contact", VERIFY: "/sign-up/verify", PASSWORD: "/sign-up/password"}

NAME_LENGTH = 100
IDENTIFIER_LENGTH = 40


@dataclass
class IdentityForm:
    given_name: str = ""
    family_name: str = ""
    birth_month: str = ""
    birth_day: str = ""
    birth_year: str = ""
    identifier_kind: str = ""
    identifier: str = ""

    def __post_init__(self) -> None:
        for field in fields(self):
            setattr(self, field.name, getattr(self, field.name).strip())


@dataclass
class ContactForm:
    email: str = ""
    phone: str = ""


@dataclass
class CodesForm:
    email_code: str = ""
    phone_code: str = ""


@dataclass
class PasswordForm:
    password: str = ""


def date_parts(language: str) -> list[str]:
    """The order people write a date in ``language``: month, day, year in English; day first in Spanish."""
    pattern = Locale.parse(language).date_formats["short"].pattern
    positions = {"day": pattern.find("d"), "month": pattern.find("M"), "year": pattern.find("y")}
    return sorted(positions, key=lambda part: positions[part])


def _birth_date(form: IdentityForm, today: date) -> tuple[date | None, str | None]:
    parts = (form.birth_year, form.birth_month, form.birth_day)
    if not any(parts):
        return None, N_("Enter your date of birth.")
    digits = all(part.isdigit() and part.isascii() for part in parts)
    if not digits or len(form.birth_year) != 4 or len(form.birth_month) > 2 or len(form.birth_day) > 2:
        return None, N_("Enter your date of birth as numbers, with a four-digit year.")
    try:
        born = date(int(form.birth_year), int(form.birth_month), int(form.birth_day))
    except ValueError:
        return None, N_("Enter a real date of birth.")
    if born > today or born.year < 1900:
        return None, N_("Enter a real date of birth.")
    return born, None


def _identity_errors(form: IdentityForm, today: date, first_date_part: str) -> tuple[dict[str, str], date | None]:
    errors: dict[str, str] = {}
    if not form.given_name:
        errors["given_name"] = N_("Enter your first name.")
    elif len(form.given_name) > NAME_LENGTH:
        errors["given_name"] = N_("Use at most 100 characters.")
    if not form.family_name:
        errors["family_name"] = N_("Enter your last name.")
    elif len(form.family_name) > NAME_LENGTH:
        errors["family_name"] = N_("Use at most 100 characters.")
    born, problem = _birth_date(form, today)
    if problem:
        errors[f"birth_{first_date_part}"] = problem
    if form.identifier_kind not in set(Identifier):
        errors["identifier_kind"] = N_("Choose which number you have.")
    if not form.identifier:
        errors["identifier"] = N_("Enter the number or code.")
    elif len(form.identifier) > IDENTIFIER_LENGTH:
        errors["identifier"] = N_("That is longer than any number or code we use. Check it and try again.")
    return errors, born


def _progress(request: HTMXRequest, *steps: str) -> dict[str, Any] | None:
    """The sign-up in this session when it is at one of ``steps``; None otherwise."""
    session = request.session
    if session.get(PATIENT) and session.get(STEP) in steps:
        return session
    return None


def _back_on_track(request: HTMXRequest) -> Redirect:
    """To the step the sign-up in this session is at, or to its start."""
    step = request.session.get(STEP) if request.session.get(PATIENT) else None
    return Redirect(STEP_PATHS.get(step, "/sign-up"), status_code=303)


class SignUpController(Controller):
    path = "/sign-up"
    opt = {"public": True}

    # --- step 1: who you are -------------------------------------------------------------------

    @get(name="sign-up")
    async def identity_page(self, request: HTMXRequest) -> Template | Redirect:
        """Name, date of birth and one number from a letter or bill."""
        current = sessions.viewer(request)
        if current is not None and current.realm is Realm.PATIENT:
            return Redirect(HOME, status_code=303)
        return self._identity_page(IdentityForm(), {})

    @post()
    async def identify(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[IdentityForm, FORM],
    ) -> Template | Redirect:
        """Find the one patient these details name; every other outcome gets the same neutral answer."""
        now = plugin_host.clock()
        order = date_parts(I18n.current())
        errors, born = _identity_errors(data, now.date(), order[0])
        if errors or born is None:
            return self._identity_page(data, translated(request, errors), status_code=422)
        verdict = await throttle.attempt(f"sign-up:address:{client_address(request)}", MATCH_LIMIT, now)
        if not verdict.allowed:
            return self._identity_page(data, {}, status_code=429, wait=wait_minutes(verdict.retry_after))
        query = enrolment.patient_query(
            data.given_name, data.family_name, born, Identifier(data.identifier_kind), data.identifier
        )
        try:
            found = await enrolment.match(plugin_host.ehr, query)
        except Unavailable:
            return self._identity_page(data, {}, status_code=503, unavailable=True)
        if found.patient is None:
            background = None
            if found.existing_account is not None:
                # After the answer is sent, so that it takes as long as any other "no" (PROMISES.md 5).
                background = BackgroundTask(
                    notices(request, settings, plugin_host).warn_of_sign_up_attempt,
                    found.existing_account,
                    route_path(request.app, "sign-in") or "/",
                    route_path(request.app, "forgotten-password") or "/",
                    now,
                )
            return self._identity_page(data, {}, status_code=422, no_match=True, background=background)
        # A new session key: a key planted in this browser before the match cannot continue it.
        sessions.begin(request, now, **{PATIENT: found.patient.id, STEP: CONTACT})
        return Redirect(STEP_PATHS[CONTACT], status_code=303)

    def _identity_page(
        self,
        form: IdentityForm,
        errors: dict[str, str],
        *,
        status_code: int = 200,
        background: BackgroundTask | None = None,
        **notice: Any,
    ) -> Template:
        return Template(
            "identity/sign_up/identity.html",
            context={
                "form": form,
                "errors": errors,
                "date_parts": date_parts(I18n.current()),
                "identifiers": list(Identifier),
                **notice,
            },
            status_code=status_code,
            background=background,
        )

    # --- step 2: how to reach you --------------------------------------------------------------

    @get("/contact", name="sign-up-contact")
    async def contact_page(self, request: HTMXRequest, plugin_host: NamedDependency[PluginHost]) -> Template | Redirect:
        """Email (prefilled from the EHR when it has one) and an optional mobile number."""
        progress = _progress(request, CONTACT, VERIFY)
        if progress is None:
            return _back_on_track(request)
        email = progress.get(EMAIL)
        if email is None:
            try:
                email = (await plugin_host.ehr.read_patient(progress[PATIENT])).email
            except (Refused, Unavailable):
                email = None  # the person types it
        return self._contact_page(ContactForm(email=email or "", phone=progress.get(PHONE) or ""), {})

    @post("/contact")
    async def choose_contact(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[ContactForm, FORM],
    ) -> Template | Redirect:
        """Send a code to the email address (and the mobile number, when given) to prove they are yours."""
        progress = _progress(request, CONTACT, VERIFY)
        if progress is None:
            return _back_on_track(request)
        now = plugin_host.clock()
        errors: dict[str, str] = {}
        email = read_email(data.email)
        phone = read_phone(data.phone) if data.phone.strip() else None
        if email is None:
            errors["email"] = ENTER_EMAIL
        elif await enrolment.email_taken(email.address):
            errors["email"] = EMAIL_IN_USE
        if data.phone.strip() and phone is None:
            errors["phone"] = ENTER_PHONE
        if errors or email is None:
            return self._contact_page(data, translated(request, errors), status_code=422)
        sending = await code_sending.send_verification_codes(
            notices(request, settings, plugin_host),
            [email] + ([phone] if phone else []),
            address=client_address(request),
            secret_key=settings.secret_key,
            language=I18n.current(),
            now=now,
        )
        if not sending.sent:
            errors, notice, status = sending_problems(request, sending)
            return self._contact_page(data, errors, status_code=status, **notice)
        progress.update(
            {
                STEP: VERIFY,
                EMAIL: email.address,
                PHONE: phone.address if phone else None,
                EMAIL_VERIFIED: False,
                PHONE_VERIFIED: False,
            }
        )
        return Redirect(STEP_PATHS[VERIFY], status_code=303)

    def _contact_page(
        self, form: ContactForm, errors: dict[str, str], *, status_code: int = 200, **notice: Any
    ) -> Template:
        return Template(
            "identity/sign_up/contact.html",
            context={"form": form, "errors": errors, **notice},
            status_code=status_code,
        )

    # --- step 2, continued: the codes ----------------------------------------------------------

    @get("/verify", name="sign-up-verify")
    async def codes_page(self, request: HTMXRequest) -> Template | Redirect:
        """Where the codes are typed; ``?sent=1`` after new ones were sent."""
        progress = _progress(request, VERIFY)
        if progress is None:
            return _back_on_track(request)
        return self._codes_page(progress, CodesForm(), {}, resent=request.query_params.get("sent") == "1")

    @post("/verify")
    async def check_codes(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[CodesForm, FORM],
    ) -> Template | Redirect:
        """The email code is needed; the mobile code is optional (an unverified number is not kept)."""
        progress = _progress(request, VERIFY)
        if progress is None:
            return _back_on_track(request)
        now = plugin_host.clock()
        errors: dict[str, str] = {}
        if not progress[EMAIL_VERIFIED]:
            if not data.email_code.strip():
                errors["email_code"] = ENTER_CODE
            elif await codes.redeem(
                codes.Purpose.VERIFY_EMAIL, progress[EMAIL], data.email_code, secret_key=settings.secret_key, now=now
            ):
                progress[EMAIL_VERIFIED] = True
            else:
                errors["email_code"] = WRONG_CODE
        if progress[PHONE] and not progress[PHONE_VERIFIED] and data.phone_code.strip():
            if await codes.redeem(
                codes.Purpose.VERIFY_PHONE, progress[PHONE], data.phone_code, secret_key=settings.secret_key, now=now
            ):
                progress[PHONE_VERIFIED] = True
            else:
                errors["phone_code"] = WRONG_CODE
        if errors:
            return self._codes_page(progress, data, translated(request, errors), status_code=422)
        if not progress[PHONE_VERIFIED]:
            progress[PHONE] = None
        progress[STEP] = PASSWORD
        return Redirect(STEP_PATHS[PASSWORD], status_code=303)

    @post("/verify/resend", name="sign-up-resend")
    async def resend_codes(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
    ) -> Template | Redirect:
        """New codes for the addresses not verified yet (the earlier codes stop working)."""
        progress = _progress(request, VERIFY)
        if progress is None:
            return _back_on_track(request)
        now = plugin_host.clock()
        destinations = []
        if not progress[EMAIL_VERIFIED]:
            destinations.append(email_contact(progress[EMAIL]))
        if progress[PHONE] and not progress[PHONE_VERIFIED]:
            destinations.append(phone_contact(progress[PHONE]))
        sending = await code_sending.send_verification_codes(
            notices(request, settings, plugin_host),
            destinations,
            address=client_address(request),
            secret_key=settings.secret_key,
            language=I18n.current(),
            now=now,
        )
        if not sending.sent:
            _, notice, status = sending_problems(request, sending)
            return self._codes_page(progress, CodesForm(), {}, status_code=status, **notice)
        return Redirect(f"{STEP_PATHS[VERIFY]}?sent=1", status_code=303)

    def _codes_page(
        self,
        progress: dict[str, Any],
        form: CodesForm,
        errors: dict[str, str],
        *,
        status_code: int = 200,
        **notice: Any,
    ) -> Template:
        return Template(
            "identity/sign_up/verify.html",
            context={
                "form": form,
                "errors": errors,
                "email": progress[EMAIL],
                "email_verified": progress[EMAIL_VERIFIED],
                "phone": progress[PHONE],
                "phone_verified": progress[PHONE_VERIFIED],
                **notice,
            },
            status_code=status_code,
        )

    # --- step 3: a password --------------------------------------------------------------------

    @get("/password", name="sign-up-password")
    async def password_page(self, request: HTMXRequest) -> Template | Redirect:
        progress = _progress(request, PASSWORD)
        if progress is None:
            return _back_on_track(request)
        return self._password_page(progress, {})

    @post("/password")
    async def open_account(
        self,
        request: HTMXRequest,
        plugin_host: NamedDependency[PluginHost],
        data: Annotated[PasswordForm, FORM],
    ) -> Template | Redirect:
        """Create the account with the EHR's names and the verified addresses, and sign in."""
        progress = _progress(request, PASSWORD)
        if progress is None:
            return _back_on_track(request)
        now = plugin_host.clock()
        try:
            patient = await plugin_host.ehr.read_patient(progress[PATIENT])
        except (Refused, Unavailable):
            return self._password_page(progress, {}, status_code=503, unavailable=True)
        problem = password_problem(data.password, patient.given_name, patient.family_name, progress[EMAIL])
        if problem:
            return self._password_page(progress, translated(request, {"password": problem}), status_code=422)
        account = await enrolment.open_account(
            patient,
            email=progress[EMAIL],
            phone=progress[PHONE],
            phone_verified=bool(progress[PHONE_VERIFIED]),
            password=data.password,
            language=I18n.current(),
            now=now,
        )
        if account is None:
            # Someone opened an account for this patient or with this email meanwhile: the neutral
            # answer, and back to choosing an email address.
            progress.update({STEP: CONTACT, EMAIL_VERIFIED: False, PHONE_VERIFIED: False})
            return self._password_page(progress, {}, status_code=422, taken=True)
        return await finish_sign_in(request, account, "password", now)

    def _password_page(
        self, progress: dict[str, Any], errors: dict[str, str], *, status_code: int = 200, **notice: Any
    ) -> Template:
        return Template(
            "identity/sign_up/password.html",
            context={"email": progress[EMAIL], "errors": errors, **notice},
            status_code=status_code,
        )
