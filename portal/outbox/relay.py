"""Writing to the outbox and relaying it (PROMISES.md 14).

A domain writes its change and calls :func:`enqueue` in one transaction, so either both are stored or
neither. :func:`relay` then hands each due message to the domain's delivery function — a coroutine
``deliver(host, payload, idempotency_key)`` that calls the adapter with the message's key and records
the acknowledgement in the domain's own tables. A delivery that raises ``Unavailable`` (or anything
unexpected) is retried with exponential back-off and jitter; one that raises ``Refused``, or fails
``max_attempts`` times, is parked and staff are told. Any number of relays may run at once: each
message is leased with a conditional update before it is worked on. A relay takes only the kinds it
can deliver, so during a rolling upgrade an older worker leaves a newer kind to the newer ones.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from carefront_sdk.errors import Refused

from portal.outbox.tables import OutboxMessage

log = logging.getLogger("carefront.outbox")

Delivery = Callable[[Any, Mapping[str, Any], str], Awaitable[None]]
"""``deliver(plugin_host, payload, idempotency_key)``: send one message; return once acknowledged."""

LEASE = timedelta(minutes=2)
FIRST_RETRY = timedelta(seconds=30)
LONGEST_WAIT = timedelta(hours=1)
MAX_ATTEMPTS = 8


async def enqueue(kind: str, payload: Mapping[str, Any], idempotency_key: str, *, now: datetime) -> None:
    """Store a message; call it inside the transaction that writes the change it carries.

    Enqueuing the same key twice keeps the first message: a retried request sends one change.
    """
    await (
        OutboxMessage.insert(
            OutboxMessage(
                kind=kind,
                idempotency_key=idempotency_key,
                payload=json.dumps(dict(payload), sort_keys=True),
                state="pending",
                due_at=now,
                created_at=now,
            )
        )
        .on_conflict(target=OutboxMessage.idempotency_key, action="DO NOTHING")
        .run()
    )


async def state_of(idempotency_key: str) -> str | None:
    """pending, delivered or parked; None when there is no such message."""
    row = (
        await OutboxMessage.select(OutboxMessage.state)
        .where(OutboxMessage.idempotency_key == idempotency_key)
        .first()
        .run()
    )
    return row["state"] if row else None


def back_off(attempts: int, *, jitter: Callable[[], float] = random.random) -> timedelta:
    """How long to wait after the ``attempts``-th failure: doubling from 30 s, at most an hour, jittered
    between half and all of it so that many messages failing together do not retry together."""
    ceiling = min(FIRST_RETRY * (2 ** (attempts - 1)), LONGEST_WAIT)
    return ceiling * (0.5 + jitter() / 2)


@dataclass(frozen=True, slots=True)
class RelayResult:
    delivered: int = 0
    retrying: int = 0
    parked: int = 0


Parked = Callable[[str, str, str], Awaitable[None]]
"""``told(kind, idempotency_key, error)``: tell staff a message was given up on."""


async def relay(
    host: Any,
    deliveries: Mapping[str, Delivery],
    *,
    now: datetime,
    on_parked: Parked,
    limit: int = 50,
    max_attempts: int = MAX_ATTEMPTS,
) -> RelayResult:
    """Deliver up to ``limit`` due messages once each."""
    candidates = (
        await OutboxMessage.select(OutboxMessage.id)
        .where(
            (OutboxMessage.state == "pending")
            & OutboxMessage.kind.is_in(list(deliveries) or [""])
            & (OutboxMessage.due_at <= now)
            & (OutboxMessage.leased_until.is_null() | (OutboxMessage.leased_until < now))
        )
        .order_by(OutboxMessage.due_at)
        .limit(limit)
        .run()
    )
    delivered = retrying = parked = 0
    for candidate in candidates:
        message = await _lease(candidate["id"], now)
        if message is None:
            continue  # another relay took it
        outcome = await _deliver(host, deliveries, message, now, on_parked, max_attempts)
        delivered += outcome == "delivered"
        retrying += outcome == "pending"
        parked += outcome == "parked"
    return RelayResult(delivered, retrying, parked)


async def _lease(message_id: int, now: datetime) -> dict[str, Any] | None:
    rows = (
        await OutboxMessage.update({OutboxMessage.leased_until: now + LEASE})
        .where(
            (OutboxMessage.id == message_id)
            & (OutboxMessage.state == "pending")
            & (OutboxMessage.leased_until.is_null() | (OutboxMessage.leased_until < now))
        )
        .returning(*OutboxMessage.all_columns())
        .run()
    )
    return rows[0] if rows else None


async def _deliver(
    host: Any,
    deliveries: Mapping[str, Delivery],
    message: dict[str, Any],
    now: datetime,
    on_parked: Parked,
    max_attempts: int,
) -> str:
    attempts = message["attempts"] + 1
    try:
        await deliveries[message["kind"]](host, json.loads(message["payload"]), message["idempotency_key"])
    except Refused as refusal:
        return await _park(message, attempts, f"refused: {refusal.code}", on_parked)
    except Exception as error:  # any failure is retried; the error is kept for staff
        problem = f"{type(error).__name__}: {error}"[:500]
        if attempts >= max_attempts:
            return await _park(message, attempts, problem, on_parked)
        log.warning("%s %s failed (try %d), will retry: %s", message["kind"], message["id"], attempts, problem)
        await (
            OutboxMessage.update(
                {
                    OutboxMessage.attempts: attempts,
                    OutboxMessage.due_at: now + back_off(attempts),
                    OutboxMessage.leased_until: None,
                    OutboxMessage.last_error: problem,
                }
            )
            .where(OutboxMessage.id == message["id"])
            .run()
        )
        return "pending"
    await (
        OutboxMessage.update(
            {
                OutboxMessage.state: "delivered",
                OutboxMessage.attempts: attempts,
                OutboxMessage.delivered_at: now,
                OutboxMessage.leased_until: None,
                OutboxMessage.last_error: "",
            }
        )
        .where(OutboxMessage.id == message["id"])
        .run()
    )
    return "delivered"


async def _park(message: dict[str, Any], attempts: int, problem: str, on_parked: Parked) -> str:
    log.error("%s %s parked after %d tries: %s", message["kind"], message["id"], attempts, problem)
    await (
        OutboxMessage.update(
            {
                OutboxMessage.state: "parked",
                OutboxMessage.attempts: attempts,
                OutboxMessage.leased_until: None,
                OutboxMessage.last_error: problem,
            }
        )
        .where(OutboxMessage.id == message["id"])
        .run()
    )
    await on_parked(message["kind"], message["idempotency_key"], problem)
    return "parked"
