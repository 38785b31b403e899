"""The plans Piccolo app."""

from piccolo.conf.apps import AppConfig

from portal.database_paths import migrations_folder
from portal.plans.tables import (
    InstallmentAttempt,
    PaymentPlan,
    PlanChange,
    PlanInstallment,
    PlanNotice,
    PlanStatement,
)

APP_CONFIG = AppConfig(
    app_name="plans",
    migrations_folder_path=str(migrations_folder("plans")),
    table_classes=[PaymentPlan, PlanStatement, PlanInstallment, InstallmentAttempt, PlanChange, PlanNotice],
)
