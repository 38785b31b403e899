"""The geometry of the reports' bar charts, drawn by templates/console/reports/_chart.html as SVG.

Two shapes: columns over days (stacked by series, e.g. payment method) and horizontal bars over
categories. Coordinates are in a 360-unit-wide view box, the width of the narrowest phone, so text
drawn at 12 units reads at 12 px there. Values stay integers (counts, or minor units of money); the
template formats them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from carefront_sdk.models import Money

from portal.console.reports.figures import Label

WIDTH = 360
SERIES_CLASSES = 6
"""CSS classes ``chart-series-0`` to ``-5`` colour the series; more series reuse them."""
_COLUMNS_TOP, _COLUMNS_BOTTOM = 24, 172
_BAR_ROW, _BAR_LABEL, _BAR_TOP, _BAR_HEIGHT, _VALUE_ROOM = 40, 14, 19, 14, 96

Unit = Literal["count", "money"]


@dataclass(frozen=True, slots=True)
class Box:
    x: float
    y: float
    width: float
    height: float
    series: int
    """Index into the chart's series, for the CSS class."""


@dataclass(frozen=True, slots=True)
class Column:
    day: date
    total: int
    boxes: tuple[Box, ...]


@dataclass(frozen=True, slots=True)
class Bar:
    label: Label
    value: int
    text_y: float
    box: Box


@dataclass(frozen=True, slots=True)
class Chart:
    shape: Literal["columns", "bars"]
    unit: Unit
    currency: str
    series: tuple[Label, ...]
    height: int
    maximum: int
    columns: tuple[Column, ...] = ()
    bars: tuple[Bar, ...] = ()

    @property
    def plot_top(self) -> int:
        return _COLUMNS_TOP

    @property
    def plot_bottom(self) -> int:
        return _COLUMNS_BOTTOM

    def amount(self, value: int) -> Money | int:
        """A value as the template formats it: money in the chart's currency, or a count."""
        return Money(value, self.currency) if self.unit == "money" else value

    @property
    def css_classes(self) -> tuple[str, ...]:
        return tuple(f"chart-series-{index % SERIES_CLASSES}" for index in range(len(self.series)))


def columns(
    days: Sequence[date],
    series: Sequence[Label],
    value: Callable[[date, str], int],
    *,
    unit: Unit,
    currency: str = "USD",
) -> Chart:
    """A column per day, its series stacked bottom up; the tallest column reaches the top of the plot."""
    totals = [sum(value(day, item.code) for item in series) for day in days]
    maximum = max([*totals, 1])
    band = WIDTH / max(len(days), 1)
    width = max(band * 0.7, 1.0)
    scale = (_COLUMNS_BOTTOM - _COLUMNS_TOP) / maximum
    made = []
    for index, (day, total) in enumerate(zip(days, totals, strict=True)):
        x, floor, boxes = index * band + (band - width) / 2, float(_COLUMNS_BOTTOM), []
        for position, item in enumerate(series):
            height = value(day, item.code) * scale
            if height > 0:
                floor -= height
                boxes.append(Box(round(x, 2), round(floor, 2), round(width, 2), round(height, 2), position))
        made.append(Column(day, total, tuple(boxes)))
    return Chart("columns", unit, currency, tuple(series), _COLUMNS_BOTTOM + 28, maximum, columns=tuple(made))


def bars(items: Sequence[tuple[Label, int]], *, unit: Unit, currency: str = "USD") -> Chart:
    """A bar per category, its label above it and its value after it; the longest bar leaves room for its value."""
    maximum = max([*(amount for _, amount in items), 1])
    scale = (WIDTH - _VALUE_ROOM) / maximum
    made = tuple(
        Bar(
            label,
            amount,
            index * _BAR_ROW + _BAR_LABEL,
            Box(0, index * _BAR_ROW + _BAR_TOP, round(max(amount * scale, 0), 2), _BAR_HEIGHT, index),
        )
        for index, (label, amount) in enumerate(items)
    )
    series = tuple(label for label, _ in items)
    return Chart("bars", unit, currency, series, max(len(items), 1) * _BAR_ROW, maximum, bars=made)
