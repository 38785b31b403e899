"""Reading the audit log: filtered pages for supervisors and auditors, a CSV export, and the staff
accesses of one patient for the patient's own "who accessed my account" page.

A service: no HTTP. Dates are days in the hospital's time zone; rows are read oldest first by id
when exported, newest first when shown.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from portal.access import STAFF_ROLES
from portal.audit.tables import AuditEvent

PAGE_SIZE = 50
_BATCH = 1000
CSV_COLUMNS = ("occurred_at", "actor", "actor_role", "acting_as", "action", "subject", "outcome", "address", "detail")
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Empty fields match everything. ``staff`` is an account's public id; ``patient`` an EHR patient id,
    matched as the one acted as or the subject; ``since`` and ``until`` are days, both included."""

    staff: str = ""
    patient: str = ""
    action: str = ""
    since: date | None = None
    until: date | None = None


def _condition(filters: AuditFilter, zone: ZoneInfo) -> Any:
    condition: Any = AuditEvent.id > 0
    if filters.staff:
        condition &= AuditEvent.actor == f"account:{filters.staff}"
    if filters.patient:
        condition &= (AuditEvent.acting_as == filters.patient) | (AuditEvent.subject == filters.patient)
    if filters.action:
        condition &= AuditEvent.action == filters.action
    if filters.since:
        condition &= AuditEvent.occurred_at >= datetime.combine(filters.since, time(), zone)
    if filters.until:
        condition &= AuditEvent.occurred_at < datetime.combine(filters.until + timedelta(days=1), time(), zone)
    return condition


async def page(filters: AuditFilter, zone: ZoneInfo, number: int) -> tuple[list[dict[str, Any]], bool]:
    """Page ``number`` (from 1) of the matching rows, newest first, and whether another page follows."""
    rows = (
        await AuditEvent.select()
        .where(_condition(filters, zone))
        .order_by(AuditEvent.id, ascending=False)
        .offset((max(1, number) - 1) * PAGE_SIZE)
        .limit(PAGE_SIZE + 1)
        .output(load_json=True)
        .run()
    )
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


async def actions() -> list[str]:
    """Every action the log holds, for the filter's choices."""
    rows = await AuditEvent.select(AuditEvent.action).distinct().order_by(AuditEvent.action).run()
    return [row["action"] for row in rows]


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet shows as text: one starting like a formula gets a leading apostrophe."""
    text = "" if value is None else value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow([csv_cell(value) for value in values])
    return buffer.getvalue()


async def export(filters: AuditFilter, zone: ZoneInfo) -> AsyncIterator[str]:
    """The matching rows as CSV lines, header first, oldest first, read a batch at a time."""
    yield _line(CSV_COLUMNS)
    condition, after = _condition(filters, zone), 0
    while True:
        rows = (
            await AuditEvent.select()
            .where(condition & (AuditEvent.id > after))
            .order_by(AuditEvent.id)
            .limit(_BATCH)
            .output(load_json=True)
            .run()
        )
        if not rows:
            return
        for row in rows:
            moment = row["occurred_at"].isoformat()
            yield _line([moment, *(row[column] for column in CSV_COLUMNS[1:])])
        after = rows[-1]["id"]


def staff_account_of(actor: str) -> str | None:
    """The staff account's public id in an ``actor`` field (``account:<id>``), if it is one."""
    _, _, public_id = actor.partition("account:")
    try:
        return str(uuid.UUID(public_id))
    except ValueError:
        return None


async def staff_accesses(patient_id: str, limit: int = 100) -> list[dict[str, Any]]:
    """Each time a member of staff acted as the patient (``acting.start``) or opened their record in the
    console (``patient.open``), newest first."""
    return (
        await AuditEvent.select()
        .where(
            AuditEvent.actor_role.is_in(sorted(STAFF_ROLES))
            & (AuditEvent.outcome == "ok")
            & (
                ((AuditEvent.action == "acting.start") & (AuditEvent.acting_as == patient_id))
                | ((AuditEvent.action == "patient.open") & (AuditEvent.subject == patient_id))
            )
        )
        .order_by(AuditEvent.id, ascending=False)
        .limit(limit)
        .output(load_json=True)
        .run()
    )
