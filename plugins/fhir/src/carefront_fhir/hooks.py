"""The fhir plugin's hook implementations: it offers one EHR adapter, named "fhir"."""

from __future__ import annotations

from carefront_sdk import hookimpl
from carefront_sdk.adapters import AdapterRegistry

from carefront_fhir.config import FIELDS, PLUGIN
from carefront_fhir.ehr import FhirEHR

__all__ = ["carefront_register_ehr"]


@hookimpl
def carefront_register_ehr(registry: AdapterRegistry) -> None:
    registry.add(PLUGIN, FhirEHR, config=FIELDS)
