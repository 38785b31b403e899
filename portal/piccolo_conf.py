"""Piccolo's configuration module (``PICCOLO_CONF=portal.piccolo_conf``): the engine and the apps.

The portal rebinds ``DB`` at start-up from its settings (see ``portal.database.bind``); the value
here serves Piccolo's own command line, e.g. ``piccolo migrations new identity --auto``.
"""

import os

from piccolo.conf.apps import AppRegistry
from piccolo.engine.sqlite import SQLiteEngine

DB = SQLiteEngine(path=os.environ.get("CAREFRONT_PICCOLO_SQLITE", "var/carefront.sqlite3"))

APP_REGISTRY = AppRegistry(
    apps=[
        "portal.identity.piccolo_app",
        "portal.audit.piccolo_app",
        "portal.snapshots.piccolo_app",
        "portal.outbox.piccolo_app",
        "portal.questions.piccolo_app",
        "portal.scheduling.piccolo_app",
        "portal.coverage.piccolo_app",
        "portal.payments.piccolo_app",
        "portal.plans.piccolo_app",
    ]
)
