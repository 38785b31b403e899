from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder

ID = "2026-11-22T19:48:30:000000"
VERSION = "1.38.0"
DESCRIPTION = "unique email per realm, one account per patient, one account per provider identity"

# Piccolo has no composite or partial unique constraints; both SQLite and PostgreSQL take these.
INDEXES = (
    "CREATE UNIQUE INDEX account_realm_email_unique ON account (realm, email) WHERE email IS NOT NULL",
    "CREATE UNIQUE INDEX account_patient_unique ON account (patient_id) WHERE realm = 'patient' AND patient_id IS NOT NULL",
    "CREATE UNIQUE INDEX oidc_link_identity_unique ON oidc_link (issuer, subject)",
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="identity", description=DESCRIPTION)

    async def create_indexes():
        engine = engine_finder()
        for statement in INDEXES:
            await engine.run_ddl(statement)

    async def drop_indexes():
        engine = engine_finder()
        for name in ("account_realm_email_unique", "account_patient_unique", "oidc_link_identity_unique"):
            await engine.run_ddl(f"DROP INDEX {name}")

    manager.add_raw(create_indexes)
    manager.add_raw_backwards(drop_indexes)
    return manager
