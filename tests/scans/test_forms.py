"""PROMISES.md 20, form by form: hypothesis fuzzes every form a person meets, and no answer loses input.

Each role signs in as a person would meet the portal: a visitor with no session, a patient, a
caregiver acting for another patient, a guest who opened a bill with its statement code, a
representative acting as a patient, and a supervisor on the console. From each role's home pages
the test follows the app's own links breadth first (GET only, same origin, no sign-out, no
downloads; at most ``PAGES`` pages, two of each kind) and collects every ``<form method="post">``.
The test first proves the crawl reaches every POST/PUT/PATCH/DELETE
route of the app, or that the route is in ``NOT_A_FORM`` with its reason.

Every form is then posted with the page's CSRF token and a fresh copy of the role's session:
each field omitted, kept valid or replaced with hostile text (any Unicode but lone surrogates,
control characters and NUL, strings up to past the body limit, odd numbers, markup), sometimes with
unknown or repeated fields. No answer may be a 5xx or show a Python error; a 400/422 page re-renders
the form with what the person typed (trimmed, control characters dropped) and a message beside the
field or in the form's alert region. A submission a browser cannot make (a hidden field changed, a
field dropped or repeated) may get a plain 4xx page instead, with its message.

State-changing forms (pay, book, cancel, plans, coverage, questions) run on sandbox patients that no
other test names (``FUZZ_PATIENTS``), each claimed by a portal account made here.

Examples per form: ``CAREFRONT_FUZZ_EXAMPLES`` when set (``make fuzz`` sets 500), else 10: about 25 s
a backend on the 2-core machine when it is quiet, a minute when it is busy. CI (``CI=true``)
derandomizes, so a failure there reproduces.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import hypothesis
import pytest
from carefront_sdk.models import AppointmentStatus, SlotQuery
from hypothesis import HealthCheck, Phase
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.serialization import decode_json, encode_json

from portal.app import SESSION_COOKIE
from portal.identity import accounts, proxies
from portal.identity.passwords import hash_password
from portal.identity.sessions import Access
from portal.plans.tables import PaymentPlan
from tests.scans.forms_support import ORIGIN, Form, Submission, crawl, encoded, form_key, problems, submissions

IN_CI = os.environ.get("CI") == "true"
COOKIE_DOMAIN = "testserver.local"  # where httpx keeps the cookies testserver sets
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
PAGES = 80
PASSWORD = "a passphrase the fuzzer knows"
STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
FUZZ_PATIENTS = (23, 24, 25, 26, 27, 28, 29, 33, 34, 35, 36, 37, 38, 39, 40, 47, 48, 49, 51, 52, 53, 54, 55, 56)
"""Sandbox patients no other test names (e2e runs on its own database; the canary is pt-57)."""

NOT_A_FORM = {
    ("POST", "/-/webhooks/gateway"): "the gateway's webhook: signed by the gateway (PROMISES.md 11), no browser",
    ("POST", "/-/sandbox/oidc/token"): "the sandbox identity provider's token endpoint: server to server",
    ("POST", "/-/sandbox/oidc/authorize"): "the sandbox identity provider's own page, a stand-in for the "
    "hospital's; reached by a redirect from /staff/sign-in and /sign-in/oidc, not a link",
    ("POST", "/-/sandbox/checkout/{reference:str}"): "the sandbox gateway's hosted card page, a stand-in for the "
    "vendor's; reached by the redirect after /pay (tests/e2e/test_payments.py)",
    ("POST", "/-/sandbox/checkout/{reference:str}/authenticate"): "the sandbox gateway's 3-D Secure step, as above",
    ("POST", "/account/security/passkeys/options"): "JSON for the browser's WebAuthn call (tests/integration/"
    "test_passkeys.py)",
    ("POST", "/account/security/passkeys"): "JSON from static/js/passkeys.js, whose form is hidden until the script "
    "finds WebAuthn (test_passkeys.py)",
    ("POST", "/sign-in/passkey/options"): "JSON for the browser's WebAuthn call (test_passkeys.py)",
    ("POST", "/sign-in/passkey/verify"): "JSON from static/js/passkeys.js, as above (test_passkeys.py)",
    ("POST", "/sign-in/second-factor"): "a step of sign-in met only with a password already checked "
    "(tests/integration/test_two_step.py)",
    ("POST", "/sign-in/code/enter"): "a step of sign-in met only after a code was sent (test_identity_sign_in.py)",
    ("POST", "/sign-in/forgot/code"): "a step met only after a reset code was sent (test_identity_sign_in.py)",
    ("POST", "/sign-in/forgot/password"): "a step met only with a reset code checked (test_identity_sign_in.py)",
    ("POST", "/sign-up/contact"): "a step of sign-up met only once the EHR matched the person "
    "(test_identity_sign_up.py)",
    ("POST", "/sign-up/verify"): "a step of sign-up met only after codes were sent (test_identity_sign_up.py)",
    ("POST", "/sign-up/verify/resend"): "as above",
    ("POST", "/sign-up/password"): "the last step of sign-up, met only with the contacts verified "
    "(test_identity_sign_up.py)",
    ("POST", "/sign-in/oidc"): "shown only where the hospital configures a patient identity provider "
    "([identity.patient_oidc]; test_oidc_provider_flows.py)",
    ("POST", "/staff/sign-in"): "shown only where [identity.staff_oidc] is configured; it redirects to the provider "
    "(test_oidc_demo_and_local_admin.py)",
    ("POST", "/sign-in/oidc/link"): "met only back from the hospital's identity provider (test_oidc_provider_flows.py)",
    ("POST", "/staff/sign-in/code"): "a step of staff sign-in met only back from the workforce provider "
    "(test_oidc_demo_and_local_admin.py)",
    ("POST", "/account/security/two-step"): "met only after /account/security/two-step/start made a secret "
    "(test_two_step.py)",
    ("POST", "/account/security/two-step/recovery-codes"): "met only with two-step on (test_two_step.py)",
    ("POST", "/account/security/two-step/off"): "met only with two-step on (test_two_step.py)",
    ("POST", "/account/security/passkeys/{passkey_id:int}/name"): "met only with a passkey, which needs a "
    "WebAuthn authenticator (test_passkeys.py)",
    ("POST", "/account/security/passkeys/{passkey_id:int}/remove"): "as above",
    ("POST", "/account/email/verify"): "met only after a new address was given a code (test_identity_account.py)",
    ("POST", "/account/phone/verify"): "met only after a new number was given a code (test_identity_account.py)",
    ("POST", "/proxies/accept"): "met only through an invitation's emailed link and code (test_proxies.py)",
    ("POST", "/proxies/accept/new-account"): "as above",
    ("POST", "/proxies/accept/signed-in"): "as above",
}


def examples() -> int:
    return int(os.environ.get("CAREFRONT_FUZZ_EXAMPLES") or 10)


# --- Who meets the forms -----------------------------------------------------------------------


@dataclass
class Role:
    """A person's browser: a client of its own, and the session to copy before each post."""

    name: str
    app: Litestar
    starts: list[str]
    session: bytes | None = None
    recent: bool = True
    """Whether the session's sign-in is recent enough to change contact details (PROMISES.md 6)."""
    forms: list[Form] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.transport = httpx.ASGITransport(app=self.app, client=(_address(), 40000))
        self.client = httpx.AsyncClient(transport=self.transport, base_url=ORIGIN)

    async def fresh_session(self, app: Litestar) -> None:
        """A new server-side session with the role's data: a form that signs out spoils no later post."""
        self.transport.client = (_address(), 40000)  # a new address each time: per-address limits stay out of the way
        if self.session is None:
            self.client.cookies.delete(SESSION_COOKIE)
            return
        data = decode_json(self.session)
        signed_in = app.state["plugin_host"].clock() - (timedelta() if self.recent else timedelta(hours=1))
        data["signed_in_at"] = signed_in.isoformat()
        key = secrets.token_hex(32)
        await app.stores.get("sessions").set(key, encode_json(data), expires_in=15 * 60)
        self.client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)

    async def keep_session(self, app: Litestar) -> None:
        """Remember the session the browser holds now (the one its sign-in left)."""
        key = self.client.cookies.get(SESSION_COOKIE, domain=COOKIE_DOMAIN)
        self.session = await app.stores.get("sessions").get(key) if key else None
        assert self.session, f"{self.name}: no session after signing in"


