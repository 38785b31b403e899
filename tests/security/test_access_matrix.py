"""PROMISES.md 2: someone else's object answers exactly like a missing one.

Every registered route whose path names an object (a path parameter) is in ``MATRIX``, which says how
to make such an object belonging to someone else, or in ``NOT_SOMEONES``, which says why its path
parameter names nobody's object. Each route in the matrix is then asked, by three roles that do not
own the object (another patient, a billing delegate of a third patient, a guest of another bill),
for the other person's object and for an id that does not exist: both answers must be the same 404
(a guest is refused a patient-only route outright with the same 403 for either id), and the object
must be left as it was.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE
from portal.coverage.tables import CardPhoto, CoverageChangeRequest
from portal.identity import accounts, proxies
from portal.identity.sessions import Access
from portal.identity.tables import Passkey, ProxyGrant, ProxyInvitation
from portal.payments.tables import PaymentAttempt
from portal.plans.tables import PaymentPlan, PlanInstallment
from portal.questions import service as questions
from portal.questions.tables import QuestionMessage
from portal.scheduling.tables import Cancellation

IGNORED_METHODS = {"HEAD", "OPTIONS"}
CSRF_INPUT = re.compile(r'name="_csrf_token" value="([^"]+)"')
MISSING_ID = 2_000_000_000


@dataclass
class Owned:
    """An object of the owner's, reached through one route, and how to tell it is untouched."""

    path: str
    missing: str
    data: dict[str, str] = field(default_factory=dict)
    untouched: Callable[[], Awaitable[bool]] | None = None


async def new_account(now: datetime, *, patient: bool = True) -> dict[str, Any]:
    tag = secrets.token_hex(5)
    return await accounts.create(
        now,
        public_id=uuid.uuid4(),
        realm="patient",
        email=f"matrix-{tag}@example.org",
        email_verified_at=now,
        given_name="Matrix",
        family_name=f"Owner{tag}",
        patient_id=f"matrix-pt-{tag}" if patient else None,
    )


async def someones_grant(owner: dict[str, Any], now: datetime) -> Owned:
    helper = await new_account(now, patient=False)
    invitation, _ = await proxies.invite(owner, helper["email"], Access.CAREGIVER, now)
    grant = await proxies.accept(invitation, helper, now)
    assert grant is not None

    async def untouched() -> bool:
        return await ProxyGrant.exists().where((ProxyGrant.id == grant["id"]) & ProxyGrant.revoked_at.is_null()).run()

    return Owned(f"/account/proxies/{grant['id']}/revoke", f"/account/proxies/{MISSING_ID}/revoke", untouched=untouched)


async def someones_invitation(owner: dict[str, Any], now: datetime) -> Owned:
    invitation, _ = await proxies.invite(owner, f"matrix-{secrets.token_hex(4)}@example.org", Access.BILLING, now)

    async def untouched() -> bool:
        return (
            await ProxyInvitation.exists()
            .where((ProxyInvitation.id == invitation["id"]) & ProxyInvitation.revoked_at.is_null())
            .run()
        )

    return Owned(
        f"/account/proxies/invitations/{invitation['id']}/revoke",
        f"/account/proxies/invitations/{MISSING_ID}/revoke",
        untouched=untouched,
    )


def someones_passkey(action: str, data: dict[str, str] | None = None) -> Callable[..., Awaitable[Owned]]:
    async def build(owner: dict[str, Any], now: datetime) -> Owned:
        (passkey,) = await (
            Passkey.insert(
                Passkey(
                    account=owner["id"],
                    credential_id=secrets.token_urlsafe(24),
                    public_key=b"matrix",
                    name="Owner's phone",
                    created_at=now,
                )
            )
            .returning(Passkey.id)
            .run()
        )

        async def untouched() -> bool:
            return await Passkey.exists().where((Passkey.id == passkey["id"]) & (Passkey.name == "Owner's phone")).run()

        return Owned(
            f"/account/security/passkeys/{passkey['id']}{action}",
            f"/account/security/passkeys/{MISSING_ID}{action}",
            data=data or {},
            untouched=untouched,
        )

    return build


