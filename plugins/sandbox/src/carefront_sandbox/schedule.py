"""How the sandbox hospital's clinicians' days are laid out, shared by the generator and the EHR.

Open slots are computed, not stored: each clinician works four weekdays, 08:00-12:00 and
13:00-17:00 in the hospital's time zone, in 20-minute cells, at one of their locations by weekday.
About 40 % of cells are taken by patients outside the sandbox (a fixed hash of seed, clinician and
cell, so every process agrees); the rest are free until a booking holds them in ``slot_holds``.
Computing slots keeps the eight-week window rolling with the clock instead of going stale in a
file generated weeks ago.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

__all__ = [
    "BOOKING_WINDOW_DAYS",
    "CELL_MINUTES",
    "FEES",
    "MINIMUM_NOTICE",
    "cell_key",
    "cells_of",
    "is_taken_outside",
    "location_on",
    "parse_slot_id",
    "slot_id",
    "slot_starts",
    "works_on",
]

CELL_MINUTES = 20
BOOKING_WINDOW_DAYS = 56
"""Slots are offered for eight weeks from today."""
MINIMUM_NOTICE = timedelta(hours=1)
"""A slot starting sooner than this is no longer offered."""
_BLOCKS = ((time(8, 0), time(12, 0)), (time(13, 0), time(17, 0)))

FEES: dict[str, tuple[int, str]] = {
    "vt-follow-up": (15_500, "98"),
    "vt-sick": (15_500, "98"),
    "vt-new-patient": (24_500, "98"),
    "vt-physical": (27_500, "98"),
    "vt-well-child": (21_000, "98"),
    "vt-skin-check": (18_500, "98"),
    "vt-pt": (16_500, "PT"),
    "vt-mammogram": (32_000, "4"),
    "vt-mri": (210_000, "4"),
    "vt-colonoscopy": (285_000, "30"),
    "vt-surgery-consult": (29_500, "98"),
    "vt-cardiology-new": (34_500, "98"),
}
"""The sandbox hospital's fee schedule: each visit type's usual charge in cents (USD) and the X12
service type a payer is asked about for the patient's estimate."""
_TAKEN_OUTSIDE_PERCENT = 40


def works_on(day_off: int, day: date) -> bool:
    """Does a clinician whose weekday off is ``day_off`` (0 = Monday) work on ``day``."""
    return day.weekday() < 5 and day.weekday() != day_off


def location_on(location_ids: Sequence[str], day: date) -> str:
    """Where a clinician works on ``day``: their locations in turn, by weekday."""
    return location_ids[day.weekday() % len(location_ids)]


def cells_of(start: datetime, duration_minutes: int) -> list[datetime] | None:
    """The cells a visit of ``duration_minutes`` starting at local ``start`` holds, or None when it
    does not fit the grid (off a cell boundary, or running past the end of a block)."""
    if (start.hour * 60 + start.minute) % CELL_MINUTES or start.second or start.microsecond:
        return None
    count = -(-duration_minutes // CELL_MINUTES)
    end = start + timedelta(minutes=count * CELL_MINUTES)
    for block_start, block_end in _BLOCKS:
        opens = datetime.combine(start.date(), block_start)
        closes = datetime.combine(start.date(), block_end)
        if opens <= start and end <= closes:
            return [start + timedelta(minutes=CELL_MINUTES * n) for n in range(count)]
    return None


def slot_starts(day: date, duration_minutes: int) -> list[datetime]:
    """Every local start time on ``day`` where a visit of ``duration_minutes`` fits a block."""
    starts = []
    for block_start, block_end in _BLOCKS:
        cursor = datetime.combine(day, block_start)
        closes = datetime.combine(day, block_end)
        while cursor + timedelta(minutes=duration_minutes) <= closes:
            starts.append(cursor)
            cursor += timedelta(minutes=CELL_MINUTES)
    return starts


def cell_key(cell: datetime) -> str:
    """The ``slot_holds.cell`` text of a local cell start."""
    return cell.strftime("%Y-%m-%dT%H:%M")


def is_taken_outside(seed: int, provider_code: str, cell: datetime) -> bool:
    """Is the cell booked by someone outside the sandbox (a stable hash, the same in every process)."""
    return zlib.crc32(f"{seed}:{provider_code}:{cell_key(cell)}".encode()) % 100 < _TAKEN_OUTSIDE_PERCENT


def slot_id(provider_code: str, visit_type_id: str, start: datetime) -> str:
    """The opaque id of a slot: who, what, and the local start time."""
    return f"{provider_code}.{visit_type_id}.{start:%Y%m%dT%H%M}"


def parse_slot_id(text: str) -> tuple[str, str, datetime] | None:
    """``(provider_code, visit_type_id, local start)`` of a slot id, or None when it is not one."""
    parts = text.split(".")
    if len(parts) != 3:
        return None
    try:
        start = datetime.strptime(parts[2], "%Y%m%dT%H%M")
    except ValueError:
        return None
    return parts[0], parts[1], start