def _address() -> str:
    return ".".join(["10", *(str(secrets.randbelow(250) + 1) for _ in range(3))])


async def _account(
    now: datetime, *, patient_id: str | None = None, role: str | None = None, **values: Any
) -> dict[str, Any]:
    tag = secrets.token_hex(5)
    account = await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="staff" if role else "patient",
        email=f"forms-{tag}@example.org",
        email_verified_at=now,
        given_name="Forms",
        family_name=f"Fuzz{tag}",
        patient_id=patient_id,
        role=role,
        **values,
    )
    assert account is not None
    return account


async def _sign_in(app: Litestar, browser: Role, account: dict[str, Any], **values: str) -> None:
    now = app.state["plugin_host"].clock()
    data = {"account_id": str(account["public_id"]), "signed_in_at": now.isoformat(), **values}
    key = secrets.token_hex(32)
    await app.stores.get("sessions").set(key, encode_json(data), expires_in=15 * 60)
    browser.client.cookies.set(SESSION_COOKIE, key, domain=COOKIE_DOMAIN)
    await browser.keep_session(app)


async def free_patients(app: Litestar, count: int) -> list[str]:
    """``count`` sandbox patients of ``FUZZ_PATIENTS`` who owe something and have no account or plan yet.

    The first is the patient whose pages have the most forms: two statements or more to owe on (a
    plan of some of them, and one to add later) and an upcoming appointment to cancel or move, which
    is booked for them if they have none. Other tests may have claimed any of the list before this
    one runs, so each is checked, not assumed.
    """
    ehr = app.state["plugin_host"].ehr
    owing: dict[str, list[int]] = {}
    for number in FUZZ_PATIENTS:
        patient_id = f"pt-{number}"
        if await accounts.find_by_patient(patient_id) or await PaymentPlan.exists().where(
            PaymentPlan.patient_id == patient_id
        ):
            continue
        if owed := [s.balance.amount for s in await ehr.list_statements(patient_id) if s.balance.amount > 0]:
            owing[patient_id] = owed
    fullest = next((patient_id for patient_id, owed in owing.items() if len(owed) > 1), None)
    if fullest is None or len(owing) < count:
        raise AssertionError(f"fewer than {count} of the fuzzing patients are left (a second run on one database?)")
    await _with_an_upcoming_appointment(app, fullest)
    others = sorted((p for p in owing if p != fullest), key=lambda patient_id: -sum(owing[patient_id]))
    return [fullest, *others[: count - 1]]


