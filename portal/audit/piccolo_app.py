"""The audit Piccolo app."""

from piccolo.conf.apps import AppConfig

from portal.audit.tables import ActingSession, AuditEvent
from portal.database_paths import migrations_folder

APP_CONFIG = AppConfig(
    app_name="audit",
    migrations_folder_path=str(migrations_folder("audit")),
    table_classes=[AuditEvent, ActingSession],
)
