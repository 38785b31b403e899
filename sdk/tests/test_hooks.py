"""The registration hooks carry a plugin's adapters to the registry of their port.

These prove the SDK's half of each registration hook: pluggy calls the implementation with a registry
for the port, and the adapter offered is built from its resolved configuration. The portal's plugin
host has its own tests of choosing among plugins; the extension and event hooks are tested against the
real plugin host in tests/integration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pluggy
from carefront_sdk import PROJECT_NAME, hookimpl, hookspecs
from carefront_sdk.adapters import EHR, AdapterContext, AdapterRegistry, Clearinghouse, Notifier, PaymentGateway, Port
from carefront_sdk.config import ConfigField
from carefront_sdk.testing import (
    FakeClearinghouse,
    FakeEHR,
    FakeGateway,
    FakeNotifier,
    adapter_from_plugin,
    make_adapter_context,
)

_CLINIC = [ConfigField("clinic", str, "Which clinic this is", default="main")]


def _build(fake: Any) -> Any:
    def factory(context: AdapterContext) -> Any:
        adapter = fake.seeded(clock=context.clock)
        adapter.clinic = context.config["clinic"]
        return adapter

    return factory


class EverythingPlugin:
    @hookimpl
    def carefront_register_ehr(self, registry: AdapterRegistry) -> None:
        registry.add("fake", _build(FakeEHR), config=_CLINIC)

    @hookimpl
    def carefront_register_clearinghouse(self, registry: AdapterRegistry) -> None:
        registry.add("fake", _build(FakeClearinghouse), config=_CLINIC)

    @hookimpl
    def carefront_register_gateway(self, registry: AdapterRegistry) -> None:
        registry.add("fake", _build(FakeGateway), config=_CLINIC)

    @hookimpl
    def carefront_register_notifier(self, registry: AdapterRegistry) -> None:
        registry.add("fake", _build(FakeNotifier), config=_CLINIC)


def _context(tmp_path: Path) -> AdapterContext:
    return make_adapter_context(tmp_path, name="ignored", config={"clinic": "north"})


async def test_hook_carefront_register_ehr(tmp_path: Path) -> None:
    ehr = adapter_from_plugin(EverythingPlugin(), Port.EHR, "fake", _context(tmp_path))
    assert isinstance(ehr, EHR)
    assert ehr.clinic == "north"
    assert (await ehr.read_patient("pat-1")).given_name == "Alex"


async def test_hook_carefront_register_clearinghouse(tmp_path: Path) -> None:
    clearinghouse = adapter_from_plugin(EverythingPlugin(), Port.CLEARINGHOUSE, "fake", _context(tmp_path))
    assert isinstance(clearinghouse, Clearinghouse)
    assert (await clearinghouse.check_eligibility(clearinghouse.sample.eligible)).active


async def test_hook_carefront_register_gateway(tmp_path: Path) -> None:
    gateway = adapter_from_plugin(EverythingPlugin(), Port.GATEWAY, "fake", _context(tmp_path))
    assert isinstance(gateway, PaymentGateway)
    assert (await gateway.read_saved_method("pm_visa")).summary == "Visa ending 4242"


async def test_hook_carefront_register_notifier(tmp_path: Path) -> None:
    notifier = adapter_from_plugin(EverythingPlugin(), Port.NOTIFIER, "fake", _context(tmp_path))
    assert isinstance(notifier, Notifier)
    assert (await notifier.health()).ok


def test_no_hook_stops_at_the_first_result() -> None:
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    hooks = [getattr(manager.hook, name) for name in dir(manager.hook) if name.startswith("carefront_")]
    assert hooks
    assert [hook.name for hook in hooks if hook.spec.opts.get("firstresult")] == []