async def _with_an_upcoming_appointment(app: Litestar, patient_id: str) -> None:
    """Book the patient's next open slot in the EHR, as the hospital's scheduler would, unless they
    already have an appointment to come."""
    host = app.state["plugin_host"]
    now = host.clock()
    if any(
        appointment.status is AppointmentStatus.BOOKED and appointment.starts_at > now
        for appointment in await host.ehr.list_appointments(patient_id)
    ):
        return
    catalog = await host.ehr.read_scheduling_catalog()
    for days in range(1, 30):
        for visit_type in catalog.visit_types:
            slots = await host.ehr.find_slots(SlotQuery(visit_type.id, now.date() + timedelta(days=days)))
            if slots:
                await host.ehr.book(patient_id, slots[0].id, f"forms-{secrets.token_hex(8)}")
                return
    raise AssertionError("no open slot in the sandbox's next 30 days")


async def _post(role: Role, path: str, page: str, fields: dict[str, Any]) -> httpx.Response:
    token = CSRF_INPUT.search((await role.client.get(page)).text)
    assert token, f"{role.name}: no form on {page}"
    return await role.client.post(path, data={"_csrf_token": token.group(1), **fields})


async def _seed(patient: Role, holder: dict[str, Any], now: datetime) -> str:
    """A plan, a question and proxies, as the patient makes them, so the pages that show them (the
    patient's and the console's) have their forms. The plan's path."""
    await proxies.invite(holder, f"forms-{secrets.token_hex(5)}@example.org", Access.BILLING, now)
    invitation, _ = await proxies.invite(holder, (helper := await _account(now))["email"], Access.CAREGIVER, now)
    assert await proxies.accept(invitation, helper, now)
    builder = (await patient.client.get("/plans/new")).text
    statements = re.findall(r'name="statements" value="([^"]+)"', builder)
    plan_token = re.search(r'name="token" value="([^"]+)"', builder)
    assert len(statements) > 1, "the plan builder offers the patient's statements"
    assert plan_token, "the plan builder carries its creation token"
    for left_out in statements:  # one statement stays out of the plan, so the plan page offers to add it
        made = await _post(
            patient,
            "/plans/new",
            "/plans/new",
            {"token": plan_token.group(1), "statements": [s for s in statements if s != left_out], "mode": "months",
             "months": "2", "day": "1", "payment": "manual", "agree": "yes", "action": "create"},
        )  # fmt: skip
        if made.status_code == 303:
            break
    assert made.status_code == 303, made.text
    asked = await _post(
        patient,
        "/questions/new",
        "/questions/new",
        {
            "category": "unrecognised",
            "message": "What is this charge?",
            "reply_by": "email",
            "statement": "",
            "line": "",
        },
    )
    assert asked.status_code == 303, asked.text
    return str(made.headers["location"])


