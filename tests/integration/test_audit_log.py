"""PROMISES.md 8: the audit log is append-only and hash-chained; editing a row breaks the chain."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from piccolo.engine.postgres import PostgresEngine

from portal.audit import log
from portal.audit.tables import AuditEvent

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def entry(n: int) -> log.Entry:
    return log.Entry(
        actor=f"account:test-{n}",
        actor_role="representative",
        action="statement.read",
        outcome="allowed",
        acting_as="pt-1",
        subject=f"st-{n}",
        address="127.0.0.1",
        detail={"reason": "caller asked about a charge"},
    )


async def test_appended_rows_form_an_intact_chain(app):
    before = await log.verify()
    assert before.intact
    for n in range(5):
        await log.append(entry(n), NOW + timedelta(seconds=n))
    after = await log.verify()
    assert after.intact
    assert after.rows == before.rows + 5


async def test_concurrent_writers_extend_one_chain(app):
    await asyncio.gather(*(log.append(entry(100 + n), NOW) for n in range(20)))
    verdict = await log.verify()
    assert verdict.intact, verdict.reason


async def test_the_database_refuses_to_change_or_delete_a_row(app):
    await log.append(entry(200), NOW)
    with pytest.raises(Exception, match="append-only"):
        await AuditEvent.update({AuditEvent.outcome: "denied"}, force=True).run()
    with pytest.raises(Exception, match="append-only"):
        await AuditEvent.delete(force=True).run()
    assert (await log.verify()).intact


async def test_an_edited_row_breaks_the_chain_at_that_row(app):
    """An attacker with the database owner's rights drops the guard, edits a row, and is found out."""
    await log.append(entry(300), NOW)
    await log.append(entry(301), NOW)
    last = await AuditEvent.select(AuditEvent.id).order_by(AuditEvent.id, ascending=False).first().run()
    await log.append(entry(302), NOW)
    engine = AuditEvent._meta.db
    postgres = isinstance(engine, PostgresEngine)
    drop = (
        ["ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_change"]
        if postgres
        else ["DROP TRIGGER audit_event_no_update"]
    )
    restore = (
        ["ALTER TABLE audit_event ENABLE TRIGGER audit_event_no_change"]
        if postgres
        else [
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
            "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"
        ]
    )
    for statement in drop:
        await engine.run_ddl(statement)
    try:
        await AuditEvent.update({AuditEvent.subject: "st-999"}).where(AuditEvent.id == last["id"]).run()
        verdict = await log.verify()
        assert not verdict.intact
        assert verdict.first_broken_id == last["id"]
        assert "contents changed" in verdict.reason
        # Put the row back as it was, so the shared test database's chain is whole again.
        await AuditEvent.update({AuditEvent.subject: "st-301"}).where(AuditEvent.id == last["id"]).run()
        assert (await log.verify()).intact
    finally:
        for statement in restore:
            await engine.run_ddl(statement)


async def test_a_denied_request_writes_one_audit_row(client, session_as):
    before = await AuditEvent.count().run()
    await session_as("patient")
    response = await client.get("/-/plugins/")
    assert response.status_code == 403
    rows = await AuditEvent.select().order_by(AuditEvent.id, ascending=False).limit(1).output(load_json=True).run()
    assert await AuditEvent.count().run() == before + 1
    (row,) = rows
    assert row["action"] == "request.denied"
    assert row["outcome"] == "denied"
    assert row["actor_role"] == "patient"
    assert row["detail"] == {"status": "403", "method": "GET", "route": "/-/plugins"}


async def test_an_anonymous_denial_and_an_unknown_path(client):
    before = await AuditEvent.count().run()
    assert (await client.get("/-/plugins/", follow_redirects=False)).status_code in {302, 303, 401}
    assert (await client.get("/no/such/page")).status_code == 404
    rows = await AuditEvent.select().where(AuditEvent.id > 0).order_by(AuditEvent.id, ascending=False).limit(1).run()
    assert await AuditEvent.count().run() == before + 1, "an unknown path is not a denial"
    assert rows[0]["actor"] == "anonymous"
