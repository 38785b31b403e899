"""``/console/reports``: the supervisors' reports for a range of days, and each table as CSV.

Supervisors and administrators only. The range defaults to the last 30 days in the hospital's time
zone; a range that cannot be read comes back as the form with the error beside the field (422).
Every view (``report.read``) and export (``report.export``) writes an audit row.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromQuery
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from portal.access import staff_with
from portal.audit.access import record_access
from portal.console.reports import adoption, aging, collected, eligibility, plans
from portal.console.reports.catalogue import Report, Table
from portal.console.reports.period import Period, read_period
from portal.i18n import I18n
from portal.plugin_host import PluginHost
from portal.settings import Settings

REPORTS = "/console/reports"
REPORT_OF_TABLE = {
    "payments-by-day": "payments",
    "plans": "plans",
    "aging": "aging",
    "eligibility": "eligibility",
    "sign-ups": "adoption",
    "paperless": "adoption",
    "payments-by-channel": "adoption",
}
"""Each exportable table and the report it belongs to."""


async def build(period: Period, plugin_host: PluginHost, only: str | None = None) -> list[Report]:
    """Every report for ``period`` (or only the one named), in the page's order."""
    wanted = {only} if only else set(REPORT_OF_TABLE.values())
    payments = await collected.payments_in(period) if wanted & {"payments", "adoption"} else []
    made: list[Report] = []
    if "payments" in wanted:
        made.append(collected.report(period, payments))
    if "plans" in wanted:
        made.append(await plans.report(period))
    if "aging" in wanted:
        made.append(aging.report(await aging.newest_copies(), plugin_host.clock().astimezone(period.zone).date()))
    if "eligibility" in wanted:
        made.append(await eligibility.report(period))
    if "adoption" in wanted:
        made.append(await adoption.report(period, payments))
    return made


def _period(settings: Settings, plugin_host: PluginHost, since: str, until: str) -> tuple[Period, dict[str, str]]:
    zone = ZoneInfo(settings.hospital.time_zone)
    return read_period(since, until, plugin_host.clock().astimezone(zone).date(), zone)


class ReportsController(Controller):
    path = REPORTS
    guards = [staff_with("supervisor", "administrator")]

    @get(name="console-reports")
    async def reports_page(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
    ) -> Template:
        period, errors = _period(settings, plugin_host, since, until)
        if errors:
            i18n: I18n = request.app.state["i18n"]
            context = {
                "form": {"since": since, "until": until},
                "errors": {k: i18n.gettext(v) for k, v in errors.items()},
            }
            return Template("console/reports/index.html", context={**context, "reports": []}, status_code=422)
        reports = await build(period, plugin_host)
        days = {"since": period.since.isoformat(), "until": period.until.isoformat()}
        await record_access(request, "report.read", None, detail=days)
        return Template(
            "console/reports/index.html",
            context={
                "form": days,
                "errors": {},
                "period": period,
                "reports": {report.key: report for report in reports},
                "export_query": days,
            },
        )

    @get("/export.csv", name="console-reports-export")
    async def export(
        self,
        request: HTMXRequest,
        settings: NamedDependency[Settings],
        plugin_host: NamedDependency[PluginHost],
        table: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
    ) -> Response[str]:
        if table not in REPORT_OF_TABLE:
            raise NotFoundException()
        period, errors = _period(settings, plugin_host, since, until)
        if errors:
            raise ValidationException(
                "since and until are days as 2026-01-31, the first not after the last, at most 366 days"
            )
        (report,) = await build(period, plugin_host, only=REPORT_OF_TABLE[table])
        chosen: Table = next(item for item in report.tables if item.key == table)
        await record_access(
            request,
            "report.export",
            table,
            detail={"since": period.since.isoformat(), "until": period.until.isoformat()},
        )
        return Response(
            "".join(chosen.figures.csv_lines()),
            media_type="text/csv; charset=utf-8",
            headers={
                "content-disposition": f'attachment; filename="carefront-{table}-{period.since}-to-{period.until}.csv"'
            },
        )


ROUTES = [ReportsController]
