"""Every controller of the identity domain, registered by ``portal.app`` in one line."""

from __future__ import annotations

from typing import Any

from portal.identity import guest_pages, patient_pages, patient_sso, proxy_pages, security_pages, staff

ROUTES: list[Any] = [
    *security_pages.ROUTES,
    *patient_pages.ROUTES,
    *staff.ROUTES,
    *patient_sso.ROUTES,
    *proxy_pages.ROUTES,
    *guest_pages.ROUTES,
]
