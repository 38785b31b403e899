"""The portal's database: which engine, which Piccolo apps, and their migrations.

SQLite (a file under the data folder) by default; PostgreSQL when ``DATABASE_URL`` says so. Each
domain is one Piccolo app whose migrations live in ``migrations/<app>/``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiosqlite
from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.apps.migrations.commands.forwards import ForwardsMigrationManager
from piccolo.apps.migrations.tables import Migration
from piccolo.conf.apps import AppConfig, Finder
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType, dict_factory

from portal import piccolo_conf
from portal.settings import Settings

log = logging.getLogger("carefront.database")

# Piccolo's own machinery (migrations) finds the apps through this module.
os.environ.setdefault("PICCOLO_CONF", "portal.piccolo_conf")


class UnappliedMigrations(Exception):
    """The database is behind the code; the portal refuses to serve it."""

    def __init__(self, pending: list[str]) -> None:
        super().__init__(
            "the database has unapplied migrations: " + ", ".join(pending) + ". Run `carefront migrate` first."
        )
        self.pending = pending


def engine_for(url: str) -> Engine:
    """Build (but do not connect) the Piccolo engine a database URL names."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        # A generous busy timeout lets app processes and workers share one SQLite file.
        return SQLiteConnections(path=str(path), timeout=30)
    parts = urlsplit(url)
    return PostgresEngine(config={"dsn": url.replace(f"{parts.scheme}://", "postgresql://", 1)})


class SQLiteConnections(SQLiteEngine):
    """Piccolo's SQLite engine, keeping a few connections open for the queries outside a transaction.

    Piccolo opens a connection (and aiosqlite a thread) for each such query and closes it after it:
    ~1 ms a query, and a page runs ten to twenty. Here up to ``KEEP`` connections stay open and are
    lent out one query at a time, so each query still runs alone and commits at once, as Piccolo's
    do. A connection whose query failed is closed, never lent again (it may hold a transaction open).
    Transactions still take a connection of their own (``get_connection``).
    """

    KEEP = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle: list[aiosqlite.Connection] = []

    async def _run_in_new_connection(
        self, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None
    ) -> Any:
        connection = self._idle.pop() if self._idle else await self._open()
        try:
            async with connection.execute(query, args or []) as cursor:
                await connection.commit()
                rows = await cursor.fetchall()
        except BaseException:
            await connection.close()
            raise
        if len(self._idle) < self.KEEP:
            self._idle.append(connection)
        else:
            await connection.close()
        return rows

    async def _open(self) -> aiosqlite.Connection:
        connection = aiosqlite.connect(**self.connection_kwargs)
        # aiosqlite's worker thread is not a daemon: an engine nobody closed (a test's, a CLI's that
        # failed) would keep the process from exiting. Its queries are done or abandoned by then.
        connection._thread.daemon = True
        await connection
        connection.row_factory = dict_factory
        await connection.execute("PRAGMA foreign_keys = 1")
        return connection

    async def close(self) -> None:
        """Close the connections kept open."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()


def transaction() -> Any:
    """One transaction on the bound engine; on SQLite it takes the write lock at once, so two writers
    wait for each other instead of one failing at commit."""
    engine = piccolo_conf.DB
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


def app_configs() -> list[AppConfig]:
    return list(piccolo_conf.APP_REGISTRY.app_configs.values())


def bind(engine: Engine) -> None:
    """Point every table, and Piccolo's own migration machinery, at ``engine``."""
    piccolo_conf.DB = engine
    Migration._meta.db = engine
    for config in app_configs():
        for table in config.table_classes:
            table._meta.db = engine


async def connect(settings: Settings) -> Engine:
    engine = engine_for(settings.database_url)
    bind(engine)
    if isinstance(engine, PostgresEngine):
        await engine.start_connection_pool(max_size=10)
    else:
        # WAL lets readers carry on while one writer commits; it is a property of the file.
        await engine.run_ddl("PRAGMA journal_mode=WAL")
    return engine


async def disconnect(engine: Engine) -> None:
    if isinstance(engine, PostgresEngine):
        await engine.close_connection_pool()
    elif isinstance(engine, SQLiteConnections):
        await engine.close()


async def pending_migrations() -> list[str]:
    """Migration ids present in the code but not recorded as applied, as ``app:id``."""
    manager = BaseMigrationManager()
    if not await Migration.table_exists().run():
        applied: set[tuple[str, str]] = set()
    else:
        rows = await Migration.select(Migration.app_name, Migration.name).run()
        applied = {(row["app_name"], row["name"]) for row in rows}
    pending = []
    for config in app_configs():
        modules = manager.get_migration_modules(config.resolved_migrations_folder_path)
        for migration_id in manager.get_migration_ids(modules):
            if (config.app_name, migration_id) not in applied:
                pending.append(f"{config.app_name}:{migration_id}")
    return pending


async def migrate(settings: Settings) -> list[str]:
    """Apply every pending migration; return what was applied."""
    engine = await connect(settings)
    try:
        pending = await pending_migrations()
        for app_name in Finder().get_sorted_app_names():
            # Piccolo narrates to stdout; keep it for the log instead.
            with contextlib.redirect_stdout(io.StringIO()) as narration:
                result = await ForwardsMigrationManager(app_name=app_name).run()
            log.debug("migrations for %s: %s", app_name, narration.getvalue().strip())
            if not result.success:
                raise RuntimeError(f"migrating {app_name} failed: {result.message}")
        return pending
    finally:
        await disconnect(engine)
