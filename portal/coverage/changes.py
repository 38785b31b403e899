"""Adding, updating and removing a coverage: a row of ours and an outbox message in one transaction,
delivered to the EHR by the relay (``DELIVERIES``), and shown as pending until the EHR acknowledges it.

The outbox payload carries only the change's id: the member ID and the subscriber's name stay in our
table, never in a message a staff member may read while it is parked.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

from carefront_sdk.errors import NotFound, Refused
from carefront_sdk.models import CoverageChange, CoverageEvent, CoverageRank

from portal.coverage.on_file import snapshot_key
from portal.coverage.tables import CoverageChangeRequest
from portal.database import transaction
from portal.outbox.relay import Delivery, enqueue
from portal.outbox.tables import OutboxMessage
from portal.plugin_host import PluginHost
from portal.snapshots.service import forget

KIND = "ehr.write_coverage"
SHOWN_FOR = timedelta(days=30)
"""How long a change the EHR never took stays on the page."""


class Action(enum.StrEnum):
    ADD = "add"
    UPDATE = "update"
    REMOVE = "remove"


EVENT_CHANGE = {Action.ADD: "added", Action.UPDATE: "updated", Action.REMOVE: "removed"}


@dataclass(frozen=True, slots=True)
class Details:
    """What the patient typed about a coverage, checked and normalised."""

    rank: CoverageRank
    payer_id: str
    payer_name: str
    plan_name: str
    member_id: str
    group_number: str
    relationship: str
    subscriber_name: str
    """Empty when the patient is the subscriber: the EHR's own record of the patient is sent."""
    subscriber_birth_date: date | None


class Progress(enum.StrEnum):
    WAITING = "waiting"
    """Sent, or being sent, to the EHR."""
    REFUSED = "refused"
    """The EHR would not take it."""
    STUCK = "stuck"
    """The relay gave up; staff were told."""


@dataclass(frozen=True, slots=True)
class Pending:
    id: int
    action: Action
    rank: CoverageRank
    coverage_id: str | None
    payer_name: str
    requested_at: datetime
    progress: Progress


async def request_change(
    patient_id: str,
    action: Action,
    details: Details | None,
    *,
    coverage_id: str | None,
    rank: CoverageRank,
    actor: str,
    now: datetime,
) -> int:
    """Store the change and its outbox message together; the change's id."""
    key = f"coverage-change:{uuid.uuid4()}"
    values: dict[str, Any] = {
        "patient_id": patient_id,
        "action": action.value,
        "rank": rank.value,
        "coverage_id": coverage_id,
        "idempotency_key": key,
        "requested_at": now,
        "requested_by": actor,
    }
    if details is not None:
        values |= {
            "payer_id": details.payer_id,
            "payer_name": details.payer_name,
            "plan_name": details.plan_name,
            "member_id": details.member_id,
            "group_number": details.group_number,
            "subscriber_name": details.subscriber_name,
            "subscriber_birth_date": details.subscriber_birth_date,
            "relationship": details.relationship,
        }
    async with transaction():
        (row,) = (
            await CoverageChangeRequest.insert(CoverageChangeRequest(**values))
            .returning(CoverageChangeRequest.id)
            .run()
        )
        await enqueue(KIND, {"change_id": row["id"]}, key, now=now)
    return int(row["id"])


def event_for(patient_id: str, action: Action, coverage_id: str | None, now: datetime) -> CoverageEvent:
    return CoverageEvent(patient_id, coverage_id, EVENT_CHANGE[action], now)


