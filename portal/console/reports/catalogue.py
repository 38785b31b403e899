"""What a report is: its tables (each also a CSV export) and their charts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from portal.console.reports.charts import Chart
from portal.console.reports.figures import Figures


@dataclass(frozen=True, slots=True)
class Table:
    key: str
    """Names its CSV export (``/console/reports/export.csv?table=<key>``) and the file."""
    caption: str
    """An English msgid."""
    figures: Figures
    chart: Chart | None = None
    totals: tuple[Any, ...] | None = None
    """A footer row under the table (not in the CSV, which a spreadsheet sums itself)."""
    description: str = ""
    """The chart's long description (an English msgid; ``%(since)s`` and ``%(until)s`` are the period's days)."""


@dataclass(frozen=True, slots=True)
class Report:
    key: str
    tables: tuple[Table, ...]
    facts: dict[str, Any] = field(default_factory=dict)
    """Report-specific figures the page words around the tables (e.g. when the copies were read)."""
    read_from: datetime | None = None
