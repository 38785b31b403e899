"""The sandbox's web pages: the test-mode hosted checkout, its 3-D Secure step, and the outbox.

Every page is public (``opt={"public": True}``): a hosted checkout is reached by its unguessable
reference, as a real gateway's is, and the outbox is how demo visitors read their one-time codes.
Forms post back to their own page and carry the portal's CSRF token.
"""

from __future__ import annotations

from typing import Any

from carefront_sdk.models import Money
from litestar import Request, Router, get, post
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template

from carefront_sandbox.gateway import TEST_CARDS, CheckoutView, SandboxGateway, find_checkout
from carefront_sandbox.notifier import outbox

__all__ = ["PATH", "router"]

PATH = "/-/sandbox"
_PUBLIC = {"public": True}
_NO_STORE = CacheControlHeader(no_store=True)


def _money(amount: Money) -> str:
    text = f"{amount.amount / 100:,.2f}"
    return f"${text}" if amount.currency == "USD" else f"{text} {amount.currency}"


async def _found(reference: str) -> tuple[SandboxGateway, CheckoutView]:
    found = await find_checkout(reference)
    if found is None:
        raise NotFoundException()
    return found


def _checkout_page(
    view: CheckoutView, *, errors: dict[str, str] | None = None, expiry: str = "", status_code: int = 200
) -> Template:
    return Template(
        template_name="sandbox/checkout.html",
        context={
            "checkout": view,
            "amount": _money(view.amount),
            "errors": errors or {},
            "expiry": expiry,
            "test_cards": TEST_CARDS.values(),
        },
        status_code=status_code,
    )


@get(
    "/checkout/{reference:str}", name="sandbox:checkout", opt=_PUBLIC, include_in_schema=False, cache_control=_NO_STORE
)
async def checkout_page(reference: FromPath[str]) -> Template:
    """The hosted test checkout: a card form, or where the checkout stands."""
    _, view = await _found(reference)
    return _checkout_page(view)


@post("/checkout/{reference:str}", opt=_PUBLIC, include_in_schema=False, cache_control=_NO_STORE)
async def submit_card(reference: FromPath[str], request: Request[Any, Any, Any]) -> Template | Redirect:
    """Take a test card: on to the return URL or 3-D Secure, or back to the form with what went wrong."""
    gateway, view = await _found(reference)
    form = await request.form()
    number, expiry, cvc = (str(form.get(field, "")) for field in ("number", "expiry", "cvc"))
    card_form = gateway.check_card_form(number, expiry, cvc)
    if card_form.card is None:
        # The number (and security code) are never echoed back: the page says so beside the field.
        return _checkout_page(view, errors=card_form.errors, expiry=expiry, status_code=422)
    outcome = await gateway.submit_card(reference, card_form.card, card_form.expires)
    if outcome.redirect is not None:
        return Redirect(outcome.redirect, status_code=303)
    _, view = await _found(reference)
    return _checkout_page(view, expiry=expiry)


@get(
    "/checkout/{reference:str}/authenticate",
    name="sandbox:authenticate",
    opt=_PUBLIC,
    include_in_schema=False,
    cache_control=_NO_STORE,
)
async def authenticate_page(reference: FromPath[str]) -> Template | Redirect:
    """The test 3-D Secure step: the visitor decides what the bank answers."""
    _, view = await _found(reference)
    if view.status != "requires_action":
        return Redirect(f"{PATH}/checkout/{reference}", status_code=303)
    return Template(
        template_name="sandbox/authenticate.html", context={"checkout": view, "amount": _money(view.amount)}
    )


@post("/checkout/{reference:str}/authenticate", opt=_PUBLIC, include_in_schema=False, cache_control=_NO_STORE)
async def finish_authentication(reference: FromPath[str], request: Request[Any, Any, Any]) -> Redirect:
    """Complete or fail the test 3-D Secure step."""
    gateway, _ = await _found(reference)
    form = await request.form()
    outcome = await gateway.finish_authentication(reference, approved=form.get("outcome") == "complete")
    return Redirect(outcome.redirect or f"{PATH}/checkout/{reference}", status_code=303)


@get("/outbox", name="sandbox:outbox", opt=_PUBLIC, include_in_schema=False, cache_control=_NO_STORE)
async def outbox_page() -> Template:
    """Messages the sandbox notifier kept instead of sending, newest first."""
    messages = await outbox()
    if messages is None:
        raise NotFoundException()
    return Template(template_name="sandbox/outbox.html", context={"messages": messages})


def router() -> Router:
    """A new router of the sandbox's pages under ``/-/sandbox`` (one per app that mounts it)."""
    return Router(
        path=PATH, route_handlers=[checkout_page, submit_card, authenticate_page, finish_authentication, outbox_page]
    )
