"""The x12 plugin's hook implementations: it offers one clearinghouse adapter, named "x12"."""

from __future__ import annotations

from carefront_sdk import hookimpl
from carefront_sdk.adapters import AdapterRegistry

from carefront_x12.adapter import FIELDS, PLUGIN, make_clearinghouse

__all__ = ["carefront_register_clearinghouse"]


@hookimpl
def carefront_register_clearinghouse(registry: AdapterRegistry) -> None:
    registry.add(PLUGIN, make_clearinghouse, config=FIELDS)
