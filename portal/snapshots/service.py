"""Read an EHR record through its snapshot (PROMISES.md 15).

:func:`read_through` answers from a copy younger than ``max_age`` (so a page that lists the same
statement twice a minute asks the EHR once), otherwise asks the EHR and keeps the answer. When the
EHR is unavailable it answers from the last copy, however old, marked ``stale`` with the time it was
read: the page says "as of". Only with no copy at all does ``Unavailable`` reach the page.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
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
    stale: bool = False


async def read_through(
    key: str,
    kind: Any,
    fetch: Callable[[], Awaitable[T]],
    *,
    now: datetime,
    max_age: timedelta = FRESH_FOR,
) -> Read[T]:
    """The record ``key`` of type ``kind`` (a model, or e.g. ``tuple[StatementSummary, ...]``)."""
    row = await Snapshot.select(Snapshot.body, Snapshot.read_at).where(Snapshot.key == key).first().run()
    if row is not None and now - row["read_at"] < max_age:
        return Read(codec.from_plain(kind, json.loads(row["body"])), row["read_at"])
    try:
        value = await fetch()
    except Unavailable:
        if row is None:
            raise
        log.warning("EHR unavailable: answering %s from the copy read at %s", key.split(":")[0], row["read_at"])
        return Read(codec.from_plain(kind, json.loads(row["body"])), row["read_at"], stale=True)
    await keep(key, value, now)
    return Read(value, now)


async def keep(key: str, value: Any, now: datetime) -> None:
    """Store ``value`` as the newest copy of ``key``."""
    await (
        Snapshot.insert(Snapshot(key=key, body=codec.dumps(value), read_at=now))
        .on_conflict(target=Snapshot.key, action="DO UPDATE", values=[Snapshot.body, Snapshot.read_at])
        .run()
    )


async def forget(*keys: str) -> None:
    """Drop copies a write has made wrong, so the next read asks the EHR."""
    if keys:
        await Snapshot.delete().where(Snapshot.key.is_in(list(keys))).run()
