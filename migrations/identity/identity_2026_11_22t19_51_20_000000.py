from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T19:51:20:000000"
VERSION = "1.38.0"
DESCRIPTION = "one live proxy grant per proxy and patient"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="identity", description=DESCRIPTION)

    async def create_index():
        # A partial unique index: Piccolo has none, and both SQLite and PostgreSQL take this.
        await engine_finder().run_ddl(
            "CREATE UNIQUE INDEX proxy_grant_live_unique ON proxy_grant (proxy, patient_id) WHERE revoked_at IS NULL"
        )

    async def drop_index():
        await engine_finder().run_ddl("DROP INDEX proxy_grant_live_unique")

    manager.add_raw(create_index)
    manager.add_raw_backwards(drop_index)
    return manager
