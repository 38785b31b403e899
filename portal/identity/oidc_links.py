"""Accounts linked to an identity at an OpenID provider: by (issuer, subject), never by email alone.

A service: it knows the tables and the rules, nothing of HTTP. A staff member's account is made on
their first sign-in through the workforce provider (just in time); a patient links their provider
identity to the account they already have, once signed in to it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portal.identity import accounts
from portal.identity.oidc import VerifiedIdentity
from portal.identity.sessions import Realm
from portal.identity.tables import Account, OidcLink


class _LinkedMeanwhile(Exception):
    """Rolls back the account made for an identity that a concurrent sign-in linked first."""


async def linked_account(issuer: str, subject: str, realm: Realm) -> dict[str, Any] | None:
    """The account of ``realm`` linked to the identity; None when there is none (or it is of another realm)."""
    link = (
        await OidcLink.select(OidcLink.account)
        .where((OidcLink.issuer == issuer) & (OidcLink.subject == subject))
        .first()
        .run()
    )
    if link is None:
        return None
    return await Account.select().where((Account.id == link["account"]) & (Account.realm == realm)).first().run()


async def link(account: dict[str, Any], issuer: str, subject: str, now: datetime) -> bool:
    """Link the identity to ``account``; False when it is linked already (to this or another account)."""
    inserted = (
        await OidcLink.insert(OidcLink(account=account["id"], issuer=issuer, subject=subject, created_at=now))
        .on_conflict(action="DO NOTHING")
        .returning(OidcLink.id)
        .run()
    )
    return bool(inserted)


async def staff_account(identity: VerifiedIdentity, role: str | None, now: datetime) -> dict[str, Any] | None:
    """The staff account linked to ``identity``, made on its first sign-in, holding ``role`` from now on.

    The role is what the provider's groups say today: it is written at every sign-in, and None
    (no role) when the groups no longer give one. Someone whose groups never gave a role gets no
    account: None.
    """
    account = await linked_account(identity.issuer, identity.subject, Realm.STAFF)
    if account is not None:
        if account["role"] != role:
            await accounts.update(str(account["public_id"]), role=role)
            account = {**account, "role": role}
        return account
    if role is None:
        return None
    given, family = _names(identity)
    # An address already on another staff account (the local administrator's, say) is not taken over.
    email = accounts.normal_email(identity.email or "")
    if email and await accounts.find_by_email(Realm.STAFF, email) is not None:
        email = None
    try:
        async with Account._meta.db.transaction():
            account = await accounts.create(
                now,
                realm=Realm.STAFF,
                email=email,
                email_verified_at=now if email else None,
                given_name=given,
                family_name=family,
                role=role,
            )
            if account is None or not await link(account, identity.issuer, identity.subject, now):
                raise _LinkedMeanwhile
    except _LinkedMeanwhile:
        return await staff_account(identity, role, now)
    return account


def _names(identity: VerifiedIdentity) -> tuple[str, str]:
    """Given and family name from the claims; a lone ``name`` is split at its last space."""
    if identity.given_name or identity.family_name:
        return (identity.given_name or "")[:100], (identity.family_name or "")[:100]
    given, _, family = (identity.name or "").rpartition(" ")
    return (given or family)[:100], (family if given else "")[:100]
