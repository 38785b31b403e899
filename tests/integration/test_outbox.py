"""PROMISES.md 14: changes bound for other systems are written with the change, relayed until
acknowledged, retried with back-off and jitter, and parked (staff told) when they keep failing."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import carefront_sandbox.hooks
import pytest
from asgi_lifespan import LifespanManager
from carefront_sdk.errors import Refused, Unavailable

from portal import jobs
from portal.app import create_app
from portal.database import transaction
from portal.outbox.relay import FIRST_RETRY, LONGEST_WAIT, back_off, enqueue, relay, state_of
from portal.outbox.tables import OutboxMessage

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


class Receiver:
    """A delivery that fails ``failures`` times with ``error`` and then accepts, remembering each key."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or Unavailable("the EHR is not answering")
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.tries = 0

    async def __call__(self, host: Any, payload: Mapping[str, Any], idempotency_key: str) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise self.error
        await asyncio.sleep(0)  # let concurrent relays interleave here
        self.received.append((idempotency_key, dict(payload)))


class Staff:
    def __init__(self) -> None:
        self.told: list[tuple[str, str, str]] = []

    async def __call__(self, kind: str, key: str, problem: str) -> None:
        self.told.append((kind, key, problem))


@pytest.fixture
def kind() -> str:
    """A message kind of this test's own, so rows of other tests are never delivered here."""
    return f"test.{secrets.token_hex(4)}"


async def _only(kind: str) -> dict[str, Any]:
    (row,) = await OutboxMessage.select().where(OutboxMessage.kind == kind).run()
    return row


async def test_a_message_is_delivered_once_with_its_key(app, kind):
    receiver, staff = Receiver(), Staff()
    await enqueue(kind, {"payment": "pay-1"}, f"{kind}:1", now=NOW)
    result = await relay(None, {kind: receiver}, now=NOW, on_parked=staff)
    assert result.delivered >= 1
    assert receiver.received == [(f"{kind}:1", {"payment": "pay-1"})]
    assert await state_of(f"{kind}:1") == "delivered"
    await relay(None, {kind: receiver}, now=NOW + timedelta(hours=1), on_parked=staff)
    assert len(receiver.received) == 1


async def test_enqueuing_one_key_twice_keeps_one_message(app, kind):
    await enqueue(kind, {"n": 1}, f"{kind}:same", now=NOW)
    await enqueue(kind, {"n": 2}, f"{kind}:same", now=NOW)
    row = await _only(kind)
    assert json.loads(row["payload"]) == {"n": 1}


async def test_a_rolled_back_change_leaves_no_message(app, kind):
    async def change_that_fails() -> None:
        async with transaction():
            await enqueue(kind, {"n": 1}, f"{kind}:lost", now=NOW)
            raise RuntimeError("the change itself failed")

    with pytest.raises(RuntimeError):
        await change_that_fails()
    assert await state_of(f"{kind}:lost") is None


async def test_an_unavailable_system_is_retried_later_with_back_off(app, kind):
    receiver, staff = Receiver(failures=2), Staff()
    await enqueue(kind, {}, f"{kind}:retry", now=NOW)
    await relay(None, {kind: receiver}, now=NOW, on_parked=staff)
    first = await _only(kind)
    assert first["state"] == "pending"
    assert first["attempts"] == 1
    assert "not answering" in first["last_error"]
    wait = first["due_at"] - NOW
    assert FIRST_RETRY / 2 <= wait <= FIRST_RETRY
    await relay(None, {kind: receiver}, now=NOW + wait - timedelta(seconds=1), on_parked=staff)
    assert receiver.tries == 1, "not retried before it is due"
    await relay(None, {kind: receiver}, now=first["due_at"], on_parked=staff)
    second = await _only(kind)
    assert second["attempts"] == 2
    assert second["due_at"] - first["due_at"] >= FIRST_RETRY  # doubled, then jittered down at most by half
    await relay(None, {kind: receiver}, now=second["due_at"], on_parked=staff)
    assert await state_of(f"{kind}:retry") == "delivered"
    assert receiver.received == [(f"{kind}:retry", {})]
    assert staff.told == []


async def test_a_message_that_keeps_failing_is_parked_and_staff_are_told(app, kind):
    receiver, staff = Receiver(failures=100), Staff()
    await enqueue(kind, {}, f"{kind}:doomed", now=NOW)
    moment = NOW
    for _ in range(3):
        await relay(None, {kind: receiver}, now=moment, on_parked=staff, max_attempts=3)
        moment = (await _only(kind))["due_at"]
    row = await _only(kind)
    assert row["state"] == "parked"
    assert row["attempts"] == 3
    assert staff.told == [(kind, f"{kind}:doomed", row["last_error"])]
    await relay(None, {kind: receiver}, now=moment + timedelta(days=1), on_parked=staff, max_attempts=3)
    assert receiver.tries == 3, "a parked message is not tried again"


