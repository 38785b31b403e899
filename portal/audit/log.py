"""Writing the audit log and checking its chain.

Each row's hash covers the previous row's hash and the row's own fields, so the log is a chain: a
row edited, deleted or slipped in breaks it, and :func:`verify` names the first row that no longer
fits. Appending takes a lock (an advisory lock on PostgreSQL, an immediate transaction on SQLite) so
that concurrent writers, in any number of processes, extend one chain.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from carefront_sdk.models import AuditEvent as AuditEventModel
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from portal.audit.tables import AuditEvent

GENESIS = "0" * 64
_LOCK_KEY = 0x43415245  # "CARE": any constant shared by every writer
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Entry:
    """What happened, by whom, to what; identifiers and codes only, never PHI."""

    actor: str
    actor_role: str
    action: str
    outcome: str
    acting_as: str | None = None
    subject: str | None = None
    address: str = ""
    detail: Mapping[str, str] = field(default_factory=dict)


def _canonical(occurred_at: datetime, fields: Mapping[str, Any]) -> str:
    moment = occurred_at.astimezone(UTC).isoformat(timespec="microseconds")
    return json.dumps({"occurred_at": moment, **fields}, sort_keys=True, separators=(",", ":"))


def _digest(previous_hash: str, occurred_at: datetime, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256((previous_hash + _canonical(occurred_at, fields)).encode()).hexdigest()


HASHED_FIELDS = ("actor", "actor_role", "acting_as", "action", "subject", "outcome", "address", "detail")


def _fields(entry: Entry) -> dict[str, Any]:
    return {name: dict(entry.detail) if name == "detail" else getattr(entry, name) for name in HASHED_FIELDS}


@asynccontextmanager
async def _appending() -> AsyncIterator[None]:
    engine = AuditEvent._meta.db
    if isinstance(engine, PostgresEngine):
        async with engine.transaction():
            await AuditEvent.raw("SELECT pg_advisory_xact_lock({})", _LOCK_KEY).run()
            yield
    elif isinstance(engine, SQLiteEngine):
        async with engine.transaction(transaction_type=TransactionType.immediate):
            yield
    else:  # pragma: no cover - the portal runs only on these two
        raise RuntimeError(f"no audit lock for {type(engine).__name__}")


async def append(entry: Entry, now: datetime) -> AuditEventModel:
    """Add ``entry`` to the end of the chain and return it as plugins receive it."""
    fields = _fields(entry)
    async with _appending():
        last = await AuditEvent.select(AuditEvent.hash).order_by(AuditEvent.id, ascending=False).first().run()
        previous_hash = last["hash"] if last else GENESIS
        digest = _digest(previous_hash, now, fields)
        (row,) = (
            await AuditEvent.insert(
                AuditEvent(
                    occurred_at=now,
                    **{**fields, "detail": json.dumps(fields["detail"], sort_keys=True)},
                    previous_hash=previous_hash,
                    hash=digest,
                )
            )
            .returning(AuditEvent.id)
            .run()
        )
    return AuditEventModel(
        id=str(row["id"]),
        occurred_at=now,
        actor=entry.actor,
        acting_as=entry.acting_as,
        action=entry.action,
        subject=entry.subject,
        outcome=entry.outcome,
        detail=dict(entry.detail),
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    rows: int
    first_broken_id: int | None = None
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.first_broken_id is None


async def verify() -> Verdict:
    """Walk the chain from the first row; stop at the first row whose hash or link does not fit."""
    previous_hash, after, count = GENESIS, 0, 0
    while True:
        rows = (
            await AuditEvent.select()
            .where(AuditEvent.id > after)
            .order_by(AuditEvent.id)
            .limit(_BATCH)
            .output(load_json=True)
            .run()
        )
        if not rows:
            return Verdict(count)
        for row in rows:
            count += 1
            if row["previous_hash"] != previous_hash:
                return Verdict(count, row["id"], "its link to the previous row is broken (a row was removed or added)")
            fields = {name: row[name] for name in HASHED_FIELDS}
            if _digest(previous_hash, row["occurred_at"], fields) != row["hash"]:
                return Verdict(count, row["id"], "its contents changed after it was written")
            previous_hash, after = row["hash"], row["id"]


_current: contextvars.ContextVar[Auditor | None] = contextvars.ContextVar("carefront_auditor", default=None)


async def record_here(entry: Entry, now: datetime) -> None:
    """Append ``entry`` through the auditor of the request under way (so plugins hear of it too), or
    straight to the log outside a request (a command, a job)."""
    auditor = _current.get()
    if auditor is None:
        await append(entry, now)
    else:
        await auditor.record(entry)


class Auditor:
    """Appends to the log and tells plugins (``carefront_audit_event``) once the row is written."""

    def __init__(self, emit: Callable[[str, Any], None], clock: Callable[[], datetime]) -> None:
        self._emit = emit
        self._clock = clock

    async def record(self, entry: Entry) -> None:
        event = await append(entry, self._clock())
        self._emit("carefront_audit_event", event)

    def serving(self) -> contextvars.Token[Auditor | None]:
        """Make this the auditor of the request under way (``record_here``); reset with the token."""
        return _current.set(self)

    @staticmethod
    def done(token: contextvars.Token[Auditor | None]) -> None:
        _current.reset(token)
