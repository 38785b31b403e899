"""The sandbox's hooks: valid against the specs, building all four adapters from one config section."""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points

from carefront_sandbox import hooks
from carefront_sandbox.base import FIELDS
from carefront_sandbox.personas import demo_personas
from carefront_sdk.adapters import EHR, AdapterContext, Clearinghouse, Notifier, PaymentGateway, Port
from carefront_sdk.testing import adapter_from_plugin, check_hookimpls


def test_hooks_match_the_specs_and_the_entry_point() -> None:
    check_hookimpls(hooks)
    (entry,) = [entry for entry in entry_points(group="carefront") if entry.name == "sandbox"]
    assert entry.load() is hooks


def test_every_port_is_offered_under_one_name_with_one_config(context: AdapterContext) -> None:
    config = {"seed": "9", "size": 50, "latency_ms": 0}  # a string, as $env gives it
    protocols = {
        Port.EHR: EHR,
        Port.CLEARINGHOUSE: Clearinghouse,
        Port.GATEWAY: PaymentGateway,
        Port.NOTIFIER: Notifier,
    }
    for port, protocol in protocols.items():
        adapter = adapter_from_plugin(hooks, port, "sandbox", dataclasses.replace(context, config=config))
        assert isinstance(adapter, protocol)
    assert (context.data_dir / "sandbox-9-50.sqlite3").exists()
    assert [field.name for field in FIELDS] == ["seed", "size", "latency_ms", "webhook_secret"]
    assert next(field for field in FIELDS if field.name == "webhook_secret").secret


def test_personas_cover_every_role_and_are_deterministic() -> None:
    personas = demo_personas(7)
    assert personas == demo_personas(7)
    assert personas != demo_personas(8)
    assert [persona.role for persona in personas] == [
        "patient",
        "patient",
        "guarantor",
        "patient",
        "representative",
        "supervisor",
    ]
    assert len({persona.email for persona in personas}) == len(personas)
    assert all(persona.email.endswith(("@example.org", "@staff.example.org")) for persona in personas)


def test_personas_hook_follows_the_sandbox_in_use(context: AdapterContext) -> None:
    assert list(hooks.carefront_demo_personas()) == demo_personas(7)
    adapter_from_plugin(hooks, Port.EHR, "sandbox", dataclasses.replace(context, config={"seed": 12, "size": 50}))
    assert list(hooks.carefront_demo_personas()) == demo_personas(12)


def test_templates_live_under_the_plugins_own_folder() -> None:
    (folder,) = hooks.carefront_template_dirs()
    assert sorted(path.name for path in (folder / "sandbox").iterdir()) == [
        "authenticate.html",
        "checkout.html",
        "oidc_sign_in.html",
        "outbox.html",
    ]
