"""Rate limits that hold across app processes: a counter per key and fixed time window, in the database.

Keys name what is limited and for whom, e.g. ``sign-in:account:<id>`` and ``sign-in:address:<ip>``
(PROMISES.md 5). Each attempt is counted in one atomic upsert, so concurrent requests cannot slip
past the limit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from portal.identity.tables import Throttle

KEY_LENGTH = Throttle.key.length

_COUNT = """
INSERT INTO throttle (key, window_started, count) VALUES ({}, {}, 1)
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN throttle.window_started <= {} THEN 1 ELSE throttle.count + 1 END,
    window_started = CASE WHEN throttle.window_started <= {} THEN {} ELSE throttle.window_started END
RETURNING count, window_started
"""


@dataclass(frozen=True, slots=True)
class Limit:
    attempts: int
    window: timedelta


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: timedelta
    """How long until the window ends (zero when allowed)."""


async def attempt(key: str, limit: Limit, now: datetime) -> Verdict:
    """Count one attempt under ``key``; refused once more than ``limit.attempts`` fall in one window."""
    seconds = int(now.timestamp())
    expired_before = seconds - int(limit.window.total_seconds())
    (row,) = await Throttle.raw(_COUNT, _stored(key), seconds, expired_before, expired_before, seconds).run()
    if row["count"] <= limit.attempts:
        return Verdict(True, timedelta(0))
    return Verdict(False, timedelta(seconds=row["window_started"] - expired_before))


async def clear(key: str) -> None:
    """Forget the attempts under ``key`` (after a successful sign-in, say)."""
    await Throttle.delete().where(Throttle.key == _stored(key)).run()


def _stored(key: str) -> str:
    """``key`` as the table keeps it: a key made from what someone typed (an email address) that does
    not fit the column, or holds a NUL PostgreSQL refuses, is kept as its digest."""
    if len(key) <= KEY_LENGTH and "\x00" not in key:
        return key
    return f"digest:{hashlib.sha256(key.encode(errors='surrogatepass')).hexdigest()}"