def someones_statement(action: str) -> Callable[..., Awaitable[Owned]]:
    """A statement of the sandbox hospital's first patient (its visit vi-1): never the asker's."""

    async def build(owner: dict[str, Any], now: datetime) -> Owned:
        return Owned(f"/statements/st-1{action}", f"/statements/st-{MISSING_ID}{action}")

    return build


# How to make an object of the owner's for each route that names one. A new route with a path
# parameter fails test_every_route_with_an_id_is_in_the_matrix until it is added here or below.
def someones_payment(template: str) -> Callable[..., Awaitable[Owned]]:
    async def make(owner: dict[str, Any], now: datetime) -> Owned:
        public_id = uuid.uuid4()
        await PaymentAttempt.insert(
            PaymentAttempt(
                public_id=public_id,
                idempotency_key=f"matrix:{secrets.token_hex(8)}",
                reference_number=secrets.token_hex(6).upper(),
                patient_id=owner["patient_id"],
                amount=1234,
                status="succeeded",
                payer_kind="account",
                created_at=now,
            )
        ).run()

        async def untouched() -> bool:
            return (
                await PaymentAttempt.exists()
                .where((PaymentAttempt.public_id == public_id) & (PaymentAttempt.status == "succeeded"))
                .run()
            )

        return Owned(template.format(public_id), template.format(uuid.uuid4()), untouched=untouched)

    return make


def someones_appointment(action: str, method: str = "GET") -> Callable[..., Awaitable[Owned]]:
    """An appointment the sandbox hospital generated for one of its patients: never the asker's."""

    async def build(owner: dict[str, Any], now: datetime) -> Owned:
        untouched = None
        if method == "POST":

            async def untouched() -> bool:
                return not await Cancellation.exists().where(Cancellation.appointment_id == "ap-1").run()

        return Owned(f"/appointments/ap-1{action}", f"/appointments/ap-{MISSING_ID}{action}", untouched=untouched)

    return build


def someones_coverage(action: str, method: str = "GET") -> Callable[..., Awaitable[Owned]]:
    """A coverage on file in the sandbox hospital for one of its patients: never the asker's."""

    async def build(owner: dict[str, Any], now: datetime) -> Owned:
        async def untouched() -> bool:
            return not await CoverageChangeRequest.exists().where(CoverageChangeRequest.coverage_id == "cov-1").run()

        data = {"payer_id": "other", "payer_name": "Stolen", "member_id": "STOLEN1", "relationship": "self"}
        return Owned(
            f"/insurance/coverages/cov-1{action}",
            f"/insurance/coverages/cov-{MISSING_ID}{action}",
            data=data if method == "POST" else {},
            untouched=untouched if method == "POST" else None,
        )

    return build


async def someones_card_photo(owner: dict[str, Any], now: datetime) -> Owned:
    public_id = uuid.uuid4()
    await CardPhoto.insert(
        CardPhoto(
            public_id=public_id,
            patient_id=owner["patient_id"],
            rank="primary",
            side="front",
            file_name=secrets.token_hex(16),
            media_type="image/jpeg",
            width=800,
            height=500,
            uploaded_at=now,
            uploaded_by=f"account:{owner['public_id']}",
        )
    ).run()
    return Owned(f"/insurance/cards/{public_id}", f"/insurance/cards/{uuid.uuid4()}")


