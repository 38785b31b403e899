"""Settling payments whose outcome never reached the portal.

The return page and the webhook settle a payment; when the patient closes the tab on the gateway's
page and the webhook is lost (or the gateway sends none, as the sandbox's), the attempt would stay
open or processing and the money would never be posted to the EHR. This job asks the gateway about
such attempts — once they are a few minutes old, at most every few minutes each, for as long as a
checkout can still be finished — and settles them exactly as the return page would.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from carefront_sdk.errors import NotFound, Unavailable

from portal.payments.settlement import Change, announce, settle
from portal.payments.tables import PaymentAttempt
from portal.plugin_host import PluginHost
from portal.settings import Settings

log = logging.getLogger("carefront.payments")

LEFT_ALONE_FOR = timedelta(minutes=2)
"""The patient may still be on the gateway's page: the return page settles it then."""
ASKED_EVERY = timedelta(minutes=5)
GIVEN_UP_AFTER = timedelta(hours=25)
"""Hosted checkouts expire after a day; an attempt older than that can no longer be paid."""
BATCH = 50


async def settle_unfinished(host: PluginHost, settings: Settings, now: datetime) -> int:
    """Ask the gateway about unfinished attempts; return how many changed."""
    rows = (
        await PaymentAttempt.select()
        .where(
            PaymentAttempt.status.is_in(["open", "processing"])
            & PaymentAttempt.checkout_reference.is_not_null()
            & (PaymentAttempt.created_at < now - LEFT_ALONE_FOR)
            & (PaymentAttempt.created_at > now - GIVEN_UP_AFTER)
            & (PaymentAttempt.checked_at.is_null() | (PaymentAttempt.checked_at < now - ASKED_EVERY))
        )
        .order_by(PaymentAttempt.created_at)
        .limit(BATCH)
        .run()
    )
    changed = 0
    for attempt in rows:
        # Claimed by a conditional update, so two workers do not both ask about the same attempt.
        claimed = (
            await PaymentAttempt.update({PaymentAttempt.checked_at: now})
            .where(
                (PaymentAttempt.id == attempt["id"])
                & (PaymentAttempt.checked_at.is_null() | (PaymentAttempt.checked_at < now - ASKED_EVERY))
            )
            .returning(PaymentAttempt.id)
            .run()
        )
        if not claimed:
            continue
        try:
            payment = await host.gateway.read_payment(attempt["checkout_reference"])
        except (NotFound, Unavailable) as error:
            log.warning(
                "payment %s: could not ask the gateway (%s); asking again later",
                attempt["public_id"],
                type(error).__name__,
            )
            continue
        # Only a patient who finished the gateway's page makes a pending payment money in flight.
        settled = await settle(attempt, payment, now=now, in_flight=attempt["status"] == "processing")
        if settled.change is Change.SUCCEEDED:
            announce(host, settled.attempt)
        changed += settled.change is not Change.NONE
    return changed
