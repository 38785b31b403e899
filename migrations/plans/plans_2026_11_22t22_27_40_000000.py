from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T22:27:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "at most one live (active or paused) payment plan per patient"

# Piccolo has no partial unique constraints; both SQLite and PostgreSQL take this one.
INDEXES = (
    "CREATE UNIQUE INDEX payment_plan_live_unique ON payment_plan (patient_id) WHERE status IN ('active', 'paused')",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="plans", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        for statement in INDEXES:
            await engine.run_ddl(statement)

    async def drop_indexes():
        await engine_finder().run_ddl("DROP INDEX payment_plan_live_unique")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