async def test_a_refusal_is_parked_at_once(app, kind):
    receiver, staff = Receiver(failures=1, error=Refused("account_closed", "The account is closed.")), Staff()
    await enqueue(kind, {}, f"{kind}:refused", now=NOW)
    await relay(None, {kind: receiver}, now=NOW, on_parked=staff)
    row = await _only(kind)
    assert row["state"] == "parked"
    assert row["last_error"] == "refused: account_closed"
    assert len(staff.told) == 1


async def test_concurrent_relays_deliver_each_message_once(app, kind):
    receiver, staff = Receiver(), Staff()
    for n in range(30):
        await enqueue(kind, {"n": n}, f"{kind}:{n}", now=NOW)
    await asyncio.gather(*(relay(None, {kind: receiver}, now=NOW, on_parked=staff, limit=100) for _ in range(4)))
    keys = [key for key, _ in receiver.received]
    assert sorted(keys) == sorted(f"{kind}:{n}" for n in range(30))


async def test_a_crashed_relays_lease_runs_out_and_another_delivers(app, kind):
    receiver, staff = Receiver(), Staff()
    await enqueue(kind, {}, f"{kind}:leased", now=NOW)
    await (
        OutboxMessage.update({OutboxMessage.leased_until: NOW + timedelta(minutes=2)})
        .where(OutboxMessage.kind == kind)
        .run()
    )  # as a relay that died mid-delivery left it
    await relay(None, {kind: receiver}, now=NOW + timedelta(minutes=1), on_parked=staff)
    assert receiver.received == []
    await relay(None, {kind: receiver}, now=NOW + timedelta(minutes=3), on_parked=staff)
    assert receiver.received == [(f"{kind}:leased", {})]


async def test_a_relay_leaves_kinds_it_cannot_deliver_to_relays_that_can(app, kind):
    """During a rolling upgrade an older worker must not give up on a kind only newer code knows."""
    staff, receiver = Staff(), Receiver()
    await enqueue(kind, {}, f"{kind}:newer", now=NOW)
    await relay(None, {"some.other.kind": receiver}, now=NOW, on_parked=staff)
    row = await _only(kind)
    assert (row["state"], row["attempts"]) == ("pending", 0)
    await relay(None, {kind: receiver}, now=NOW, on_parked=staff)
    assert receiver.received == [(f"{kind}:newer", {})]


def test_back_off_doubles_up_to_an_hour_and_is_jittered():
    assert back_off(1, jitter=lambda: 1.0) == FIRST_RETRY
    assert back_off(1, jitter=lambda: 0.0) == FIRST_RETRY / 2
    assert back_off(3, jitter=lambda: 1.0) == FIRST_RETRY * 4
    assert back_off(30, jitter=lambda: 1.0) == LONGEST_WAIT


async def test_the_outbox_job_tells_the_alerts_address_when_it_parks(app, settings, kind, monkeypatch):
    host = app.state["plugin_host"]
    alerts = f"billing-office-{secrets.token_hex(3)}@example.org"
    configured = replace(
        settings,
        hospital=replace(settings.hospital, alerts_email=alerts),
        jobs=replace(settings.jobs, outbox_max_attempts=1),
    )
    monkeypatch.setitem(jobs.DELIVERIES, kind, Receiver(failures=5))  # type: ignore[index]
    await enqueue(kind, {}, f"{kind}:alert", now=host.clock())
    await jobs.run_once(host, configured)
    assert await state_of(f"{kind}:alert") == "parked"
    (message,) = [message for message in await host.notifier.recent() if message.to == alerts]
    assert kind in message.subject
    assert f"{kind}:alert" in message.text


async def test_the_embedded_portal_relays_in_the_background(settings, kind, monkeypatch):
    """One process on SQLite needs no worker: the web app runs the jobs beside itself."""
    receiver = Receiver()
    monkeypatch.setitem(jobs.DELIVERIES, kind, receiver)  # type: ignore[index]
    embedded = replace(settings, jobs=replace(settings.jobs, in_process=True, interval_seconds=0.05))
    application = create_app(embedded, plugins=[("sandbox", carefront_sandbox.hooks)])
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        await enqueue(kind, {}, f"{kind}:background", now=application.state["plugin_host"].clock())
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
    assert receiver.received == [(f"{kind}:background", {})]
