"""Who is on staff, by name: for assigning questions and for saying who looked at an account."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from portal.access import ACTING_ROLES
from portal.identity.tables import Account


async def staff_members() -> list[dict[str, Any]]:
    """Representatives and supervisors, by name: whom a question can be given to."""
    rows = (
        await Account.select(Account.public_id, Account.given_name, Account.family_name, Account.role)
        .where((Account.realm == "staff") & Account.role.is_in(list(ACTING_ROLES)))
        .order_by(Account.family_name)
        .order_by(Account.given_name)
        .run()
    )
    return [
        {"public_id": str(row["public_id"]), "name": f"{row['given_name']} {row['family_name']}", "role": row["role"]}
        for row in rows
    ]


async def names_of(public_ids: Iterable[str]) -> dict[str, str]:
    """Staff accounts' names by public id; ids that name no staff account are left out."""
    wanted = sorted({public_id for public_id in public_ids if _is_uuid(public_id)})
    if not wanted:
        return {}
    rows = (
        await Account.select(Account.public_id, Account.given_name, Account.family_name)
        .where((Account.realm == "staff") & Account.public_id.is_in(wanted))
        .run()
    )
    return {str(row["public_id"]): f"{row['given_name']} {row['family_name']}" for row in rows}


def _is_uuid(text: str | None) -> bool:
    try:
        uuid.UUID(text or "")
    except ValueError:
        return False
    return True
