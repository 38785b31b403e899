"""The snapshots Piccolo app."""

from piccolo.conf.apps import AppConfig

from portal.database_paths import migrations_folder
from portal.snapshots.tables import Snapshot

APP_CONFIG = AppConfig(
    app_name="snapshots",
    migrations_folder_path=str(migrations_folder("snapshots")),
    table_classes=[Snapshot],
)