async def roles_of(app: Litestar) -> list[Role]:
    """Every kind of person who meets forms, signed in the way the portal signs them in."""
    now = app.state["plugin_host"].clock()
    ehr = app.state["plugin_host"].ehr
    visitor = Role("visitor", app, ["/", "/staff/sign-in"])
    own, cared_for, billed, called = await free_patients(app, 4)

    patient = Role("patient", app, ["/home"])
    holder = await _account(
        now, patient_id=own, phone="+15550100199", phone_verified_at=now, password_hash=hash_password(PASSWORD)
    )
    await _sign_in(app, patient, holder, realm="patient", acting_for=own, access="self")
    plan = await _seed(patient, holder, now)
    # Signed in an hour ago: changing the email address first asks to confirm it is them.
    returning = Role("returning patient", app, ["/account/email"], session=patient.session, recent=False)

    caregiver = Role("caregiver", app, ["/home", "/switch"])
    inviter = await _account(now, patient_id=cared_for)
    helper = await _account(now)
    invitation, _ = await proxies.invite(inviter, helper["email"], Access.CAREGIVER, now)
    assert await proxies.accept(invitation, helper, now)
    await _sign_in(app, caregiver, helper, realm="patient", acting_for=cared_for, access="caregiver")

    guest = Role("guest", app, ["/guest"])
    await _account(now, patient_id=billed)  # claimed: no other test takes this patient
    bill = next(s for s in await ehr.list_statements(billed) if s.balance.amount > 0)
    born = (await ehr.read_patient(billed)).birth_date
    opened = await _post(
        guest,
        "/pay-as-guest",
        "/pay-as-guest",
        {"statement_code": bill.statement_code, "birth_month": str(born.month), "birth_day": str(born.day),
         "birth_year": str(born.year)},
    )  # fmt: skip
    assert opened.status_code == 303, opened.text
    await guest.keep_session(app)

    representative = Role("representative", app, ["/home", "/console"])
    await _account(now, patient_id=called)
    await _sign_in(app, representative, await _account(now, role="representative"), realm="staff",
                   role="representative", method="oidc")  # fmt: skip
    acting = await _post(
        representative,
        f"/console/patients/{called}/act",
        f"/console/patients/{called}",
        {"reason": "caller_billing", "note": "", "checks": ["name", "birth_date", "statement_code"]},
    )
    assert acting.status_code == 303, acting.text
    await representative.keep_session(app)

    # No console page links to a plan (the patient's record lists none): its page is typed in.
    supervisor = Role("supervisor", app, ["/console", f"/console/patients/{own}", f"/console{plan}"])
    await _sign_in(app, supervisor, await _account(now, role="supervisor"), realm="staff", role="supervisor",
                   method="oidc")  # fmt: skip

    return [visitor, patient, returning, representative, caregiver, guest, supervisor]


# --- Which routes the forms reach --------------------------------------------------------------


def form_routes(app: Litestar) -> dict[tuple[str, str], re.Pattern[str]]:
    """Every state-changing route of the app, and a pattern of the paths it answers."""
    return {
        (method, route.path): re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(route.path)) + "$")
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for method in route.route_handler_map
        if method in STATE_CHANGING
    }


def route_of(form: Form, routes: dict[tuple[str, str], re.Pattern[str]]) -> tuple[str, str] | None:
    matching = [route for route, pattern in routes.items() if route[0] == "POST" and pattern.match(form.path)]
    # A literal route wins over one with a parameter, as the router decides.
    return min(matching, key=lambda route: route[1].count("{"), default=None)


