"""The payment pages: pay, come back from the gateway, receipts and history, the gateway's webhook,
and opening a pay link.

Controllers only: the ledger, the gateway and the EHR are reached through this package's services.
Patients and their proxies pay for the patient they act for; a guest (or someone who opened a pay
link) pays the one statement their session opened, through the same handlers (``opt={"guest": True}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from carefront_sdk.errors import NotFound, RedirectRequired, Refused, Unavailable, WebhookRejected
from carefront_sdk.models import Checkout, CheckoutKind, Money
from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath, FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Response, Template

from portal.access import patients_only
from portal.audit.access import record_access
from portal.audit.log import Auditor, Entry
from portal.billing.statements import statement_of
from portal.i18n import N_, I18n, format_money
from portal.identity import accounts, sessions
from portal.identity.acting_for import acting_for_allowed
from portal.identity.patient_pages.web import client_address, translated
from portal.identity.proxy_pages import URL_ENCODED
from portal.identity.sessions import Access, Realm, Viewer
from portal.payments import attempts, form_tokens, pay_links, webhooks
from portal.payments.amounts import check_amount, parse_amount, typed_form
from portal.payments.ledger import portal_payments, shown_status
from portal.payments.owed import Owed, owed
from portal.payments.settlement import Change, announce, settle
from portal.plugin_host import PluginHost
from portal.security import allow_sources
from portal.settings import Settings

PAY_LINK_SESSION_KEY = "pay_link"
"""Session key: the pay link a guest session was opened with, so its payment uses the link up."""

FORM_EXPIRED = N_("This payment form has expired. Check the amount and press Pay again.")
FORM_CHANGED = N_("The amount changed since this page opened. Check it and press Pay again.")
LEFT_CHECKOUT = N_("You left the payment page, and nothing was charged. You can try again.")
NOT_FINISHED = N_("Your bank did not finish checking the payment, and nothing was charged. Please try again.")
CHOOSE_AMOUNT = N_("Choose how much to pay.")
BAD_EMAIL = N_("Enter an email address like name@example.com, or leave it empty.")
STATUS_LABELS = {
    "processing": N_("Processing"),
    "received": N_("Received"),
    "posted": N_("Posted to your account"),
    "failed": N_("Did not go through"),
}
NO_CARD_WHILE_ACTING = N_(
    "While acting for a patient you cannot take a card. Send the patient a pay link from the console instead."
)


@dataclass
class PayForm:
    token: str = ""
    choice: str = ""
    amount: str = ""
    statement: str = ""
    receipt_email: str = ""


def _is_guest(viewer: Viewer) -> bool:
    return viewer.realm is Realm.GUEST


def _patient(viewer: Viewer) -> str:
    if viewer.acting_for is None:
        raise PermissionDeniedException("Choose whose account to see first.")
    if getattr(viewer, "impersonating", False):
        raise PermissionDeniedException(NO_CARD_WHILE_ACTING)
    return viewer.acting_for


def _owns(viewer: Viewer, attempt: dict[str, Any] | None) -> dict[str, Any]:
    """The attempt when the viewer may see it; otherwise 404, exactly like a missing one (PROMISES.md 2)."""
    if attempt is None or attempt["patient_id"] != viewer.acting_for:
        raise NotFoundException()
    if _is_guest(viewer) and (attempt["statement_id"] != viewer.statement_id or attempt["payer_kind"] == "account"):
        raise NotFoundException()
    return attempt


def _choices(viewer: Viewer, owing: Owed) -> list[str]:
    shown = [] if _is_guest(viewer) else ["balance"]
    if owing.statement is not None:
        shown.append("statement")
    return [*shown, "other"]


async def _pay_page(
    request: HTMXRequest,
    viewer: Viewer,
    plugin_host: PluginHost,
    settings: Settings,
    statement_id: str | None,
    *,
    form: PayForm | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    fresh_token: bool = False,
    status_code: int = 200,
) -> Template:
    patient_id = _patient(viewer)
    owing = await owed(plugin_host, patient_id, statement_id, now=plugin_host.clock())
    choices = _choices(viewer, owing)
    shown = form or PayForm()
    if fresh_token or not shown.token:
        shown.token = form_tokens.mint(settings.secret_key, patient_id)
    if shown.choice not in choices:
        shown.choice = "statement" if "statement" in choices else choices[0]
    shown.statement = owing.statement.id if owing.statement else ""
    return Template(
        "payments/pay.html",
        context={
            "owed": owing,
            "read": owing.read,
            "choices": choices,
            "form": shown,
            "errors": translated(request, errors or {}),
            "notice": _text(request, notice),
            "guest": _is_guest(viewer),
            **_nav(plugin_host, viewer, "/pay"),
        },
        status_code=status_code,
    )


def _text(request: HTMXRequest, message: str | None) -> str | None:
    """``message`` (an English msgid, or a gateway's own text) in the reader's language."""
    if message is None:
        return None
    i18n: I18n = request.app.state["i18n"]
    return i18n.gettext(message)


def _nav(plugin_host: PluginHost, viewer: Viewer, current: str) -> dict[str, Any]:
    if _is_guest(viewer):
        return {"patient_nav": False}
    return {"patient_nav": True, "nav_items": plugin_host.nav_items("patient", I18n.current()), "current_nav": current}


def _payer(request: Request[Any, Any, Any], viewer: Viewer, receipt_email: str | None) -> attempts.Payer:
    language = I18n.current()
    if not _is_guest(viewer):
        return attempts.Payer("account", account_id=viewer.account_id, language=language)
    link = request.session.get(PAY_LINK_SESSION_KEY)
    kind = "pay_link" if link else "guest"
    return attempts.Payer(kind, pay_link_id=link, language=language, receipt_email=receipt_email)


class PayController(Controller):
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get("/pay", name="pay", opt={"guest": True})
    async def pay_page(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        statement: FromQuery[str | None] = None,
    ) -> Template:
        """The pay form: the whole balance, one statement's, or another amount."""
        statement_id = viewer.statement_id if _is_guest(viewer) else statement or None
        page = await _pay_page(request, viewer, plugin_host, settings, statement_id)
        await record_access(request, "payment.form", statement_id)
        return page

    @post("/pay", opt={"guest": True})
    async def pay(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        data: Annotated[PayForm, URL_ENCODED],
    ) -> Template | Redirect:
        """Check the amount, write the attempt, and send the browser on to the gateway."""
        patient_id = _patient(viewer)
        statement_id = viewer.statement_id if _is_guest(viewer) else data.statement or None
        now = plugin_host.clock()
        owing = await owed(plugin_host, patient_id, statement_id, now=now)
        key = form_tokens.idempotency_key(settings.secret_key, patient_id, data.token)
        if key is None:
            return await _pay_page(
                request, viewer, plugin_host, settings, statement_id, form=data, notice=FORM_EXPIRED,
                fresh_token=True, status_code=422,
            )  # fmt: skip
        errors: dict[str, str] = {}
        amount: int | None = None
        pays_statement = statement_id
        if data.choice == "balance" and "balance" in _choices(viewer, owing):
            amount, pays_statement = owing.balance.amount, None
            problem = check_amount(amount, amount)
        elif data.choice == "statement" and owing.statement_owed is not None:
            amount = owing.statement_owed.amount
            problem = check_amount(amount, amount)
        elif data.choice == "other":
            parsed = parse_amount(data.amount)
            amount, problem = parsed.amount, parsed.problem
            if amount is not None:
                problem = check_amount(amount, owing.limit.amount)
        else:
            problem = CHOOSE_AMOUNT
        if problem is not None:
            errors["amount" if data.choice == "other" else "choice"] = problem
        receipt_email = None
        if _is_guest(viewer) and data.receipt_email.strip():
            receipt_email = accounts.normal_email(data.receipt_email)
            if receipt_email is None:
                errors["receipt_email"] = BAD_EMAIL
        if errors or amount is None:
            page = await _pay_page(
                request, viewer, plugin_host, settings, statement_id, form=data, errors=errors, status_code=422
            )
            if "amount" in page.context["errors"] and problem is not None and "%(owed)s" in problem:
                page.context["errors"]["amount"] %= {"owed": format_money(owing.limit)}
            return page
        intent = attempts.Intent(
            patient_id=patient_id,
            amount=Money(amount, owing.balance.currency),
            statement_id=pays_statement,
            payer=_payer(request, viewer, receipt_email),
        )
        begun = await attempts.begin(intent, key, now=now)
        attempt = begun.attempt
        await record_access(request, "payment.started", str(attempt["public_id"]))
        if not begun.matches:
            return await _pay_page(
                request, viewer, plugin_host, settings, statement_id, form=data, notice=FORM_CHANGED,
                fresh_token=True, status_code=422,
            )  # fmt: skip
        if attempt["status"] in ("succeeded", "posted", "processing"):
            return Redirect(request.app.route_reverse("receipt", payment_id=str(attempt["public_id"])), status_code=303)
        if attempt["status"] == "failed":
            return await _pay_page(
                request, viewer, plugin_host, settings, statement_id, form=data,
                notice=attempt["failure_message"] or LEFT_CHECKOUT, fresh_token=True, status_code=422,
            )  # fmt: skip
        description = _text(request, N_("Payment to %(hospital)s")) or ""
        try:
            checkout = await attempts.start_checkout(
                plugin_host, settings, attempt, description % {"hospital": settings.hospital.name}
            )
        except RedirectRequired as redirect:
            return Redirect(redirect.url, status_code=303)
        except Refused as refusal:
            if isinstance(refusal, NotFound):
                raise
            return await _pay_page(
                request, viewer, plugin_host, settings, statement_id, form=data, notice=refusal.message,
                fresh_token=True, status_code=422,
            )  # fmt: skip
        if checkout.kind is CheckoutKind.REDIRECT and checkout.url:
            return Redirect(checkout.url, status_code=303)
        return _element_page(request, plugin_host, settings, viewer, attempt, checkout)

    @get("/pay/return/{payment_id:str}", name="pay-return", opt={"guest": True})
    async def returned(
        self,
        request: HTMXRequest,
        viewer: NamedDependency[Viewer],
        plugin_host: NamedDependency[PluginHost],
        settings: NamedDependency[Settings],
        payment_id: FromPath[str],
        cancelled: FromQuery[str | None] = None,
    ) -> Template | Redirect:
        """Back from the gateway: read the payment there and settle the attempt (or find it settled)."""
        attempt = _owns(viewer, await attempts.find(payment_id))
        change = Change.NONE
        if attempt["status"] in ("open", "processing", "failed") and attempt["checkout_reference"]:
            payment = await plugin_host.gateway.read_payment(attempt["checkout_reference"])
            settled = await settle(attempt, payment, now=plugin_host.clock(), in_flight=cancelled is None)
            attempt, change = settled.attempt, settled.change
            if change is Change.SUCCEEDED:
                announce(plugin_host, attempt)
        action = {Change.SUCCEEDED: "payment.succeeded", Change.FAILED: "payment.failed"}.get(
            change, "payment.returned"
        )
        await record_access(request, action, payment_id)
        if attempt["status"] in ("succeeded", "posted", "processing"):
            return Redirect(request.app.route_reverse("receipt", payment_id=payment_id), status_code=303)
        notice = attempt["failure_message"] or (LEFT_CHECKOUT if cancelled is not None else NOT_FINISHED)
        # The amount they tried stays in the form, so trying again (another card) is one tap on Pay.
        tried = PayForm(choice="other", amount=typed_form(attempt["amount"]))
        return await _pay_page(
            request, viewer, plugin_host, settings, attempt["statement_id"], form=tried, notice=notice,
            fresh_token=True,
        )  # fmt: skip


def _element_page(
    request: HTMXRequest,
    plugin_host: PluginHost,
    settings: Settings,
    viewer: Viewer,
    attempt: dict[str, Any],
    checkout: Checkout,
) -> Template:
    """The gateway's own card element on our page, under a policy that allows exactly its origins."""
    page = plugin_host.gateway_page()
    allow_sources(request, page.csp)
    return Template(
        "payments/element.html",
        context={
            "attempt": attempt,
            "checkout": checkout,
            "checkout_amount": Money(attempt["amount"], attempt["currency"]),
            "scripts": page.scripts,
            "return_url": settings.public_url + attempts.RETURN_PATH.format(payment_id=attempt["public_id"]),
            **_nav(plugin_host, viewer, "/pay"),
        },
    )


class ReceiptController(Controller):
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get("/payments/{payment_id:str}", name="receipt", opt={"guest": True})
    async def receipt(
        self, request: HTMXRequest, viewer: NamedDependency[Viewer], plugin_host: NamedDependency[PluginHost],
        payment_id: FromPath[str],
    ) -> Template:  # fmt: skip
        """A payment's receipt: amount, date, method, statement, status and reference number."""
        attempt = _owns(viewer, await attempts.find(payment_id))
        status = shown_status(attempt["status"])
        if status is None:
            raise NotFoundException()  # a checkout never finished is no payment
        statement = None
        if attempt["statement_id"]:
            try:
                read = await statement_of(
                    plugin_host, attempt["patient_id"], attempt["statement_id"], now=plugin_host.clock()
                )
                statement = read.value.summary
            except (NotFound, Unavailable):
                statement = None  # the receipt stands without the statement's details
        await record_access(request, "payment.read", payment_id)
        return Template(
            "payments/receipt.html",
            context={
                "attempt": attempt,
                "amount": Money(attempt["amount"], attempt["currency"]),
                "statement": statement,
                "status": status,
                "status_labels": STATUS_LABELS,
                **_nav(plugin_host, viewer, "/payments"),
            },
        )

    @get("/payments", name="payments")
    async def history(
        self, request: HTMXRequest, viewer: NamedDependency[Viewer], plugin_host: NamedDependency[PluginHost]
    ) -> Template:
        """Every payment made through the portal for the patient, newest first."""
        if _is_guest(viewer):
            raise PermissionDeniedException("This page is for patients.")
        payments = await portal_payments(_patient(viewer))
        await record_access(request, "payments.read", None)
        return Template(
            "payments/history.html",
            context={"payments": payments, "status_labels": STATUS_LABELS, **_nav(plugin_host, viewer, "/payments")},
        )


@post(
    "/-/webhooks/gateway", opt={"public": True, "exclude_from_csrf": True}, media_type=MediaType.TEXT, status_code=200
)
async def gateway_webhook(request: Request[Any, Any, Any], plugin_host: NamedDependency[PluginHost]) -> Response[str]:
    """The gateway's notifications: 400 unless they verify; duplicates and any order end the same."""
    body = await request.body()
    try:
        settled = await webhooks.receive(plugin_host, body, request.headers, now=plugin_host.clock())
    except WebhookRejected:
        return Response("rejected", status_code=400, media_type=MediaType.TEXT)
    if settled is not None and settled.change is not Change.NONE:
        if settled.change is Change.SUCCEEDED:
            announce(plugin_host, settled.attempt)
        auditor: Auditor = request.app.state["auditor"]
        await auditor.record(
            Entry(
                actor="gateway",
                actor_role="gateway",
                action=f"payment.{settled.change.value}",
                outcome="ok",
                acting_as=settled.attempt["patient_id"],
                subject=str(settled.attempt["public_id"]),
                address=client_address(request),  # type: ignore[arg-type]
            )
        )
    return Response("ok", media_type=MediaType.TEXT)


@get("/pay/link/{token:str}", name="pay-link", opt={"public": True})
async def open_pay_link(
    request: HTMXRequest,
    plugin_host: NamedDependency[PluginHost],
    settings: NamedDependency[Settings],
    token: FromPath[str],
) -> Template | Redirect:
    """A pay link: a guest session for its one statement, on to the pay page; or why it no longer works."""
    now = plugin_host.clock()
    opened = await pay_links.open_link(settings, token, now=now)
    link = opened.link
    auditor: Auditor = request.app.state["auditor"]
    await auditor.record(
        Entry(
            actor="guest",
            actor_role="guest",
            action="pay_link.opened",
            outcome="succeeded" if opened.state is pay_links.LinkState.VALID else opened.state.value,
            acting_as=link["patient_id"] if link else None,
            subject=str(link["public_id"]) if link else None,
            address=client_address(request),
        )
    )
    if opened.state is not pay_links.LinkState.VALID or link is None:
        return Template("payments/link_unusable.html", context={"state": opened.state.value}, status_code=410
                        if opened.state is not pay_links.LinkState.INVALID else 404)  # fmt: skip
    sessions.begin(
        request,
        now,
        realm=Realm.GUEST,
        acting_for=link["patient_id"],
        access=Access.GUEST,
        statement_id=link["statement_id"],
        **{PAY_LINK_SESSION_KEY: str(link["public_id"])},
    )
    return Redirect(request.app.route_reverse("pay"), status_code=303)


ROUTES: list[Any] = [PayController, ReceiptController, gateway_webhook, open_pay_link]
