"""The emails a plan sends: confirmations of every change, reminders before an installment, and
notices of a decline, a missed installment or a default — each in its holder's language, each sent
once through the outbox (the notifier gets the outbox message's key) and recorded in PlanNotice.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision
from babel.support import NullTranslations
from carefront_sdk.models import Channel, Message

from portal.i18n import N_, load_catalogs
from portal.identity import accounts
from portal.outbox.relay import Delivery
from portal.plans.agreements import NOTICE, parse_uuid
from portal.plans.tables import PaymentPlan, PlanNotice
from portal.plugin_host import PluginHost

SUBJECTS = {
    "created": N_("Your payment plan is set up"),
    "autopay_started": N_("Automatic payments are on for your plan"),
    "method_changed": N_("Your plan's payment method was changed"),
    "day_changed": N_("Your payment plan was changed"),
    "amount_changed": N_("Your payment plan was changed"),
    "statement_added": N_("A statement was added to your payment plan"),
    "extended": N_("Your payment plan was changed"),
    "skipped": N_("Your payment plan was changed"),
    "paused": N_("Your payment plan is paused"),
    "resumed": N_("Your payment plan is active again"),
    "cancelled": N_("Your payment plan was cancelled"),
    "completed": N_("Your payment plan is paid in full"),
    "defaulted": N_("Your payment plan has ended: please call us"),
    "reminder": N_("A payment plan installment is coming up"),
    "declined": N_("We could not charge your plan installment"),
    "missed": N_("A payment plan installment was missed"),
}
TEXTS = {
    "created": N_(
        "Thank you. Your payment plan with %(hospital)s is set up. You can see every installment at %(link)s."
    ),
    "autopay_started": N_("From now on each installment is charged automatically to %(method)s on its date."),
    "method_changed": N_("From now on each installment is charged to %(method)s."),
    "day_changed": N_("Your installments are now due on day %(day)s of each month. See the new schedule at %(link)s."),
    "amount_changed": N_("The amount of your installments changed. See the new schedule at %(link)s."),
    "statement_added": N_("A new statement was added to your plan and the schedule was updated. See it at %(link)s."),
    "extended": N_("Your plan now has more installments. See the new schedule at %(link)s."),
    "skipped": N_("Your next installment moved one month later, and the ones after it too. See %(link)s."),
    "paused": N_("Nothing will be charged until the billing office resumes your plan."),
    "resumed": N_("Your plan is active again. See the new schedule at %(link)s."),
    "cancelled": N_("Your plan was cancelled. Nothing more will be charged; what is left is owed on your statements."),
    "completed": N_("You have paid everything in your plan. Thank you."),
    "defaulted": N_(
        "Too many installments were missed, so your plan has ended and what is left is due. "
        "Please call the billing office to talk about what you can pay."
    ),
    "reminder": N_("An installment of %(amount)s is due on %(day)s."),
    "declined": N_("We could not charge your installment of %(amount)s due on %(day)s: %(message)s"),
    "missed": N_("Your installment of %(amount)s due on %(day)s was not paid. Please pay it at %(link)s."),
}
REMINDER_AUTOPAY = N_("It will be charged automatically to your saved card. You do not need to do anything.")
REMINDER_BY_HAND = N_("Please pay it at %(link)s.")
RETRY = N_("We will try again on %(retry)s. To use another card, change it at %(link)s.")
NO_RETRY = N_("Please pay it yourself at %(link)s.")
QUESTIONS = N_("Questions about your plan? Call the billing office at %(phone)s.")


@functools.cache
def _catalogs(languages: tuple[str, ...]) -> Mapping[str, NullTranslations]:
    return load_catalogs(languages)


def compose(
    host: PluginHost, plan: Mapping[str, Any], kind: str, values: Mapping[str, Any], language: str, to: str
) -> Message:
    """The message about ``plan`` of ``kind``, in ``language``."""
    hospital = host.settings.hospital
    gettext = _catalogs(tuple(hospital.languages)).get(language, NullTranslations()).gettext
    currency = plan["currency"]

    def money(amount: int) -> str:
        return format_currency(Decimal(amount).scaleb(-get_currency_precision(currency)), currency, locale=language)

    def day(text: str) -> str:
        return format_date(date.fromisoformat(text), format="long", locale=language)

    filled = {
        "hospital": hospital.name,
        "phone": hospital.billing_phone,
        "link": f"{host.settings.public_url}/plans/{plan['public_id']}",
        "method": plan["method_summary"] or "",
        "day": day(values["due_on"]) if "due_on" in values else values.get("day", plan["day_of_month"]),
        "amount": money(values["amount"]) if "amount" in values else "",
        "message": values.get("message", ""),
        "retry": day(values["retry_on"]) if values.get("retry_on") else "",
    }
    paragraphs = [gettext(TEXTS[kind]) % filled]
    if kind == "reminder":
        paragraphs.append(gettext(REMINDER_AUTOPAY if values.get("autopay") else REMINDER_BY_HAND) % filled)
    if kind == "declined":
        paragraphs.append(gettext(RETRY if values.get("retry_on") else NO_RETRY) % filled)
    paragraphs.append(gettext(QUESTIONS) % filled)
    return Message(
        channel=Channel.EMAIL,
        to=to,
        subject=gettext(SUBJECTS[kind]),
        text="\n\n".join(paragraphs),
        language=language,
    )


async def deliver_notice(host: PluginHost, payload: Mapping[str, Any], idempotency_key: str) -> None:
    """Send one plan notice to the plan's holder (when they have a verified email) and record it."""
    plan = await PaymentPlan.select().where(PaymentPlan.public_id == uuid.UUID(payload["plan"])).first().run()
    if plan is None:
        raise LookupError("the plan of an outbox message is gone")
    if await PlanNotice.exists().where(PlanNotice.idempotency_key == idempotency_key).run():
        return
    holder = await accounts.find(plan["holder_account_id"]) if parse_uuid(plan["holder_account_id"]) else None
    reference = None
    if holder and holder["email"] and holder["email_verified_at"]:
        languages = host.settings.hospital.languages
        language = holder["language"] if holder["language"] in languages else host.settings.hospital.default_language
        message = compose(host, plan, payload["kind"], payload.get("values") or {}, language, holder["email"])
        delivery = await host.notifier.send(message, idempotency_key=idempotency_key)
        reference = delivery.reference
    await (
        PlanNotice.insert(
            PlanNotice(
                idempotency_key=idempotency_key,
                plan=plan["id"],
                kind=payload["kind"][:32],
                delivery_reference=reference,
                sent_at=host.clock(),
            )
        )
        .on_conflict(target=PlanNotice.idempotency_key, action="DO NOTHING")
        .run()
    )


DELIVERIES: dict[str, Delivery] = {NOTICE: deliver_notice}
"""The plans domain's outbox messages, merged into portal.jobs.DELIVERIES."""
