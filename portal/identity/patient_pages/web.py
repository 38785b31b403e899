"""What the patient pages share: the reader's language, the asker's address, and how a sign-in ends."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, cast

from carefront_sdk.models import Channel
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect

from portal.i18n import N_, I18n
from portal.identity import accounts, sessions, signing_in
from portal.identity.patient_pages.code_sending import Sending
from portal.identity.patient_pages.notices import Notices
from portal.identity.session_store import DatabaseSessionStore
from portal.plugin_host import PluginHost
from portal.settings import Settings
from portal.web.errors import SIGN_IN_ROUTE, route_path

HOME = "/home"
SECOND_FACTOR_ROUTE = "sign-in-second-factor"

ENTER_EMAIL = N_("Enter your email address, like name@example.com.")
ENTER_PHONE = N_("Enter a mobile number with its area code, like 312 555 0123.")
NOT_A_CONTACT = N_("Enter an email address, like name@example.com, or a mobile number, like 312 555 0123.")
ENTER_CODE = N_("Enter the code we sent you.")
WRONG_CODE = N_("That code is not right, or it has expired. Check the newest message, or ask for a new code.")
NOT_DELIVERABLE = N_("We could not send a message there. Check it, or use another one.")
EMAIL_IN_USE = N_(
    "That email address cannot be used for a new account. Use another one, or sign in if you already have an account."
)


def gettext(request: HTMXRequest) -> Callable[[str], str]:
    i18n: I18n = request.app.state["i18n"]
    return i18n.gettext


def translated(request: HTMXRequest, errors: dict[str, str]) -> dict[str, str]:
    """``errors`` (field name to English msgid) in the reader's language."""
    _ = gettext(request)
    return {name: _(message) for name, message in errors.items()}


def client_address(request: HTMXRequest) -> str:
    return request.client.host if request.client else ""


def wait_minutes(retry_after: timedelta) -> int:
    """Whole minutes to wait, rounded up: "1 minute" rather than "0 minutes"."""
    return max(1, math.ceil(retry_after.total_seconds() / 60))


def sending_problems(request: HTMXRequest, sending: Sending) -> tuple[dict[str, str], dict[str, Any], int]:
    """Why codes were not sent, as a page shows it: errors beside fields, a notice, and the status."""
    if sending.wait is not None:
        return {}, {"wait": wait_minutes(sending.wait)}, 429
    if sending.undeliverable is not None:
        field = "email" if sending.undeliverable.channel is Channel.EMAIL else "phone"
        return translated(request, {field: NOT_DELIVERABLE}), {}, 422
    return {}, {"unavailable": True}, 503


def notices(request: HTMXRequest, settings: Settings, plugin_host: PluginHost) -> Notices:
    return Notices(
        notifier=plugin_host.notifier,
        i18n=request.app.state["i18n"],
        hospital=settings.hospital.name,
        billing_phone=settings.hospital.billing_phone,
        public_url=settings.public_url,
    )


async def finish_sign_in(
    request: HTMXRequest, account: dict[str, Any], method: str, now: datetime, next_path: str = HOME
) -> Redirect:
    """Ask for the second factor when the account has one (once its page is installed), else sign in."""
    second_factor = route_path(request.app, SECOND_FACTOR_ROUTE)
    if second_factor is not None and signing_in.needs_second_factor(account, method):
        signing_in.await_second_factor(request, account, method, now)
        return Redirect(second_factor, status_code=303)
    await signing_in.complete(request, account, method, now)
    return Redirect(next_path, status_code=303)


async def signed_in_account(request: HTMXRequest) -> dict[str, Any] | None:
    """The account whose session this is, or None when the session names no account that exists.

    While a representative acts as the patient it is the patient's own account: they see what the
    patient sees, and the pages refuse every change a patient alone may make (PROMISES.md 7).
    """
    current = sessions.viewer(request)
    owner = request.session.get(sessions.ACTING_ACCOUNT) if current and current.impersonating else None
    try:
        public_id = uuid.UUID(owner or current.account_id) if current and current.account_id else None
    except ValueError:
        return None
    return await accounts.find(str(public_id)) if public_id else None


def session_store(request: HTMXRequest) -> DatabaseSessionStore:
    return cast(DatabaseSessionStore, request.app.stores.get("sessions"))


def signed_out(request: HTMXRequest) -> Redirect:
    """The session names no account that exists (any more): end it and go to the way in."""
    sessions.end(request)
    return Redirect(route_path(request.app, SIGN_IN_ROUTE) or "/", status_code=303)