def someones_plan(
    suffix: str, data: dict[str, str] | None = None
) -> Callable[[dict[str, Any], datetime], Awaitable[Owned]]:
    async def build(owner: dict[str, Any], now: datetime) -> Owned:
        public_id = uuid.uuid4()
        rows = (
            await PaymentPlan.insert(
                PaymentPlan(
                    public_id=public_id,
                    creation_key=f"matrix:{public_id}",
                    patient_id=owner["patient_id"],
                    account_number="G-MATRIX",
                    holder_account_id=str(owner["public_id"]),
                    total=30_000,
                    day_of_month=1,
                    customer_reference=f"cf_matrix_{secrets.token_hex(4)}",
                    agreement_version="2026-11",
                    created_at=now,
                )
            )
            .returning(PaymentPlan.id)
            .run()
        )
        await PlanInstallment.insert(
            PlanInstallment(
                public_id=uuid.uuid4(), plan=rows[0]["id"], due_on=now.date() + timedelta(days=20), amount=30_000
            )
        ).run()

        async def untouched() -> bool:
            plan = await PaymentPlan.select().where(PaymentPlan.public_id == public_id).first().run()
            scheduled = await PlanInstallment.count().where(
                (PlanInstallment.plan == rows[0]["id"]) & (PlanInstallment.status == "scheduled")
            )
            return (
                plan["status"] == "active"
                and plan["day_of_month"] == 1
                and scheduled == 1
                and not plan["method_checkout"]
            )

        return Owned(
            f"/plans/{public_id}{suffix}",
            f"/plans/{uuid.uuid4()}{suffix}",
            data=data or {},
            untouched=untouched if data is not None else None,
        )

    return build


def someones_question(action: str, data: dict[str, str] | None = None) -> Callable[..., Awaitable[Owned]]:
    async def build(owner: dict[str, Any], now: datetime) -> Owned:
        question = await questions.ask(
            questions.Asked(owner["patient_id"], "other", "The owner's question", "portal"),
            asked_by=str(owner["public_id"]),
            now=now,
            reply_within=timedelta(hours=48),
        )

        async def untouched() -> bool:
            return await QuestionMessage.count().where(QuestionMessage.question == question["id"]).run() == 1

        return Owned(
            f"/questions/{question['public_id']}{action}",
            f"/questions/{uuid.uuid4()}{action}",
            data=data or {},
            untouched=untouched,
        )

    return build


MATRIX: dict[tuple[str, str], Callable[[dict[str, Any], datetime], Awaitable[Owned]]] = {
    ("GET", "/statements/{statement_id:str}"): someones_statement(""),
    ("GET", "/statements/{statement_id:str}/visits/{visit_id:str}/lines"): someones_statement("/visits/vi-1/lines"),
    ("GET", "/statements/{statement_id:str}/pdf"): someones_statement("/pdf"),
    ("GET", "/questions/{question_id:str}"): someones_question(""),
    ("POST", "/questions/{question_id:str}/reply"): someones_question("/reply", {"message": "Not mine"}),
    ("GET", "/appointments/{appointment_id:str}"): someones_appointment(""),
    ("GET", "/appointments/{appointment_id:str}/calendar.ics"): someones_appointment("/calendar.ics"),
    ("GET", "/appointments/{appointment_id:str}/cancel"): someones_appointment("/cancel"),
    ("POST", "/appointments/{appointment_id:str}/cancel"): someones_appointment("/cancel", "POST"),
    ("GET", "/appointments/{appointment_id:str}/reschedule"): someones_appointment("/reschedule"),
    ("GET", "/payments/{payment_id:str}"): someones_payment("/payments/{}"),
    ("GET", "/pay/return/{payment_id:str}"): someones_payment("/pay/return/{}"),
    ("GET", "/insurance/cards/{card_id:uuid}"): someones_card_photo,
    ("GET", "/plans/{plan_id:str}"): someones_plan(""),
    ("GET", "/plans/{plan_id:str}/cancel"): someones_plan("/cancel"),
    ("POST", "/plans/{plan_id:str}/cancel"): someones_plan("/cancel", {}),
    ("GET", "/plans/{plan_id:str}/pay"): someones_plan("/pay"),
    ("POST", "/plans/{plan_id:str}/pay"): someones_plan("/pay", {}),
    ("POST", "/plans/{plan_id:str}/day"): someones_plan("/day", {"day": "15"}),
    ("POST", "/plans/{plan_id:str}/statements"): someones_plan("/statements", {"statement": "st-1"}),
    ("POST", "/plans/{plan_id:str}/method"): someones_plan("/method", {}),
    ("GET", "/plans/{plan_id:str}/method/return"): someones_plan("/method/return"),
    ("GET", "/plans/{plan_id:str}/paid"): someones_plan("/paid"),
    ("GET", "/insurance/coverages/{coverage_id:str}/edit"): someones_coverage("/edit"),
    ("POST", "/insurance/coverages/{coverage_id:str}/edit"): someones_coverage("/edit", "POST"),
    ("GET", "/insurance/coverages/{coverage_id:str}/remove"): someones_coverage("/remove"),
    ("POST", "/insurance/coverages/{coverage_id:str}/remove"): someones_coverage("/remove", "POST"),
    ("POST", "/account/proxies/{grant_id:int}/revoke"): someones_grant,
    ("POST", "/account/proxies/invitations/{invitation_id:int}/revoke"): someones_invitation,
    ("GET", "/account/security/passkeys/{passkey_id:int}"): someones_passkey(""),
    ("POST", "/account/security/passkeys/{passkey_id:int}/name"): someones_passkey("/name", {"name": "Stolen"}),
    ("POST", "/account/security/passkeys/{passkey_id:int}/remove"): someones_passkey("/remove"),
}

