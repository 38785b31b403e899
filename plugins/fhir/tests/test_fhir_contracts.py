"""The SDK's EHR contract, run against Medplum's FHIR router with SMART Backend Services auth."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from carefront_fhir.ehr import FhirEHR
from carefront_sdk.testing import EHRContract, EHRSample


class TestFhirEHR(EHRContract):
    @pytest.fixture
    def ehr(self, make_ehr: Callable[..., FhirEHR]) -> FhirEHR:
        return make_ehr()

    @pytest.fixture
    def ehr_sample(self, sample: EHRSample) -> EHRSample:
        return sample
