"""The sandbox notifier keeps messages instead of sending them, once per key."""

from __future__ import annotations

import pytest
from carefront_sandbox.notifier import OUTBOX_LIMIT, SandboxNotifier, outbox
from carefront_sdk.errors import Refused
from carefront_sdk.models import Channel, Message


async def test_messages_are_kept_once_per_key_newest_first(notifier: SandboxNotifier) -> None:
    first = await notifier.send(Message(Channel.EMAIL, "pat@example.org", "Code: 111111", "Your code"), "m-1")
    assert await notifier.send(Message(Channel.EMAIL, "pat@example.org", "Code: 111111", "Your code"), "m-1") == first
    await notifier.send(Message(Channel.SMS, "+1 (312) 555-0123", "Code: 222222"), "m-2")
    messages = await outbox()
    assert messages is not None
    assert [message.text for message in messages] == ["Code: 222222", "Code: 111111"]
    assert messages[0].to == "+1 (312) 555-0123"
    assert messages[0].accepted_at.tzinfo is not None


@pytest.mark.parametrize(
    ("channel", "to"),
    [
        (Channel.EMAIL, "no-at-sign"),
        (Channel.EMAIL, "pat@example.invalid"),
        (Channel.SMS, "555-01"),
        (Channel.SMS, "call me"),
    ],
)
async def test_undeliverable_addresses_are_refused(notifier: SandboxNotifier, channel: Channel, to: str) -> None:
    with pytest.raises(Refused) as refusal:
        await notifier.send(Message(channel, to, "hello"), f"bad-{to}")
    assert refusal.value.code == "invalid_address"


async def test_the_outbox_shows_the_latest_hundred(notifier: SandboxNotifier) -> None:
    for n in range(OUTBOX_LIMIT + 5):
        await notifier.send(Message(Channel.SMS, "+13125550123", f"message {n}"), f"bulk-{n}")
    messages = await outbox()
    assert messages is not None
    assert len(messages) == OUTBOX_LIMIT
    assert messages[0].text == f"message {OUTBOX_LIMIT + 4}"
