"""What this adapter remembers between calls, in a SQLite file of its data folder.

- ``outcomes``: the result of each mutating call by operation and portal idempotency key, so a
  repeated key answers as the first call did, for as long as the file lives (Stripe replays a key
  for 24 hours only). A result is kept as the Stripe object's id, never the object: card details and
  client secrets stay at Stripe. A card's refusal is kept as its code and message.
- ``customers``: the Stripe Customer created for each ``customer_reference`` (a guarantor).

Both tables only ever gain rows, and a row is written once (``INSERT OR IGNORE``): two processes
racing on one key both end up reading the row that won.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

__all__ = ["Ledger", "Outcome"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outcomes (
    operation TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    stripe_id TEXT,
    refusal TEXT,
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (operation, idempotency_key),
    CHECK ((stripe_id IS NULL) <> (refusal IS NULL))
);
CREATE TABLE IF NOT EXISTS customers (
    customer_reference TEXT PRIMARY KEY,
    stripe_customer TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a mutating call ended: the Stripe object it made, or the refusal it met."""

    stripe_id: str | None = None
    refusal: tuple[str, str] | None = None
    """``(code, message)`` of the :class:`~carefront_sdk.errors.Refused` raised."""


class Ledger:
    """The adapter's memory: one connection, used by one worker thread at a time."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # A busy timeout: several portal workers may share the file.
        self._db = sqlite3.connect(path, timeout=5.0, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # No fsync per commit: a row lost to a power cut only sends the retry to Stripe, whose
        # idempotency key still answers it (for 24 hours).
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._guard = threading.Lock()

    def close(self) -> None:
        with self._guard:
            self._db.close()

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def guarded() -> T:
            with self._guard:
                return work(self._db)

        return await asyncio.to_thread(guarded)

    async def recall(self, operation: str, idempotency_key: str) -> Outcome | None:
        return await self._run(lambda db: _outcome(db, operation, idempotency_key))

    async def record(self, operation: str, idempotency_key: str, outcome: Outcome, at: datetime) -> Outcome:
        """Keep ``outcome`` unless another call recorded one first; return the one kept."""
        refusal = json.dumps(list(outcome.refusal)) if outcome.refusal else None

        def work(db: sqlite3.Connection) -> Outcome:
            db.execute(
                "INSERT OR IGNORE INTO outcomes (operation, idempotency_key, stripe_id, refusal, recorded_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (operation, idempotency_key, outcome.stripe_id, refusal, at.isoformat()),
            )
            kept = _outcome(db, operation, idempotency_key)
            assert kept is not None
            return kept

        return await self._run(work)

    async def customer(self, customer_reference: str) -> str | None:
        def work(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT stripe_customer FROM customers WHERE customer_reference = ?", (customer_reference,)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(work)

    async def remember_customer(self, customer_reference: str, stripe_customer: str, at: datetime) -> str:
        """Map the reference to ``stripe_customer`` unless it is mapped already; return the mapping kept."""

        def work(db: sqlite3.Connection) -> str:
            db.execute(
                "INSERT OR IGNORE INTO customers (customer_reference, stripe_customer, recorded_at) VALUES (?, ?, ?)",
                (customer_reference, stripe_customer, at.isoformat()),
            )
            (kept,) = db.execute(
                "SELECT stripe_customer FROM customers WHERE customer_reference = ?", (customer_reference,)
            ).fetchone()
            return str(kept)

        return await self._run(work)


def _outcome(db: sqlite3.Connection, operation: str, idempotency_key: str) -> Outcome | None:
    row = db.execute(
        "SELECT stripe_id, refusal FROM outcomes WHERE operation = ? AND idempotency_key = ?",
        (operation, idempotency_key),
    ).fetchone()
    if row is None:
        return None
    stripe_id, refusal = row
    if refusal is not None:
        code, message = json.loads(refusal)
        return Outcome(refusal=(str(code), str(message)))
    return Outcome(stripe_id=str(stripe_id))
