"""The days a report covers: whole days in the hospital's time zone, both ends included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from portal.i18n import N_

DEFAULT_DAYS = 30
MAX_DAYS = 366

NOT_A_DAY = N_("Enter a day as 2026-01-31.")
BACKWARDS = N_("The first day must not be after the last day.")
TOO_LONG = N_("Choose at most 366 days.")


@dataclass(frozen=True, slots=True)
class Period:
    since: date
    until: date
    zone: ZoneInfo

    @property
    def start(self) -> datetime:
        """The hospital's midnight that opens ``since``."""
        return datetime.combine(self.since, time(), self.zone)

    @property
    def end(self) -> datetime:
        """The hospital's midnight that closes ``until`` (excluded)."""
        return datetime.combine(self.until + timedelta(days=1), time(), self.zone)

    def days(self) -> list[date]:
        return [self.since + timedelta(days=offset) for offset in range((self.until - self.since).days + 1)]

    def day_of(self, moment: datetime) -> date:
        """The hospital's day a moment falls on."""
        return moment.astimezone(self.zone).date()


def last_days(today: date, zone: ZoneInfo, days: int = DEFAULT_DAYS) -> Period:
    """The ``days`` days ending today: the page's default."""
    return Period(today - timedelta(days=days - 1), today, zone)


def read_period(since: str, until: str, today: date, zone: ZoneInfo) -> tuple[Period, dict[str, str]]:
    """The period the filter form asks for, and field name to the English msgid of what is wrong with it.

    An empty field takes the default's day; with errors the default period comes back beside them.
    """
    default = last_days(today, zone)
    errors: dict[str, str] = {}
    days: dict[str, date] = {}
    for field, text, fallback in (("since", since, default.since), ("until", until, default.until)):
        try:
            days[field] = date.fromisoformat(text.strip()) if text.strip() else fallback
        except ValueError:
            errors[field] = NOT_A_DAY
    if errors:
        return default, errors
    if days["since"] > days["until"]:
        return default, {"since": BACKWARDS}
    if (days["until"] - days["since"]).days + 1 > MAX_DAYS:
        return default, {"since": TOO_LONG}
    return Period(days["since"], days["until"], zone), {}
