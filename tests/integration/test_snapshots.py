"""PROMISES.md 15: with the EHR down, pages render from the last copy read, marked with its time."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from carefront_sdk import codec
from carefront_sdk.errors import Unavailable
from carefront_sdk.models import Money, StatementSummary

from portal.snapshots.service import FRESH_FOR, forget, read_through
from portal.snapshots.tables import Snapshot

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def summary(balance: int) -> StatementSummary:
    return StatementSummary(
        id="st-1",
        patient_id="pt-1",
        account_number="A-1",
        statement_code="ABC123",
        issued_on=NOW.date(),
        due_on=NOW.date() + timedelta(days=30),
        total_charged=Money(balance),
        insurance_paid=Money(0),
        adjustments=Money(0),
        patient_paid=Money(0),
        balance=Money(balance),
    )


class EHR:
    """Answers with a growing balance, or not at all while ``down``."""

    def __init__(self) -> None:
        self.calls = 0
        self.down = False

    async def statements(self) -> tuple[StatementSummary, ...]:
        self.calls += 1
        if self.down:
            raise Unavailable("the EHR is not answering")
        return (summary(1000 * self.calls),)


KIND = tuple[StatementSummary, ...]


@pytest.fixture
def key() -> str:
    return f"statements:test-{secrets.token_hex(4)}"


async def test_a_fresh_copy_is_answered_without_asking_again(app, key):
    ehr = EHR()
    first = await read_through(key, KIND, ehr.statements, now=NOW)
    again = await read_through(key, KIND, ehr.statements, now=NOW + FRESH_FOR - timedelta(seconds=1))
    assert ehr.calls == 1
    assert again.value == first.value == (summary(1000),)
    assert again.as_of == NOW
    assert not again.stale


async def test_an_old_copy_is_read_afresh(app, key):
    ehr = EHR()
    await read_through(key, KIND, ehr.statements, now=NOW)
    later = NOW + FRESH_FOR
    read = await read_through(key, KIND, ehr.statements, now=later)
    assert ehr.calls == 2
    assert read.value == (summary(2000),)
    assert read.as_of == later


async def test_with_the_ehr_down_the_last_copy_is_answered_as_stale(app, key):
    ehr = EHR()
    await read_through(key, KIND, ehr.statements, now=NOW)
    ehr.down = True
    read = await read_through(key, KIND, ehr.statements, now=NOW + timedelta(days=2))
    assert read.stale
    assert read.as_of == NOW
    assert read.value == (summary(1000),)


async def test_with_the_ehr_down_and_no_copy_the_page_learns_it_is_unavailable(app, key):
    ehr = EHR()
    ehr.down = True
    with pytest.raises(Unavailable):
        await read_through(key, KIND, ehr.statements, now=NOW)


async def test_a_forgotten_copy_is_read_afresh_at_once(app, key):
    ehr = EHR()
    await read_through(key, KIND, ehr.statements, now=NOW)
    await forget(key)
    read = await read_through(key, KIND, ehr.statements, now=NOW)
    assert ehr.calls == 2
    assert read.value == (summary(2000),)


async def test_a_fresh_copy_is_decoded_once_per_process_until_it_changes(app, key, monkeypatch):
    ehr = EHR()
    await read_through(key, KIND, ehr.statements, now=NOW)
    decoded = []
    real = codec.from_plain
    monkeypatch.setattr(codec, "from_plain", lambda kind, data: decoded.append(kind) or real(kind, data))
    first = await read_through(key, KIND, ehr.statements, now=NOW + timedelta(seconds=1))
    again = await read_through(key, KIND, ehr.statements, now=NOW + timedelta(seconds=2))
    assert again.value is first.value, "the copy this process kept (or decoded) is the one answered"
    assert decoded == []
    # Another process read the EHR again: the row's moment moves, and this process decodes the new copy.
    await Snapshot.update({Snapshot.read_at: NOW + timedelta(seconds=3)}).where(Snapshot.key == key).run()
    newer = await read_through(key, KIND, ehr.statements, now=NOW + timedelta(seconds=4))
    assert decoded == [KIND]
    assert newer.value == first.value
    assert newer.value is not first.value
    await forget(key)
    assert (await read_through(key, KIND, ehr.statements, now=NOW + timedelta(seconds=5))).value == (summary(2000),)
