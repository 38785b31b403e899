"""Coverage on file: read from the EHR through its snapshot, so the page renders while the EHR is down."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from carefront_sdk.errors import NotFound
from carefront_sdk.models import Coverage

from portal.plugin_host import PluginHost
from portal.snapshots.service import Read, read_through


def snapshot_key(patient_id: str) -> str:
    return f"coverages:{patient_id}"


async def coverages_on_file(plugin_host: PluginHost, patient_id: str, now: datetime) -> Read[tuple[Coverage, ...]]:
    """The patient's coverages, primary first; ``Unavailable`` only when the EHR is down and no copy exists."""

    async def fetch() -> tuple[Coverage, ...]:
        try:
            return tuple(await plugin_host.ehr.list_coverages(patient_id))
        except NotFound:
            return ()  # a patient the EHR does not know has no coverage on file

    return await read_through(snapshot_key(patient_id), tuple[Coverage, ...], fetch, now=now)


def find_coverage(coverages: Sequence[Coverage], coverage_id: str) -> Coverage:
    """The patient's coverage with this id; someone else's, or none, is NotFound alike."""
    for coverage in coverages:
        if coverage.id == coverage_id:
            return coverage
    raise NotFound("coverage", coverage_id)
