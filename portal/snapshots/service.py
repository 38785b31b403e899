"""Read an EHR record through its snapshot (PROMISES.md 15).

:func:`read_through` answers from a copy younger than ``max_age`` (so a page that lists the same
statement twice a minute asks the EHR once), otherwise asks the EHR and keeps the answer. When the
EHR is unavailable it answers from the last copy, however old, marked ``stale`` with the time it was
read: the page says "as of". Only with no copy at all does ``Unavailable`` reach the page.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from carefront_sdk import codec
from carefront_sdk.errors import Unavailable

from portal.snapshots.tables import Snapshot

log = logging.getLogger("carefront.snapshots")
T = TypeVar("T")

FRESH_FOR = timedelta(seconds=30)
"""How long a copy is answered without asking the EHR again."""


@dataclass(frozen=True, slots=True)
class Read(Generic[T]):
    """A record and when the EHR said so; ``stale`` when the EHR could not be asked just now."""

    value: T
    as_of: datetime
    fingerprint: str
    """A digest of the record as stored: the same record read again has the same one (templates key
    the fragments they keep by it, see portal/web/fragments.py)."""
    stale: bool = False


def fingerprint(stored: str) -> str:
    """The digest of a record's stored text (``codec.dumps``, which gives equal records equal text)."""
    return hashlib.blake2b(stored.encode(), digest_size=16).hexdigest()


async def read_through(
    key: str,
    kind: Any,
    fetch: Callable[[], Awaitable[T]],
    *,
    now: datetime,
    max_age: timedelta = FRESH_FOR,
) -> Read[T]:
    """The record ``key`` of type ``kind`` (a model, or e.g. ``tuple[StatementSummary, ...]``)."""
    row = await Snapshot.select(Snapshot.read_at).where(Snapshot.key == key).first().run()
    fresh = row is not None and now - row["read_at"] < max_age
    if fresh and (copy := await _stored(key, kind, row["read_at"])) is not None:
        return Read(copy.value, row["read_at"], copy.fingerprint)
    try:
        value = await fetch()
    except Unavailable:
        if row is None or (copy := await _stored(key, kind, row["read_at"])) is None:
            raise
        log.warning("EHR unavailable: answering %s from the copy read at %s", key.split(":")[0], row["read_at"])
        return Read(copy.value, row["read_at"], copy.fingerprint, stale=True)
    kept = await keep(key, value, now)
    return Read(value, now, kept.fingerprint)


async def keep(key: str, value: Any, now: datetime) -> Copy:
    """Store ``value`` as the newest copy of ``key``."""
    stored = codec.dumps(value)
    await (
        Snapshot.insert(Snapshot(key=key, body=stored, read_at=now))
        .on_conflict(target=Snapshot.key, action="DO UPDATE", values=[Snapshot.body, Snapshot.read_at])
        .run()
    )
    return _decoded_copies().remember(key, Copy(value, now, fingerprint(stored)))


@dataclass(frozen=True, slots=True)
class Copy:
    """A decoded copy of a record, as :class:`DecodedCopies` keeps it."""

    value: Any
    read_at: datetime
    fingerprint: str


async def _stored(key: str, kind: Any, read_at: datetime) -> Copy | None:
    """The copy of ``key`` read at ``read_at`` (this process's decoded one when it has it), or None
    when the copy was forgotten since the first look."""
    if (copy := _decoded_copies().get(key, read_at)) is not None:
        return copy
    row = await Snapshot.select(Snapshot.body).where(Snapshot.key == key).first().run()
    if row is None:
        return None
    decoded = Copy(codec.from_plain(kind, json.loads(row["body"])), read_at, fingerprint(row["body"]))
    return _decoded_copies().remember(key, decoded)


class DecodedCopies:
    """The last decoded copies, by key (models are frozen, so sharing them is safe). A 200-line
    statement is ~100 KB of JSON and ~10 ms to decode; a page that shows it, and the htmx partials
    after it, read the same copy again and again within its 30 seconds. The database row stays the
    truth: a copy is used only while the row's ``read_at`` still matches it.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._copies: OrderedDict[str, Copy] = OrderedDict()

    def get(self, key: str, read_at: datetime) -> Copy | None:
        found = self._copies.get(key)
        if found is None or found.read_at != read_at:
            return None
        self._copies.move_to_end(key)
        return found

    def remember(self, key: str, copy: Copy) -> Copy:
        self._copies[key] = copy
        self._copies.move_to_end(key)
        while len(self._copies) > self.size:
            self._copies.popitem(last=False)
        return copy

    def drop(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._copies.pop(key, None)


_copies: list[tuple[Any, DecodedCopies]] = []


def _decoded_copies() -> DecodedCopies:
    """This process's copies, of the database the snapshots are in now (a test run switches)."""
    engine = Snapshot._meta.db
    if not _copies or _copies[0][0] is not engine:
        _copies[:] = [(engine, DecodedCopies())]
    return _copies[0][1]


async def forget(*keys: str) -> None:
    """Drop copies a write has made wrong, so the next read asks the EHR."""
    _decoded_copies().drop(keys)
    if keys:
        await Snapshot.delete().where(Snapshot.key.is_in(list(keys))).run()
