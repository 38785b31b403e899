"""A one-time code to an email address or mobile number: the page that asks for it, the page that takes it.

Signing in with a code and a forgotten password both work this way. The answers read the same
whether an account verified the address or not (PROMISES.md 5).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from litestar.background_tasks import BackgroundTask
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Redirect, Template

from portal.i18n import I18n
from portal.identity import accounts, codes
from portal.identity.accounts import Outcome
from portal.identity.codes import Purpose
from portal.identity.patient_pages import code_sending
from portal.identity.patient_pages.contacts import Contact, account_reached_at, read_contact
from portal.identity.patient_pages.web import (
    ENTER_CODE,
    NOT_A_CONTACT,
    WRONG_CODE,
    client_address,
    notices,
    translated,
    wait_minutes,
)
from portal.plugin_host import PluginHost
from portal.settings import Settings


@dataclass
class CodeRequest:
    contact: str = ""


@dataclass
class CodeEntry:
    code: str = ""


@dataclass(frozen=True, slots=True)
class CodeToContact:
    """One use of a code to a contact: what it is for, where its pages are, and what a right code does."""

    purpose: Purpose
    contact_key: str
    """Session key: the address the code was asked for, so the next page knows where it went."""
    request_path: str
    entry_path: str
    request_template: str
    entry_template: str
    on_right_code: Callable[[HTMXRequest, dict[str, Any], datetime], Awaitable[Redirect]]
    """What the right code does for the account that verified the address."""
    voids: tuple[str, ...] = ()
    """Session keys that asking for a new code makes void."""
    records_wrong_codes: bool = False
    """Whether a wrong code goes into the account's sign-in history."""

    def contact_in(self, session: dict[str, Any]) -> Contact | None:
        text = session.get(self.contact_key)
        return read_contact(text) if text else None

    def request_page(
        self, form: CodeRequest, errors: dict[str, str], *, status_code: int = 200, **notice: Any
    ) -> Template:
        return Template(
            self.request_template,
            context={"form": form, "errors": errors, **notice},
            status_code=status_code,
        )

    def entry_page(self, contact: Contact, errors: dict[str, str], *, status_code: int = 200) -> Template:
        return Template(self.entry_template, context={"contact": contact, "errors": errors}, status_code=status_code)

    async def request_code(
        self, request: HTMXRequest, plugin_host: PluginHost, settings: Settings, data: CodeRequest
    ) -> Template | Redirect:
        """Send a code when an account verified the address; the answer is the same when none did."""
        now = plugin_host.clock()
        contact = read_contact(data.contact.strip())
        if contact is None:
            return self.request_page(data, translated(request, {"contact": NOT_A_CONTACT}), status_code=422)
        verdict = await code_sending.may_send([contact], client_address(request), now)
        if not verdict.allowed:
            return self.request_page(data, {}, status_code=429, wait=wait_minutes(verdict.retry_after))
        for key in self.voids:
            request.session.pop(key, None)
        request.session[self.contact_key] = contact.address
        return Redirect(
            self.entry_path,
            status_code=303,
            background=BackgroundTask(
                code_sending.send_if_reachable,
                notices(request, settings, plugin_host),
                contact,
                self.purpose,
                secret_key=settings.secret_key,
                language=I18n.current(),
                now=now,
            ),
        )

    def code_entry_page(self, request: HTMXRequest) -> Template | Redirect:
        contact = self.contact_in(request.session)
        if contact is None:
            return Redirect(self.request_path, status_code=303)
        return self.entry_page(contact, {})

    async def check_code(
        self, request: HTMXRequest, plugin_host: PluginHost, settings: Settings, data: CodeEntry
    ) -> Template | Redirect:
        contact = self.contact_in(request.session)
        if contact is None:
            return Redirect(self.request_path, status_code=303)
        now = plugin_host.clock()
        if not data.code.strip():
            return self.entry_page(contact, translated(request, {"code": ENTER_CODE}), status_code=422)
        account = await account_reached_at(contact)
        redeemed = await codes.redeem(self.purpose, contact.address, data.code, secret_key=settings.secret_key, now=now)
        if account is None or not redeemed:
            if account is not None and self.records_wrong_codes:
                await accounts.record(
                    account["id"],
                    "code",
                    Outcome.WRONG_SECRET,
                    client_address(request),
                    request.headers.get("user-agent", ""),
                    now,
                )
            return self.entry_page(contact, translated(request, {"code": WRONG_CODE}), status_code=422)
        return await self.on_right_code(request, account, now)