# Routes whose path parameter names no one's object, and why.
STAFF_PAGE = (
    "a console page: staff of the roles it names open any patient's record or question, and a patient is "
    "refused by role (403) before any id is read (tests/integration/test_console_*.py)"
)
NOT_SOMEONES = {
    ("GET", "/console/patients/{patient_id:str}"): STAFF_PAGE,
    ("POST", "/console/patients/{patient_id:str}/act"): STAFF_PAGE,
    ("POST", "/console/patients/{patient_id:str}/pay-link"): STAFF_PAGE,
    ("GET", "/console/questions/{question_id:str}"): STAFF_PAGE,
    ("POST", "/console/questions/{question_id:str}/messages"): STAFF_PAGE,
    ("POST", "/console/questions/{question_id:str}/assign"): STAFF_PAGE,
    ("POST", "/console/questions/{question_id:str}/status"): STAFF_PAGE,
    ("GET", "/pay/link/{token:str}"): "a pay link, opened by its signed token: it names no session's object",
    ("GET", "/static/{file_path:path}"): "a static file, the same for everyone",
    ("GET", "/console/plans/{plan_id:str}"): "a staff page: representatives see any patient's plan; patients are "
    "refused the route itself (403), whatever the id",
    ("POST", "/console/plans/{plan_id:str}"): "a staff page: representatives change any patient's plan, with a reason",
    (
        "GET",
        "/-/sandbox/checkout/{reference:str}",
    ): "the sandbox gateway's hosted page, reached by its unguessable reference as a real gateway's is",
    ("POST", "/-/sandbox/checkout/{reference:str}"): "the sandbox gateway's hosted page",
    ("GET", "/-/sandbox/checkout/{reference:str}/authenticate"): "the sandbox gateway's 3-D Secure page",
    ("POST", "/-/sandbox/checkout/{reference:str}/authenticate"): "the sandbox gateway's 3-D Secure page",
}


def routes_with_an_id(app: Litestar) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in app.routes
        if isinstance(route, HTTPRoute) and route.path_parameters
        for method in route.route_handler_map
        if method not in IGNORED_METHODS
    }


