"""The sandbox's SQLite file as its adapters use it: one :class:`Store` per file per process.

Calls run on a small pool of threads, each with its own connection, never on the event loop: a
write may wait up to the busy timeout for another process's transaction, and reading a 200-line
statement takes about a millisecond, either of which would stall every other request if it ran on
the loop. Writes run in ``BEGIN IMMEDIATE`` transactions, so checks and inserts are atomic across
processes; idempotency records are written in the same transaction as the effect they record.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from carefront_sdk import codec
from carefront_sdk.errors import Refused

from carefront_sandbox.generator import install_database
from carefront_sandbox.schema import SCHEMA_VERSION

__all__ = ["Store", "live_stores", "open_store"]

T = TypeVar("T")

_THREADS = 4
_BUSY_TIMEOUT_MS = 15_000


class Store:
    """Connections to one sandbox file, and the transactions adapters run in it."""

    def __init__(self, path: Path, seed: int) -> None:
        self.path = path
        self.seed = seed
        self._executor = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="carefront-sandbox")
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            # Autocommit mode: transactions are begun explicitly, IMMEDIATE for writes.
            connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute("PRAGMA foreign_keys = ON")
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _in_transaction(self, begin: str, work: Callable[[sqlite3.Connection], T]) -> T:
        connection = self._connection()
        connection.execute(begin)
        try:
            result = work(connection)
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
        return result

    async def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a read transaction (one consistent snapshot) on the pool."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._in_transaction, "BEGIN", work)

    async def write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a write transaction; an exception rolls everything back."""
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._in_transaction, "BEGIN IMMEDIATE", work
        )

    async def once(
        self,
        operation: str,
        key: str,
        request: object,
        result_type: Any,
        work: Callable[[sqlite3.Connection], Any],
    ) -> Any:
        """Do ``work`` once per ``(operation, key)``; a repeat returns (or raises) what the first did.

        ``work`` returns the result, or *returns* a :class:`Refused` that is an outcome worth
        remembering (a declined card: the attempt happened). A raised exception rolls back and is
        not remembered, so a retry may succeed. Reusing a key for a different request is refused.
        """
        if not key:
            raise Refused("idempotency_key_missing", "An idempotency key is required.")
        fingerprint = codec.dumps(request)

        def run(connection: sqlite3.Connection) -> dict[str, Any]:
            found = connection.execute(
                "SELECT fingerprint, result FROM idempotency WHERE operation = ? AND key = ?", (operation, key)
            ).fetchone()
            if found is not None:
                if found[0] != fingerprint:
                    raise Refused("idempotency_key_reused", "This request was already made with different details.")
                stored: dict[str, Any] = json.loads(found[1])
                return stored
            outcome = work(connection)
            record = (
                {"refused": [outcome.code, outcome.message]}
                if isinstance(outcome, Refused)
                else {"ok": codec.to_plain(outcome)}
            )
            connection.execute(
                "INSERT INTO idempotency VALUES (?, ?, ?, ?, ?)",
                (operation, key, fingerprint, json.dumps(record), datetime.now(UTC).isoformat()),
            )
            return record

        record = await self.write(run)
        if "refused" in record:
            code, message = record["refused"]
            raise Refused(code, message)
        return codec.from_plain(result_type, record["ok"])

    @property
    def is_open(self) -> bool:
        """False once :meth:`close` ran (a test closed it), so nothing routes requests to it."""
        with _STORES_LOCK:
            return _STORES.get(self.path) is self

    def close(self) -> None:
        """Stop the pool, close every connection and forget the store (the portal keeps its stores
        for its lifetime; tests close theirs)."""
        with _STORES_LOCK:
            _STORES.pop(self.path, None)
        self._executor.shutdown(wait=True)
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


_STORES: dict[Path, Store] = {}
_STORES_LOCK = threading.Lock()


def open_store(path: Path, *, seed: int, size: int, today: date, time_zone: str) -> Store:
    """The process's store for ``path``, generating the file first when it does not exist yet.

    The four sandbox adapters share one store per file (one pool, one set of connections), and the
    demo personas hook asks here which seed is in use.
    """
    path = path.resolve()
    with _STORES_LOCK:
        store = _STORES.get(path)
        if store is None:
            install_database(path, seed=seed, size=size, today=today, time_zone=time_zone)
            with closing(sqlite3.connect(path)) as connection:
                meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
            if meta.get("schema_version") != SCHEMA_VERSION:
                raise RuntimeError(f"{path} was made by another version of the sandbox; delete it to regenerate it")
            store = _STORES[path] = Store(path, seed)
        return store


def live_stores() -> list[Store]:
    """Stores opened in this process, oldest first."""
    with _STORES_LOCK:
        return list(_STORES.values())
