"""The payments Piccolo app."""

from piccolo.conf.apps import AppConfig

from portal.database_paths import migrations_folder
from portal.payments.tables import GatewayEvent, PayLink, PaymentAttempt

APP_CONFIG = AppConfig(
    app_name="payments",
    migrations_folder_path=str(migrations_folder("payments")),
    table_classes=[PaymentAttempt, GatewayEvent, PayLink],
)
