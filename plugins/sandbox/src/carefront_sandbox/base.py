"""What every sandbox adapter shares: its settings, its store, the hospital's clock and zone, latency."""

from __future__ import annotations

import asyncio
import random
from datetime import date, datetime
from zoneinfo import ZoneInfo

from carefront_sdk.adapters import AdapterContext
from carefront_sdk.config import ConfigField, resolve_config
from carefront_sdk.errors import ConfigError
from carefront_sdk.models import Health, require_aware

from carefront_sandbox.generator import MINIMUM_SIZE
from carefront_sandbox.store import Store, open_store

__all__ = ["DEMO_WEBHOOK_SECRET", "FIELDS", "PLUGIN", "SandboxAdapter"]

PLUGIN = "sandbox"

DEMO_WEBHOOK_SECRET = "whsec_sandbox_demo_only_not_a_secret"  # noqa: S105
"""The default webhook secret. It is public on purpose: the sandbox moves no real money."""

FIELDS: tuple[ConfigField, ...] = (
    ConfigField("seed", int, "Seed of the synthetic hospital: the same seed gives the same patients and bills", 7),
    ConfigField("size", int, f"Number of synthetic patients (at least {MINIMUM_SIZE})", 60),
    ConfigField("latency_ms", int, "Simulated latency of every call, in milliseconds (with a small jitter)", 0),
    ConfigField(
        "webhook_secret",
        str,
        "Secret that signs the test gateway's webhooks; the default is a published demo value, not a secret",
        DEMO_WEBHOOK_SECRET,
        secret=True,
    ),
)
"""The ``[adapters.sandbox]`` settings, shared by all four sandbox adapters."""


class SandboxAdapter:
    """The base of the sandbox's four adapters."""

    def __init__(self, context: AdapterContext, port: str) -> None:
        settings = resolve_config(PLUGIN, FIELDS, context.config)
        if settings["size"] < MINIMUM_SIZE:
            raise ConfigError(PLUGIN, "size", f"at least {MINIMUM_SIZE} patients, got {settings['size']}")
        if settings["latency_ms"] < 0:
            raise ConfigError(PLUGIN, "latency_ms", f"zero or more milliseconds, got {settings['latency_ms']}")
        self._zone = ZoneInfo(context.time_zone)
        self._clock = context.clock
        self._public_url = context.public_url.rstrip("/")
        self._webhook_secret: str = settings["webhook_secret"]
        self._latency = settings["latency_ms"] / 1000
        # The same seed gives the same sequence of delays, so a slow test run can be replayed.
        self._jitter = random.Random(f"{settings['seed']}:{port}")
        seed, size = settings["seed"], settings["size"]
        self._store: Store = open_store(
            context.data_dir / f"sandbox-{seed}-{size}.sqlite3",
            seed=seed,
            size=size,
            today=self._today(),
            time_zone=context.time_zone,
        )

    def _now(self) -> datetime:
        now = self._clock()
        require_aware(now, "AdapterContext.clock()")
        return now

    def _today(self) -> date:
        """Today in the hospital's time zone."""
        return self._now().astimezone(self._zone).date()

    async def _pause(self) -> None:
        """Wait as long as the configured latency says, within +/- 25 %."""
        await asyncio.sleep(self._latency * (0.75 + 0.5 * self._jitter.random()) if self._latency else 0)

    async def health(self) -> Health:
        """Whether the sandbox file answers."""
        await self._pause()
        patients = await self._store.read(
            lambda db: db.execute("SELECT value FROM meta WHERE key = 'size'").fetchone()[0]
        )
        return Health(ok=True, detail=f"sandbox seed {self._store.seed}, {patients} patients")
