"""Whom a patient page shows, checked again on every request: the ``acting_for_allowed`` dependency and
the ``clinical_access`` guard.

A patient page declares both where it needs them::

    from litestar.di import NamedDependency, Provide
    from portal.access import patients_only
    from portal.identity.acting_for import acting_for_allowed, clinical_access

    class AppointmentsController(Controller):
        guards = [patients_only, clinical_access]            # clinical_access only on clinical pages
        dependencies = {"viewer": Provide(acting_for_allowed)}

        @get("/appointments")
        async def appointments(self, viewer: NamedDependency[Viewer]) -> Template:
            ...  # viewer.acting_for is the patient to show; never take a patient id from the request

The session says whom the account acts for (``acting_for``) and with what ``access``; the dependency
checks that the grant behind it is still live, so a revoked proxy is refused on their very next
request, and puts the patient's name on ``request.state`` for the "You are viewing" banner
(templates/identity/proxies/acting_banner.html).

Both banners (this one, and the one staff see while acting as a patient:
portal/console/acting_middleware.py) take the name from :func:`patient_name`, which reads the patient
snapshot: the EHR is asked at most once in 30 seconds, not on every request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from carefront_sdk.errors import NotFound, Unavailable
from carefront_sdk.models import Patient
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from portal.access import ACTING_ROLES
from portal.identity.proxies import grant_is_live
from portal.identity.sessions import Access, Realm, Viewer, viewer
from portal.plugin_host import PluginHost
from portal.snapshots.service import read_through

BANNER_STATE = "acting_for"
"""The ``request.state`` key the banner reads: an :class:`ActingFor`, set only for proxies."""


@dataclass(frozen=True, slots=True)
class ActingFor:
    """What the banner says: whose account a proxy is viewing (the name is None when the EHR is down)."""

    name: str | None
    access: Access


async def acting_for_allowed(request: Request, plugin_host: NamedDependency[PluginHost]) -> Viewer:
    """The viewer of a patient page, once the right to see ``acting_for`` is confirmed.

    Guests pass as they are (``patients_only`` admits them only where a handler opts in, and the
    guest's pages check the statement). A patient account acting for itself passes; a proxy passes
    while its grant is live; a representative acting as the patient passes (realm staff, flagged
    ``impersonating``: pages that must refuse them check ``viewer.realm`` or use the
    ``not_impersonating`` guard). Anyone else, or a proxy who has not chosen whom to act for, is
    refused.
    """
    current = viewer(request)
    if current is None:
        raise NotAuthorizedException("Please sign in to continue.")
    if current.realm is Realm.GUEST:
        return current
    if current.realm is Realm.STAFF and current.impersonating and current.role in ACTING_ROLES:
        # The representative sees exactly what the patient sees; the acting banner (on every page, not
        # only patient pages: portal/console/acting_middleware.py) says whose account it is.
        return current
    if current.realm is not Realm.PATIENT or current.acting_for is None or current.access is None:
        raise PermissionDeniedException("Choose whose account to see first.")
    if current.access is Access.SELF:
        return current
    if not _is_uuid(current.account_id) or not await grant_is_live(
        str(current.account_id), current.acting_for, current.access
    ):
        raise PermissionDeniedException("That account is no longer shared with you.")
    request.state[BANNER_STATE] = ActingFor(await patient_name(plugin_host, current.acting_for), current.access)
    return current


def patient_key(patient_id: str) -> str:
    """The snapshot key of the patient's own record."""
    return f"patient:{patient_id}"


async def patient_name(plugin_host: PluginHost, patient_id: str) -> str | None:
    """The patient's name for a banner, from the patient snapshot (the EHR is asked when it is over 30 s old).

    None when the EHR does not know the patient, or is down with no copy kept: a banner then says
    "someone else's account" rather than failing the page.
    """
    try:
        read = await read_through(
            patient_key(patient_id), Patient, lambda: plugin_host.ehr.read_patient(patient_id), now=plugin_host.clock()
        )
    except (NotFound, Unavailable):
        return None
    return f"{read.value.given_name} {read.value.family_name}"


def _is_uuid(text: str | None) -> bool:
    try:
        uuid.UUID(text or "")
    except ValueError:
        return False
    return True


def clinical_access(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The guard of appointment and clinical pages: billing delegates and guests never see them."""
    current = viewer(connection)
    if current is None:
        raise NotAuthorizedException("Please sign in to continue.")
    if not current.sees_clinical:
        raise PermissionDeniedException("This page is not part of what was shared with you.")
