"""Every controller of the console, registered by ``portal.app`` in one line."""

from __future__ import annotations

from typing import Any

from portal.console import audit_pages, patient_pages, queue_pages
from portal.console.reports import pages as report_pages

ROUTES: list[Any] = [
    patient_pages.ConsolePatientsController,
    patient_pages.ActingController,
    *queue_pages.ROUTES,
    *audit_pages.ROUTES,
    *report_pages.ROUTES,
]