async def pending_changes(patient_id: str, now: datetime) -> list[Pending]:
    """Changes the EHR has not acknowledged yet (or refused, or that could not be sent), oldest first."""
    rows = (
        await CoverageChangeRequest.select(
            CoverageChangeRequest.id,
            CoverageChangeRequest.action,
            CoverageChangeRequest.rank,
            CoverageChangeRequest.coverage_id,
            CoverageChangeRequest.payer_name,
            CoverageChangeRequest.requested_at,
            CoverageChangeRequest.refused_code,
            CoverageChangeRequest.idempotency_key,
        )
        .where(
            (CoverageChangeRequest.patient_id == patient_id)
            & CoverageChangeRequest.acknowledged_at.is_null()
            & (CoverageChangeRequest.requested_at > now - SHOWN_FOR)
        )
        .order_by(CoverageChangeRequest.requested_at)
        .run()
    )
    states = await _outbox_states([row["idempotency_key"] for row in rows])
    return [
        Pending(
            row["id"],
            Action(row["action"]),
            CoverageRank(row["rank"]),
            row["coverage_id"],
            row["payer_name"],
            row["requested_at"],
            _progress(row["refused_code"], states.get(row["idempotency_key"])),
        )
        for row in rows
    ]


async def _outbox_states(keys: list[str]) -> dict[str, str]:
    if not keys:
        return {}
    rows = (
        await OutboxMessage.select(OutboxMessage.idempotency_key, OutboxMessage.state)
        .where(OutboxMessage.idempotency_key.is_in(keys))
        .run()
    )
    return {row["idempotency_key"]: row["state"] for row in rows}


def _progress(refused_code: str | None, outbox_state: str | None) -> Progress:
    if refused_code is not None:
        return Progress.REFUSED
    return Progress.STUCK if outbox_state == "parked" else Progress.WAITING


async def deliver(plugin_host: PluginHost, payload: Mapping[str, Any], idempotency_key: str) -> None:
    """Send one change to the EHR with its key; record the EHR's answer in our table."""
    row = (
        await CoverageChangeRequest.select()
        .where(
            (CoverageChangeRequest.id == int(payload["change_id"]))
            & (CoverageChangeRequest.idempotency_key == idempotency_key)
        )
        .first()
        .run()
    )
    if row is None:
        raise Refused("unknown_change", "the coverage change this message carries does not exist")
    action = Action(row["action"])
    change = CoverageChange(
        patient_id=row["patient_id"],
        rank=CoverageRank(row["rank"]),
        payer_id=row["payer_id"],
        payer_name=row["payer_name"],
        plan_name=row["plan_name"],
        member_id=row["member_id"],
        group_number=row["group_number"] or None,
        subscriber_name=row["subscriber_name"],
        subscriber_birth_date=row["subscriber_birth_date"],
        relationship=row["relationship"],
        coverage_id=row["coverage_id"],
        remove=action is Action.REMOVE,
    )
    if action is not Action.REMOVE and change.relationship == "self":
        patient = await plugin_host.ehr.read_patient(change.patient_id)
        change = replace(
            change,
            subscriber_name=f"{patient.given_name} {patient.family_name}",
            subscriber_birth_date=patient.birth_date,
        )
    now = plugin_host.clock()
    try:
        stored = await plugin_host.ehr.write_coverage(change, idempotency_key)
    except NotFound:
        if action is not Action.REMOVE:
            await _refused(row["id"], "coverage_not_found")
            raise
        stored = None  # removing what is already gone has the effect asked for
    except Refused as refusal:
        await _refused(row["id"], refusal.code)
        raise
    await (
        CoverageChangeRequest.update(
            {
                CoverageChangeRequest.acknowledged_at: now,
                CoverageChangeRequest.stored_coverage_id: stored.id if stored else None,
            }
        )
        .where(CoverageChangeRequest.id == row["id"])
        .run()
    )
    await forget(snapshot_key(row["patient_id"]))


async def _refused(change_id: int, code: str) -> None:
    await (
        CoverageChangeRequest.update({CoverageChangeRequest.refused_code: code[:60]})
        .where(CoverageChangeRequest.id == change_id)
        .run()
    )


DELIVERIES: dict[str, Delivery] = {KIND: deliver}
