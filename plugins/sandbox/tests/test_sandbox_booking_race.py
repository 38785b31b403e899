"""One slot, four OS processes sharing the sandbox file, five bookings each: exactly one wins."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from carefront_sandbox.ehr import SandboxEHR
from carefront_sdk.models import SlotQuery

# Each process opens the same file, says it is ready, waits for "go" on stdin, then books.
_RACER = """
import asyncio, json, sys
from datetime import datetime
from pathlib import Path
from carefront_sdk.errors import Refused
from carefront_sdk.testing import make_adapter_context
from carefront_sandbox.ehr import make_ehr

data_dir, slot, racer, now = Path(sys.argv[1]), sys.argv[2], sys.argv[3], datetime.fromisoformat(sys.argv[4])
ehr = make_ehr(make_adapter_context(data_dir, clock=lambda: now, time_zone="America/Chicago"))

async def book(n):
    try:
        return (await ehr.book(f"pt-{n + 1}", slot, f"process-{racer}-{n}")).id
    except Refused as refusal:
        return refusal.code

async def race():
    return await asyncio.gather(*(book(n) for n in range(5)))

print("ready", flush=True)
sys.stdin.readline()
print(json.dumps(asyncio.run(race())), flush=True)
"""


async def test_four_processes_racing_for_one_slot_book_it_once(ehr: SandboxEHR, data_dir: Path) -> None:
    slot = (await ehr.find_slots(SlotQuery("vt-follow-up", date(2025, 3, 5))))[0]
    now = datetime(2025, 3, 3, 15, tzinfo=UTC).isoformat()
    racers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _RACER,
            str(data_dir),
            slot.id,
            str(racer),
            now,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        for racer in range(4)
    ]
    for racer in racers:
        assert racer.stdout is not None
        assert (await asyncio.wait_for(racer.stdout.readline(), 60)).strip() == b"ready"
    # Every process has opened the file before any starts booking.
    answers = await asyncio.gather(*(asyncio.wait_for(racer.communicate(b"go\n"), 60) for racer in racers))
    outcomes = [outcome for stdout, _ in answers for outcome in json.loads(stdout)]
    assert len(outcomes) == 20
    winners = [outcome for outcome in outcomes if outcome.startswith("ap-")]
    assert len(winners) == 1
    assert outcomes.count("slot_taken") == 19
    booked = [appointment for n in range(1, 6) for appointment in await ehr.list_appointments(f"pt-{n}")]
    assert [appointment.id for appointment in booked if appointment.slot_id == slot.id] == winners
