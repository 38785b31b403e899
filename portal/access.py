"""Who may reach which route: deny by default (PROMISES.md 1).

Every route needs a session unless its handler says ``opt={"public": True}``. Patient pages need a
patient session (a guest session only where a handler says ``opt={"guest": True}``), staff pages a
staff session with a role the controller names. Guards are small functions, attached once at the
app level or on a controller.
"""

from __future__ import annotations

from collections.abc import Callable

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from portal.i18n import N_
from portal.identity.sessions import IMPERSONATOR, Realm, viewer
from portal.web.errors import ErrorText, Explained

ACTING_REFUSAL = ErrorText(
    N_("Not while acting as the patient"),
    N_(
        "Only the patient, signed in as themselves, can change sign-in details, contact details, "
        "two-step verification, passkeys or payment methods, or enter a card. Send them a pay link instead."
    ),
)

STAFF_ROLES = frozenset({"representative", "supervisor", "administrator"})
ACTING_ROLES = frozenset({"representative", "supervisor"})
"""Who may act as a patient (PROMISES.md 7)."""


def is_public(handler: BaseRouteHandler) -> bool:
    return bool(handler.opt.get("public"))


def signed_in(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The app-wide guard: a live session of any realm, or a route marked public."""
    if is_public(handler):
        return
    if viewer(connection) is None:
        raise NotAuthorizedException("Please sign in to continue.")


def patients_only(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Patient pages: a patient session, a representative acting as a patient, or a guest session where
    the handler allows guests."""
    current = viewer(connection)
    if current is None:
        raise NotAuthorizedException("Please sign in to continue.")
    if current.realm is Realm.PATIENT or (current.realm is Realm.GUEST and handler.opt.get("guest")):
        return
    if current.realm is Realm.STAFF and current.impersonating and current.role in ACTING_ROLES:
        return
    raise PermissionDeniedException("This page is for patients.")


def not_impersonating(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Credentials, contact details, MFA, passkeys and payment methods change only by the patient
    signed in as themselves: refused while a representative acts as the patient (PROMISES.md 7)."""
    current = viewer(connection)
    if current is not None and (current.impersonating or connection.session.get(IMPERSONATOR)):
        raise Explained(403, ACTING_REFUSAL)


def staff_with(*roles: str) -> Callable[[ASGIConnection, BaseRouteHandler], None]:
    """A guard for staff pages that the named roles (default: any staff role) may open."""
    allowed = frozenset(roles) or STAFF_ROLES

    def staff_guard(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
        current = viewer(connection)
        if current is None:
            raise NotAuthorizedException("Please sign in to continue.")
        if current.realm is not Realm.STAFF or current.role not in allowed:
            raise PermissionDeniedException("This page is for hospital staff.")

    return staff_guard


staff_only = staff_with()