async def discover(app: Litestar) -> tuple[list[Role], dict[tuple[str, str], Form]]:
    """Each role with the forms it met, and one form per route and set of fields."""
    roles = await roles_of(app)
    routes = form_routes(app)
    forms: dict[tuple[Any, ...], Form] = {}
    reached: dict[tuple[str, str], Form] = {}
    for role in roles:
        await role.fresh_session(app)
        met, _ = await crawl(role.client, role.name, role.starts, pages=PAGES)
        for form in met:
            route = route_of(form, routes)
            assert route is not None, f"{form}: no route answers this form's action"
            forms.setdefault(form_key(form, route[1]), form)
            reached.setdefault(route, form)
        role.forms = [form for form in forms.values() if form.role == role.name]
    return roles, reached


ENDING = re.compile(r"/(cancel|remove|revoke|sign-out|end|end-others)$")


def ending(form: Form) -> bool:
    return bool(ENDING.search(form.path))


# --- The tests ---------------------------------------------------------------------------------


def assert_every_form_handler_is_met_or_excused(
    routes: dict[tuple[str, str], re.Pattern[str]], reached: dict[tuple[str, str], Form]
) -> None:
    stale = sorted(route for route in NOT_A_FORM if route not in routes)
    assert not stale, f"NOT_A_FORM names routes the app no longer has: {stale}"
    met_anyway = sorted(route for route in NOT_A_FORM if route in reached)
    assert not met_anyway, f"the crawl meets these forms: take them out of NOT_A_FORM: {met_anyway}"
    unexplained = sorted(set(routes) - set(reached) - set(NOT_A_FORM))
    assert not unexplained, (
        "state-changing routes that no form of the crawl reaches and NOT_A_FORM does not excuse "
        f"(add the page that links to the form to a role's start pages, or excuse it with a reason): {unexplained}"
    )


# `make fuzz` (500 examples of every form) runs far past the suite's 300 s default.
@pytest.mark.timeout(7200)
async def test_every_form_is_met_and_no_form_loses_input_or_answers_a_server_error(app: Litestar) -> None:
    roles, reached = await discover(app)
    assert_every_form_handler_is_met_or_excused(form_routes(app), reached)
    loop = asyncio.get_running_loop()
    count = examples()

    def run(coroutine: Awaitable[httpx.Response]) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=300)  # type: ignore[arg-type]

    async def send(role: Role, form: Form, submission: Submission) -> httpx.Response:
        await role.fresh_session(app)
        return await role.client.post(form.action, **encoded(form, submission))

    def fuzz(role: Role, form: Form, token: str) -> str | None:
        @hypothesis.settings(
            max_examples=count,
            database=None,
            deadline=None,
            derandomize=IN_CI,
            phases=[Phase.explicit, Phase.generate, Phase.shrink],
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        @hypothesis.given(submission=submissions(form, token))
        def check(submission: Submission) -> None:
            try:
                answer = run(send(role, form, submission))
            except httpx.HTTPError as error:  # an answer no client can read is a failure of the form too
                raise AssertionError(f"{form}: {type(error).__name__}: {error}\n  sent: {submission!r}") from None
            found = problems(form, submission, answer)
            assert not found, f"{form}: " + "; ".join(found) + f"\n  sent: {submission!r}"

        try:
            check()
        except Exception as failure:  # every form's failures are gathered, then reported together
            return "\n".join([f"{type(failure).__name__}: {failure}", *getattr(failure, "__notes__", [])])
        return None

    failures: list[str] = []
    fuzzed = 0
    # Forms that end something (a plan, an appointment, a session) go last, so the others meet it alive.
    queue = sorted(((role, form) for role in roles for form in role.forms), key=lambda pair: ending(pair[1]))
    for role, form in queue:
        await role.fresh_session(app)
        page = await role.client.get(form.page)
        token = CSRF_INPUT.search(page.text)
        if token is None:  # the page changed since the crawl (a plan cancelled, an appointment gone)
            continue
        fuzzed += 1
        if failure := await asyncio.to_thread(fuzz, role, form, token.group(1)):
            failures.append(failure)
    for role in roles:
        await role.client.aclose()
    assert fuzzed >= 30, f"only {fuzzed} forms fuzzed"
    assert not failures, f"{len(failures)} form(s) failed:\n\n" + "\n\n".join(failures)
