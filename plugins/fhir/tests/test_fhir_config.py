"""The plugin's registration and the checks on its settings."""

from __future__ import annotations

from typing import Any

import pytest
from carefront_fhir import hooks
from carefront_fhir.config import DEFAULT_SCOPES, FIELDS, read_settings
from carefront_sdk.adapters import AdapterRegistry, Port
from carefront_sdk.errors import ConfigError
from carefront_sdk.models import ProxyAccess
from carefront_sdk.testing import check_hookimpls
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def _settings(**overrides: Any) -> dict[str, Any]:
    return {
        "base_url": "https://ehr.example/fhir/r4/",
        "auth": "none",
        "mrn_system": "urn:mrn",
        "account_system": "urn:account",
        "statement_code_system": "urn:statement",
    } | overrides


def test_hooks_follow_the_specs() -> None:
    check_hookimpls(hooks)


def test_registers_one_ehr_adapter_named_fhir_with_its_fields() -> None:
    registry = AdapterRegistry(Port.EHR, "fhir")
    hooks.carefront_register_ehr(registry)
    (registration,) = registry.registrations
    assert (registration.name, registration.config) == ("fhir", FIELDS)
    assert [field.name for field in FIELDS if field.secret] == ["private_key"]


def test_defaults() -> None:
    settings = read_settings(_settings())
    assert settings.base_url == "https://ehr.example/fhir/r4"
    assert settings.scopes == DEFAULT_SCOPES
    assert settings.relationships["BP"] is ProxyAccess.BILLING
    assert settings.relationships["GUARD"] is ProxyAccess.GUARDIAN
    assert settings.private_key is None


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"auth": "smart"}, "client_id"),
        ({"auth": "smart", "client_id": "c"}, "private_key"),
        ({"auth": "smart", "client_id": "c", "private_key": "not a key"}, "private_key"),
        ({"base_url": "ftp://ehr.example"}, "base_url"),
        ({"relationship_map": ["PRN=parent"]}, "relationship_map"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"max_retries": -1}, "max_retries"),
        ({"algorithm": "HS256"}, "algorithm"),
        ({"mrn_sytem": "urn:typo"}, "mrn_sytem"),
    ],
)
def test_wrong_settings_stop_start_up(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as error:
        read_settings(_settings(**overrides))
    assert error.value.field == field


def test_the_key_must_fit_the_algorithm(rsa_key: Any, ec_key: Any) -> None:
    with pytest.raises(ConfigError, match="P-384"):
        read_settings(_settings(auth="smart", client_id="c", private_key=rsa_key.private_pem, algorithm="ES384"))
    with pytest.raises(ConfigError, match="RSA"):
        read_settings(_settings(auth="smart", client_id="c", private_key=ec_key.private_pem))
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigError, match="2048"):
        read_settings(_settings(auth="smart", client_id="c", private_key=small.decode()))
    assert read_settings(
        _settings(auth="smart", client_id="c", private_key=ec_key.private_pem, algorithm="ES384")
    ).private_key
