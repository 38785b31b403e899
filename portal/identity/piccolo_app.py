"""The identity Piccolo app."""

from piccolo.conf.apps import AppConfig

from portal.database_paths import migrations_folder
from portal.identity.tables import (
    Account,
    OidcLink,
    OneTimeCode,
    Passkey,
    ProxyGrant,
    ProxyInvitation,
    RecoveryCode,
    SignInEvent,
    Throttle,
    WebSession,
)

APP_CONFIG = AppConfig(
    app_name="identity",
    migrations_folder_path=str(migrations_folder("identity")),
    table_classes=[
        Account,
        OidcLink,
        OneTimeCode,
        Throttle,
        SignInEvent,
        WebSession,
        Passkey,
        ProxyInvitation,
        ProxyGrant,
        RecoveryCode,
    ],
)
