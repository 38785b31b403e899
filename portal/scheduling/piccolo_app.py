"""The scheduling Piccolo app."""

from piccolo.conf.apps import AppConfig

from portal.database_paths import migrations_folder
from portal.scheduling.tables import Booking, Cancellation, Reminder

APP_CONFIG = AppConfig(
    app_name="scheduling",
    migrations_folder_path=str(migrations_folder("scheduling")),
    table_classes=[Booking, Cancellation, Reminder],
)
