"""The x12 plugin's hook implementations: one clearinghouse adapter, named "x12", and plain-language
explanations of the CARC, RARC and group codes an 835 carries."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from carefront_sdk import hookimpl
from carefront_sdk.adapters import AdapterRegistry

from carefront_x12.adapter import FIELDS, PLUGIN, make_clearinghouse
from carefront_x12.adjustment_codes import describe_codes

__all__ = ["carefront_code_descriptions", "carefront_register_clearinghouse"]


@hookimpl
def carefront_register_clearinghouse(registry: AdapterRegistry) -> None:
    registry.add(PLUGIN, make_clearinghouse, config=FIELDS)


@hookimpl
def carefront_code_descriptions(code_system: str, codes: Sequence[str], language: str) -> Mapping[str, str] | None:
    return describe_codes(code_system, codes, language)
