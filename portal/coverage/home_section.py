"""The home page's insurance section: what about the patient's insurance needs them, if anything."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from carefront_sdk.models import CoverageRank
from litestar.plugins.htmx import HTMXRequest

from portal.audit.access import record_access
from portal.coverage import card_photos, changes, eligibility
from portal.coverage.on_file import coverages_on_file
from portal.home.sections import HomeSection
from portal.identity.sessions import Viewer
from portal.plugin_host import PluginHost


class Need(enum.StrEnum):
    NO_COVERAGE = "no_coverage"
    NOT_ACTIVE = "not_active"
    NOT_CONFIRMED = "not_confirmed"
    PHOTOS_MISSING = "photos_missing"


@dataclass(frozen=True, slots=True)
class Attention:
    need: Need
    rank: CoverageRank | None = None


async def coverage_section(
    request: HTMXRequest, viewer: Viewer, plugin_host: PluginHost, now: datetime
) -> HomeSection | None:
    patient_id = str(viewer.acting_for)
    read = await coverages_on_file(plugin_host, patient_id, now)
    pending = await changes.pending_changes(patient_id, now)
    checks = await eligibility.last_checks(patient_id)
    photos = await card_photos.current_photos(patient_id)
    await record_access(request, "coverage.read", patient_id)
    needs: list[Attention] = []
    if not read.value and not any(change.action is changes.Action.ADD for change in pending):
        needs.append(Attention(Need.NO_COVERAGE))
    for coverage in read.value:
        answer = checks.get(coverage.rank)
        if answer is not None and answer.outcome is eligibility.Outcome.INACTIVE:
            needs.append(Attention(Need.NOT_ACTIVE, coverage.rank))
        elif answer is not None and answer.outcome is eligibility.Outcome.REJECTED:
            needs.append(Attention(Need.NOT_CONFIRMED, coverage.rank))
        if any((coverage.rank, side) not in photos for side in card_photos.SIDES):
            needs.append(Attention(Need.PHOTOS_MISSING, coverage.rank))
    return HomeSection(
        "coverage/home_section.html",
        {"read": read, "coverages": read.value, "needs": needs, "waiting": bool(pending)},
        order=20,
    )
