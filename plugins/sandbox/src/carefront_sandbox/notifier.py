"""The sandbox notifier: email and text messages are kept in the sandbox file, never sent.

Demo visitors read them, one-time codes included, on the outbox page at ``/-/sandbox/outbox``.
Addresses it will never deliver to are refused as a real provider would: an email address that
is not ``name@domain.tld`` or whose domain ends in ``.invalid`` (reserved by RFC 2606), and a
phone number that is not 10 to 15 digits.
"""

from __future__ import annotations

import re
import sqlite3
import weakref
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from carefront_sdk.adapters import AdapterContext
from carefront_sdk.errors import Refused
from carefront_sdk.models import Channel, Delivery, Message

from carefront_sandbox.base import SandboxAdapter
from carefront_sandbox.identifiers import format_id

__all__ = ["OUTBOX_LIMIT", "OutboxMessage", "SandboxNotifier", "make_notifier", "outbox"]

OUTBOX_LIMIT = 100
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    channel: str
    to: str
    subject: str
    text: str
    accepted_at: datetime


class SandboxNotifier(SandboxAdapter):
    """The notifier port: an outbox in the sandbox file."""

    channels = frozenset({Channel.EMAIL, Channel.SMS})

    def __init__(self, context: AdapterContext) -> None:
        super().__init__(context, "notifier")
        _LIVE[self._store.path] = weakref.ref(self)

    async def send(self, message: Message, idempotency_key: str) -> Delivery:
        """Keep the message in the outbox; the same key keeps it once."""
        await self._pause()
        to = message.to.strip()
        if message.channel is Channel.EMAIL and (not _EMAIL.fullmatch(to) or to.lower().endswith(".invalid")):
            raise Refused("invalid_address", "That email address cannot receive mail.")
        if message.channel is Channel.SMS:
            digits = re.sub(r"[\s().-]", "", to).removeprefix("+")
            if not (digits.isdigit() and digits.isascii() and 10 <= len(digits) <= 15):
                raise Refused("invalid_address", "That phone number cannot receive text messages.")

        def work(db: sqlite3.Connection) -> Delivery:
            accepted_at = self._now()
            cursor = db.execute(
                "INSERT INTO messages (channel, recipient, subject, text, html, language, accepted_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    message.channel.value,
                    to,
                    message.subject,
                    message.text,
                    message.html,
                    message.language,
                    accepted_at.isoformat(),
                ),
            )
            return Delivery(format_id("msg", int(cursor.lastrowid or 0)), accepted_at)

        delivery: Delivery = await self._store.once("notifier.send", idempotency_key, message, Delivery, work)
        return delivery

    async def recent(self) -> list[OutboxMessage]:
        """The newest messages first, at most :data:`OUTBOX_LIMIT`."""
        rows = await self._store.read(
            lambda db: db.execute(
                "SELECT channel, recipient, subject, text, accepted_at FROM messages ORDER BY id DESC LIMIT ?",
                (OUTBOX_LIMIT,),
            ).fetchall()
        )
        zone = self._zone
        return [
            OutboxMessage(row[0], row[1], row[2], row[3], datetime.fromisoformat(row[4]).astimezone(zone))
            for row in rows
        ]


# The outbox page finds the notifier here: a route handler cannot be handed an adapter instance.
_LIVE: dict[Path, weakref.ref[SandboxNotifier]] = {}


async def outbox() -> list[OutboxMessage] | None:
    """The newest messages of this process's sandbox notifier, or None when none is in use."""
    for ref in reversed(list(_LIVE.values())):
        notifier = ref()
        if notifier is not None:
            return await notifier.recent()
    return None


def make_notifier(context: AdapterContext) -> SandboxNotifier:
    """The adapter factory registered as the ``sandbox`` notifier."""
    return SandboxNotifier(context)
