"""The audit trail for supervisors and administrators: filters, pages, a CSV export guarded against
spreadsheet formulas; failed sign-ins are in it; representatives and patients cannot read it; and on
PostgreSQL no role but the table's owner holds the right to change a row."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from piccolo.engine.postgres import PostgresEngine

from portal.audit.log import Entry, append
from portal.audit.tables import AuditEvent
from portal.audit.viewer import csv_cell
from portal.identity.passwords import hash_password
from tests.integration.console_support import as_patient, as_staff, patient_account, post, staff_account


async def test_the_viewer_filters_by_staff_patient_action_and_day(portal, clock, browser):
    representative = await staff_account(clock.now)
    supervisor = await staff_account(clock.now, role="supervisor")
    async with browser(portal) as client:
        await as_staff(portal, client, representative, clock.now)
        await client.get("/console/patients/pt-41")
        await client.get("/console/patients/pt-42")
    async with browser(portal) as client:
        await as_staff(portal, client, supervisor, clock.now)
        staff_filter = f"staff={representative['public_id']}"
        everything = (await client.get(f"/console/audit?{staff_filter}")).text
        assert everything.count("patient.open") >= 2
        assert f"Fatima {representative['family_name']}" in everything
        one = (await client.get(f"/console/audit?{staff_filter}&patient=pt-41&action=patient.open")).text
        assert "pt-41" in one
        assert "pt-42" not in one.split("<tbody>")[1]
        today = clock.now.date()
        later = (await client.get(f"/console/audit?{staff_filter}&since={today + timedelta(days=2)}")).text
        assert "No row matches these filters." in later
        bad = await client.get(f"/console/audit?{staff_filter}&since=yesterday")
        assert bad.status_code == 200
        assert "A date was not understood" in bad.text


async def test_the_csv_has_every_matching_row_and_no_formula(portal, clock, browser):
    administrator = await staff_account(clock.now, role="administrator")
    await append(
        Entry(actor="anonymous", actor_role="anonymous", action="csv.check", outcome="ok", subject="=HYPERLINK(1)"),
        clock.now,
    )
    async with browser(portal) as client:
        await as_staff(portal, client, administrator, clock.now)
        answer = await client.get("/console/audit/export.csv?action=csv.check")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(answer.text)))
    assert rows[0][:5] == ["occurred_at", "actor", "actor_role", "acting_as", "action"]
    assert len(rows) >= 2
    assert all(row[4] == "csv.check" for row in rows[1:])
    assert all(row[5] == "'=HYPERLINK(1)" for row in rows[1:])


def test_cells_that_start_like_a_formula_are_made_text():
    assert [csv_cell(value) for value in ("=1+1", "+1", "-1", "@SUM(A1)", "plain", None)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "plain",
        "",
    ]


async def test_representatives_and_patients_cannot_read_the_trail(portal, clock, browser):
    representative = await staff_account(clock.now)
    patient = await patient_account("pt-43", clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, representative, clock.now)
        assert (await client.get("/console/audit")).status_code == 403
        assert (await client.get("/console/audit/export.csv")).status_code == 403
    async with browser(portal) as client:
        await as_patient(portal, client, patient, clock.now)
        assert (await client.get("/console/audit")).status_code == 403


async def test_a_failed_sign_in_is_in_the_audit_log(portal, clock, browser):
    account = await patient_account("pt-44", clock.now, password_hash=hash_password("the right passphrase"))
    async with browser(portal) as client:
        answer = await post(client, "/sign-in", {"email": account["email"], "password": "a wrong one"}, "/sign-in")
        assert answer.status_code in {200, 422}
    rows = (
        await AuditEvent.select()
        .where((AuditEvent.actor == f"account:{account['public_id']}") & (AuditEvent.action == "sign_in"))
        .run()
    )
    assert [(row["outcome"], row["detail"]) for row in rows] == [("wrong_secret", '{"method": "password"}')]


async def test_on_postgresql_no_other_role_may_change_audit_rows(portal, database_backend):
    if database_backend != "postgres":
        pytest.skip("privileges are PostgreSQL's")
    engine = AuditEvent._meta.db
    assert isinstance(engine, PostgresEngine)
    rows = await AuditEvent.raw(
        "SELECT privilege_type FROM information_schema.role_table_grants "
        "WHERE table_name = 'audit_event' AND grantee = 'PUBLIC'"
    ).run()
    assert not {"UPDATE", "DELETE", "TRUNCATE"} & {row["privilege_type"] for row in rows}
    with pytest.raises(Exception, match="append-only"):
        await AuditEvent.raw(
            "UPDATE audit_event SET outcome = 'edited' WHERE id = (SELECT min(id) FROM audit_event)"
        ).run()
