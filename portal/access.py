"""Who may reach which route: deny by default (PROMISES.md 1).

Every route needs a signed-in session unless its handler says ``opt={"public": True}``; staff
routes also need a staff role. Guards are small functions, attached once at the app level or on a
controller.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

STAFF_ROLES = frozenset({"representative", "supervisor", "administrator"})


def is_public(handler: BaseRouteHandler) -> bool:
    return bool(handler.opt.get("public"))


def signed_in(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """The app-wide guard: a session with an account, or a route marked public."""
    if is_public(handler):
        return
    if not connection.session.get("account_id"):
        raise NotAuthorizedException("Please sign in to continue.")


def staff_only(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    if connection.session.get("role") not in STAFF_ROLES:
        raise PermissionDeniedException("This page is for hospital staff.")
