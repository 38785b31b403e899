"""The coverage Piccolo app."""

from piccolo.conf.apps import AppConfig

from portal.coverage.tables import CardPhoto, CoverageChangeRequest, EligibilityCheck
from portal.database_paths import migrations_folder

APP_CONFIG = AppConfig(
    app_name="coverage",
    migrations_folder_path=str(migrations_folder("coverage")),
    table_classes=[CoverageChangeRequest, EligibilityCheck, CardPhoto],
)
