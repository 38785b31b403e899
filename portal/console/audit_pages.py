"""The audit trail for supervisors and administrators, and the patient's "who accessed my account".

The viewer filters by staff member, patient, action and a range of days (in the hospital's time
zone), a page at a time; the CSV export streams every matching row, each cell guarded against
spreadsheet formulas. Reading the trail is itself audited. The patient's page lists each time a member
of staff acted as them or opened their record: when, who, in what role, and why.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Stream, Template

from portal.access import patients_only, staff_with
from portal.audit import viewer as audit_viewer
from portal.audit.access import record_access
from portal.console import acting
from portal.console.staff import names_of, staff_members
from portal.i18n import I18n
from portal.identity.acting_for import acting_for_allowed
from portal.identity.sessions import Viewer
from portal.identity.staff import ROLE_NAMES
from portal.plugin_host import PluginHost
from portal.settings import Settings

AUDIT = "/console/audit"


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


class AuditController(Controller):
    path = AUDIT
    guards = [staff_with("supervisor", "administrator")]

    @get(name="console-audit")
    async def audit_page(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        staff: FromQuery[str] = "",
        patient: FromQuery[str] = "",
        action: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
        page: FromQuery[int] = 1,
    ) -> Template:
        filters = audit_viewer.AuditFilter(staff, patient.strip(), action, _day(since), _day(until))
        zone = ZoneInfo(settings.hospital.time_zone)
        rows, more = await audit_viewer.page(filters, zone, page)
        await record_access(request, "audit.read", None, detail={"page": str(page)})
        query = {"staff": staff, "patient": filters.patient, "action": action, "since": since, "until": until}
        names = await names_of(
            staff_id for row in rows if (staff_id := audit_viewer.staff_account_of(row["actor"])) is not None
        )
        return Template(
            "console/audit.html",
            context={
                "rows": [
                    {**row, "actor_name": names.get(audit_viewer.staff_account_of(row["actor"]) or "")} for row in rows
                ],
                "filters": query,
                "bad_dates": bool((since and not filters.since) or (until and not filters.until)),
                "staff": await staff_members(),
                "actions": await audit_viewer.actions(),
                "csv_url": f"{AUDIT}/export.csv?{urlencode(query)}",
                "previous_url": f"{AUDIT}?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
                "next_url": f"{AUDIT}?{urlencode({**query, 'page': page + 1})}" if more else None,
            },
        )

    @get("/export.csv", name="console-audit-export")
    async def export(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        staff: FromQuery[str] = "",
        patient: FromQuery[str] = "",
        action: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
    ) -> Stream:
        filters = audit_viewer.AuditFilter(staff, patient.strip(), action, _day(since), _day(until))
        await record_access(request, "audit.export", None)
        stamp = plugin_host.clock().strftime("%Y%m%d-%H%M%S")
        return Stream(
            audit_viewer.export(filters, ZoneInfo(settings.hospital.time_zone)),
            media_type="text/csv; charset=utf-8",
            headers={"content-disposition": f'attachment; filename="carefront-audit-{stamp}.csv"'},
        )


class AccessHistoryController(Controller):
    """``/account/access``: the patient sees who on staff accessed their account (PROMISES.md 8)."""

    path = "/account/access"
    guards = [patients_only]
    dependencies = {"viewer": Provide(acting_for_allowed)}

    @get(name="account-access")
    async def access_page(
        self, request: HTMXRequest, viewer: NamedDependency[Viewer], plugin_host: NamedDependency[PluginHost]
    ) -> Template:
        patient_id = str(viewer.acting_for)
        rows = await audit_viewer.staff_accesses(patient_id)
        await record_access(request, "access_history.read", patient_id)
        names = await names_of(
            staff_id for row in rows if (staff_id := audit_viewer.staff_account_of(row["actor"])) is not None
        )
        records = await acting.reasons_of([row["subject"] for row in rows if row["action"] == "acting.start"])
        return Template(
            "console/access_history.html",
            context={
                "accesses": [_access(row, names, records) for row in rows],
                "nav_items": plugin_host.nav_items("patient", I18n.current()),
                "current_nav": "/account",
            },
        )


def _access(row: dict[str, Any], names: dict[str, str], records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One line of the patient's page: when, who, in what role, why."""
    record = records.get(row["subject"] or "") if row["action"] == "acting.start" else None
    return {
        "at": row["occurred_at"],
        "name": names.get(audit_viewer.staff_account_of(row["actor"]) or ""),
        "role": ROLE_NAMES.get(row["actor_role"], row["actor_role"]),
        "reason": acting.REASONS.get(record["reason"]) if record else None,
        "acted": row["action"] == "acting.start",
    }


ROUTES = [AuditController, AccessHistoryController]
