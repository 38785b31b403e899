"""Background work: the periodic jobs, run in the web process or by ``carefront worker``.

Each pass runs every job once; a job that fails is logged and the others still run. Work is claimed
with leases and made exactly-once by unique keys, so any number of passes may run at once, in any
number of processes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from datetime import datetime

from carefront_sdk.models import Channel, Message

from portal.coverage.changes import DELIVERIES as COVERAGE_DELIVERIES
from portal.outbox.relay import Delivery, relay
from portal.payments.outbox import DELIVERIES as PAYMENT_DELIVERIES
from portal.payments.reconciliation import settle_unfinished
from portal.plans.notices import DELIVERIES as PLAN_DELIVERIES
from portal.plans.runner import run_installments
from portal.plugin_host import PluginHost
from portal.questions.notices import DELIVERIES as QUESTION_DELIVERIES
from portal.scheduling.booking import DELIVERIES as SCHEDULING_DELIVERIES
from portal.scheduling.reminders import send_reminders
from portal.settings import Settings

log = logging.getLogger("carefront.jobs")

DELIVERIES: Mapping[str, Delivery] = {
    **COVERAGE_DELIVERIES,
    **QUESTION_DELIVERIES,
    **SCHEDULING_DELIVERIES,
    **PAYMENT_DELIVERIES,
    **PLAN_DELIVERIES,
}
"""Every outbox message kind and how to deliver it: each domain's ``DELIVERIES``, merged here."""

Job = Callable[[PluginHost, Settings, datetime], Awaitable[object]]


async def relay_outbox(host: PluginHost, settings: Settings, now: datetime) -> object:
    async def tell_staff(kind: str, key: str, problem: str) -> None:
        if settings.hospital.alerts_email is None:
            return  # logged at ERROR by the relay: the only channel configured
        message = Message(
            channel=Channel.EMAIL,
            to=settings.hospital.alerts_email,
            subject=f"Carefront gave up sending a {kind}",
            text=f"The portal could not deliver {kind} ({key}) and stopped trying: {problem}\n"
            "Fix the cause, then find it in the outbox to send it again.",
        )
        try:
            await host.notifier.send(message, idempotency_key=f"outbox-parked:{key}")
        except Exception:  # telling staff must not stop the relay
            log.exception("could not tell staff about the parked message %s", key)

    return await relay(host, DELIVERIES, now=now, on_parked=tell_staff, max_attempts=settings.jobs.outbox_max_attempts)


JOBS: list[Job] = [run_installments, settle_unfinished, relay_outbox, send_reminders]
"""What every pass runs, in order."""


async def run_once(host: PluginHost, settings: Settings) -> None:
    for job in JOBS:
        try:
            await job(host, settings, host.clock())
        except Exception:  # one failing job must not starve the others
            log.exception("job %s failed", job.__name__)


async def run_forever(host: PluginHost, settings: Settings, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await run_once(host, settings)
        with suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.jobs.interval_seconds)


@asynccontextmanager
async def in_process(host: PluginHost, settings: Settings) -> AsyncIterator[None]:
    """Run the jobs beside the web app for as long as it serves (the embedded default)."""
    if not settings.jobs.in_process:
        yield
        return
    stop = asyncio.Event()
    task = asyncio.create_task(run_forever(host, settings, stop), name="carefront-jobs")
    try:
        yield
    finally:
        stop.set()
        await task
