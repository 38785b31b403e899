"""The sandbox's hook implementations: four adapters, its pages and templates, demo personas, and what its
billing codes mean."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from carefront_sdk import hookimpl
from carefront_sdk.adapters import AdapterRegistry
from carefront_sdk.models import DemoPersona

from carefront_sandbox import descriptions, oidc, routes
from carefront_sandbox.base import FIELDS, PLUGIN
from carefront_sandbox.clearinghouse import make_clearinghouse
from carefront_sandbox.ehr import make_ehr
from carefront_sandbox.gateway import make_gateway
from carefront_sandbox.notifier import make_notifier
from carefront_sandbox.personas import demo_personas
from carefront_sandbox.store import live_stores

__all__ = [
    "TEMPLATES",
    "carefront_code_descriptions",
    "carefront_demo_personas",
    "carefront_register_clearinghouse",
    "carefront_register_ehr",
    "carefront_register_gateway",
    "carefront_register_notifier",
    "carefront_routes",
    "carefront_template_dirs",
]

TEMPLATES = Path(__file__).parent / "templates"
_DEFAULT_SEED: int = next(field.default for field in FIELDS if field.name == "seed")


@hookimpl
def carefront_register_ehr(registry: AdapterRegistry) -> None:
    registry.add(PLUGIN, make_ehr, config=FIELDS)


@hookimpl
def carefront_register_clearinghouse(registry: AdapterRegistry) -> None:
    registry.add(PLUGIN, make_clearinghouse, config=FIELDS)


@hookimpl
def carefront_register_gateway(registry: AdapterRegistry) -> None:
    registry.add(PLUGIN, make_gateway, config=FIELDS)


@hookimpl
def carefront_register_notifier(registry: AdapterRegistry) -> None:
    registry.add(PLUGIN, make_notifier, config=FIELDS)


@hookimpl
def carefront_routes() -> Sequence[Any]:
    return [routes.router(), oidc.router()]


@hookimpl
def carefront_template_dirs() -> Iterable[Path]:
    return [TEMPLATES]


@hookimpl
def carefront_demo_personas() -> Iterable[DemoPersona]:
    """The personas of the sandbox file in use (the latest opened), or of the default seed before one is."""
    stores = live_stores()
    return demo_personas(stores[-1].seed if stores else _DEFAULT_SEED)


@hookimpl
def carefront_code_descriptions(code_system: str, codes: Sequence[str], language: str) -> Mapping[str, str] | None:
    return descriptions.describe_codes(code_system, codes, language)
