"""Reading a patient's statements: through the snapshot, and only the patient's own.

A service: no HTTP. Every function takes the patient the session acts for and never trusts an id
from the request to belong to them — a statement of someone else's is ``NotFound``, exactly like a
missing one (PROMISES.md 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from carefront_sdk.errors import NotFound
from carefront_sdk.models import Statement, StatementSummary

from portal.plugin_host import PluginHost
from portal.snapshots.service import Read, forget, read_through

T = TypeVar("T")

PAGE_SIZE = 10
"""Statements on one page of the list."""


def _list_key(patient_id: str) -> str:
    return f"statements:{patient_id}"


def _statement_key(statement_id: str) -> str:
    return f"statement:{statement_id}"


async def statements_of(host: PluginHost, patient_id: str, *, now: datetime) -> Read[tuple[StatementSummary, ...]]:
    """The patient's statements, newest first."""

    async def fetch() -> tuple[StatementSummary, ...]:
        found = await host.ehr.list_statements(patient_id)
        return tuple(sorted(found, key=lambda summary: (summary.issued_on, summary.id), reverse=True))

    return await read_through(_list_key(patient_id), tuple[StatementSummary, ...], fetch, now=now)


async def statement_of(host: PluginHost, patient_id: str, statement_id: str, *, now: datetime) -> Read[Statement]:
    """One of the patient's statements with its visits and lines; ``NotFound`` if it is not theirs."""

    async def fetch() -> Statement:
        return await host.ehr.read_statement(statement_id)

    read = await read_through(_statement_key(statement_id), Statement, fetch, now=now)
    if read.value.summary.patient_id != patient_id:
        raise NotFound("statement", statement_id)
    return read


async def forget_statements(patient_id: str, *statement_ids: str) -> None:
    """After a payment is posted the EHR's balances change: read them afresh next time."""
    await forget(_list_key(patient_id), *(_statement_key(statement_id) for statement_id in statement_ids))


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list: its items, its number (from 1) and how many pages there are."""

    items: tuple[T, ...]
    number: int
    count: int


def page_of(items: Sequence[T], number: int, size: int = PAGE_SIZE) -> Page[T]:
    """Page ``number`` of ``items``; ``NotFound`` past the last page (an empty list has one, empty, page)."""
    count = max(1, -(-len(items) // size))
    if not 1 <= number <= count:
        raise NotFound("page", str(number))
    start = (number - 1) * size
    return Page(tuple(items[start : start + size]), number, count)
