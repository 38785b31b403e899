from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.engine.postgres import PostgresEngine

ID = "2026-11-22T21:45:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "no role but the table's owner may even ask to change audit rows (the triggers refuse the owner too)"

# The triggers (audit_2026_11_22t20_00_50) refuse UPDATE, DELETE and TRUNCATE from everyone. This takes
# the privileges away from every other role as well, so an application role that does not own the
# table (README: "The audit log on PostgreSQL") is refused by the privilege check before any trigger.
POSTGRES = ("REVOKE UPDATE, DELETE, TRUNCATE ON audit_event FROM PUBLIC",)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="audit", description=DESCRIPTION)

    async def revoke():
        engine = engine_finder()
        if isinstance(engine, PostgresEngine):
            for statement in POSTGRES:
                await engine.run_ddl(statement)

    manager.add_raw(revoke)
    return manager