def test_every_route_with_an_id_is_in_the_matrix(app):
    found = routes_with_an_id(app)
    unlisted = found - MATRIX.keys() - NOT_SOMEONES.keys()
    assert not unlisted, f"routes with an id missing from the access matrix: {sorted(unlisted)}"
    stale = (MATRIX.keys() | NOT_SOMEONES.keys()) - found
    assert not stale, f"the access matrix names routes that no longer exist: {sorted(stale)}"


async def start_session(app: Litestar, client: httpx.AsyncClient, **values: str) -> None:
    key = secrets.token_hex(32)
    data = {"signed_in_at": datetime.now(UTC).isoformat(), **values}
    await app.stores.get("sessions").set(key, encode_json(data), expires_in=15 * 60)
    client.cookies.set(SESSION_COOKIE, key, domain="testserver.local")


async def another_patient(app: Litestar, client: httpx.AsyncClient, now: datetime) -> None:
    account = await new_account(now)
    await start_session(
        app,
        client,
        account_id=str(account["public_id"]),
        realm="patient",
        acting_for=account["patient_id"],
        access="self",
    )


async def billing_delegate_of_someone_else(app: Litestar, client: httpx.AsyncClient, now: datetime) -> None:
    third = await new_account(now)
    delegate = await new_account(now, patient=False)
    invitation, _ = await proxies.invite(third, delegate["email"], Access.BILLING, now)
    assert await proxies.accept(invitation, delegate, now) is not None
    await start_session(
        app,
        client,
        account_id=str(delegate["public_id"]),
        realm="patient",
        acting_for=third["patient_id"],
        access="billing",
    )


async def guest_of_another_bill(app: Litestar, client: httpx.AsyncClient, now: datetime) -> None:
    ehr = app.state["plugin_host"].ehr
    statement = (await ehr.list_statements((await ehr.read_patient("pt-30")).id))[0]
    await start_session(
        app, client, realm="guest", acting_for=statement.patient_id, access="guest", statement_id=statement.id
    )


ROLES = {
    "another patient": another_patient,
    "a billing delegate of someone else": billing_delegate_of_someone_else,
    "a guest of another bill": guest_of_another_bill,
}


async def ask(client: httpx.AsyncClient, method: str, path: str, data: dict[str, str]) -> httpx.Response:
    if method == "GET":
        return await client.get(path, follow_redirects=False)
    page = await client.get("/")
    token = CSRF_INPUT.search(page.text)
    assert token, "no CSRF token on the front page"
    return await client.request(method, path, data={"_csrf_token": token.group(1), **data}, follow_redirects=False)


def page_text(response: httpx.Response, path: str) -> str:
    """The page without what differs by request alone: the path (the language form returns to it)
    and the CSRF token."""
    text = re.sub(r'"x-csrftoken": "[^"]*"', "", CSRF_INPUT.sub("", response.text))
    return text.replace(path, "{path}")


@pytest.mark.parametrize("role", ROLES)
async def test_someone_elses_object_answers_like_a_missing_one(app, role):
    now = datetime.now(UTC) - timedelta(seconds=1)
    problems = []
    for (method, route), build in sorted(MATRIX.items()):
        owner = await new_account(now)
        owned = await build(owner, now)
        transport = httpx.ASGITransport(app=app, client=(f"192.0.2.{secrets.randbelow(250) + 1}", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            await ROLES[role](app, client, now)
            theirs = await ask(client, method, owned.path, owned.data)
            missing = await ask(client, method, owned.missing, owned.data)
        expected = {403, 404} if role == "a guest of another bill" else {404}
        if theirs.status_code not in expected or missing.status_code != theirs.status_code:
            problems.append(f"{method} {route}: someone else's {theirs.status_code}, missing {missing.status_code}")
        elif page_text(theirs, owned.path) != page_text(missing, owned.missing):
            problems.append(f"{method} {route}: someone else's object and a missing one answer differently")
        if owned.untouched is not None and not await owned.untouched():
            problems.append(f"{method} {route}: changed someone else's object")
    assert not problems, f"as {role}:\n" + "\n".join(problems)
