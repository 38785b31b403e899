"""A report's numbers as one table: the page's accessible table and the CSV export both come from it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from babel.numbers import get_currency_precision
from carefront_sdk.models import Money

from portal.audit.viewer import csv_cell

Kind = Literal["day", "label", "count", "money", "percent"]


@dataclass(frozen=True, slots=True)
class Label:
    """A coded value: ``code`` goes to the CSV, ``text`` (an English msgid) is shown translated."""

    code: str
    text: str
    detail: str = ""
    """Fills ``%(detail)s`` in ``text``."""


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    """The CSV header."""
    label: str
    """The table's header (an English msgid)."""
    kind: Kind


@dataclass(frozen=True, slots=True)
class Figures:
    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]

    def csv_lines(self) -> Iterator[str]:
        """Header then rows; money as an exact decimal with its currency in the next cell."""
        yield _line(header for column in self.columns for header in _headers(column))
        for row in self.rows:
            yield _line(cell for column, value in zip(self.columns, row, strict=True) for cell in _cells(column, value))


def decimal_text(money: Money) -> str:
    """Minor units as an exact decimal (12345 cents -> ``123.45``); never through a float."""
    places = get_currency_precision(money.currency)
    sign, digits = ("-" if money.amount < 0 else ""), str(abs(money.amount)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}" if places else f"{sign}{digits}"


def percent_text(tenths: int) -> str:
    """Tenths of a percent as a decimal: 333 -> ``33.3``."""
    return f"{tenths // 10}.{tenths % 10}"


def _headers(column: Column) -> tuple[str, ...]:
    return (column.key, f"{column.key}_currency") if column.kind == "money" else (column.key,)


def _cells(column: Column, value: Any) -> tuple[Any, ...]:
    if column.kind == "money":
        return (decimal_text(value), value.currency)
    if isinstance(value, Label):
        return (value.code,)
    if column.kind == "percent":
        return (percent_text(value),)
    if isinstance(value, date):
        return (value.isoformat(),)
    return (value,)


def _line(values: Iterator[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([csv_cell(value) for value in values])
    return buffer.getvalue()
