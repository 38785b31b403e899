"""The ``[adapters.fhir]`` settings: declared fields, and the checked values the adapter runs on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carefront_sdk.config import ConfigField, resolve_config
from carefront_sdk.errors import ConfigError
from carefront_sdk.models import ProxyAccess
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from joserfc.jwk import ECKey, RSAKey

__all__ = ["DEFAULT_RELATIONSHIPS", "DEFAULT_SCOPES", "FIELDS", "PLUGIN", "Settings", "read_settings"]

PLUGIN = "fhir"

DEFAULT_SCOPES = (
    "system/Patient.rs",
    "system/RelatedPerson.rs",
    "system/Account.rs",
    "system/Invoice.rs",
    "system/ChargeItem.rs",
    "system/Encounter.rs",
    "system/ExplanationOfBenefit.rs",
    "system/Organization.rs",
    "system/Practitioner.rs",
    "system/PractitionerRole.rs",
    "system/Location.rs",
    "system/HealthcareService.rs",
    "system/Schedule.rs",
    "system/Slot.rsu",
    "system/Appointment.crus",
    "system/Coverage.cruds",
    "system/PaymentReconciliation.crs",
    "system/PaymentNotice.crs",
)
"""SMART v2 scopes for every read and write the adapter makes, and no more."""

DEFAULT_RELATIONSHIPS = (
    # HL7 v3 RoleCode: parents and legal guardians act for a minor in everything.
    "GUARD=guardian",
    "PRN=guardian",
    "MTH=guardian",
    "FTH=guardian",
    "NPRN=guardian",
    "STPPRN=guardian",
    # Powers of attorney, spouses and family the patient chose: everything.
    "HPOWATT=caregiver",
    "DPOWATT=caregiver",
    "POWATT=caregiver",
    "SPS=caregiver",
    "FAMMEMB=caregiver",
    # HL7 v2 table 0131 "BP", billing contact person: statements, payments and plans only.
    "BP=billing",
)
"""RelatedPerson.relationship codes that make someone a proxy, and the access each one grants."""

FIELDS: tuple[ConfigField, ...] = (
    ConfigField("base_url", str, "The FHIR R4 server's base URL, e.g. https://ehr.hospital.example/fhir/r4"),
    ConfigField(
        "auth",
        str,
        'How to authorize: "smart" (SMART Backend Services) or "none" (only for a test server)',
        "smart",
        choices=("smart", "none"),
    ),
    ConfigField("token_url", str, "The token endpoint; empty to discover it from .well-known/smart-configuration", ""),
    ConfigField("client_id", str, "The client id registered for Carefront with the EHR (needed for smart)", ""),
    ConfigField(
        "private_key",
        str,
        "PEM private key that signs the client assertion (needed for smart); give it by $file or $env",
        "",
        secret=True,
    ),
    ConfigField("key_id", str, "The kid of that key in the JWK Set registered with the EHR", ""),
    ConfigField("algorithm", str, "Signing algorithm of the client assertion", "RS384", choices=("RS384", "ES384")),
    ConfigField("scopes", list, "SMART scopes to request", list(DEFAULT_SCOPES)),
    ConfigField("mrn_system", str, "Identifier.system of the hospital's medical record numbers"),
    ConfigField("account_system", str, "Identifier.system of guarantor account numbers (on Account)"),
    ConfigField("statement_code_system", str, "Identifier.system of the code printed on statements (on Invoice)"),
    ConfigField(
        "relationship_map",
        list,
        "CODE=access pairs: which RelatedPerson.relationship codes are proxies (guardian, caregiver, billing)",
        list(DEFAULT_RELATIONSHIPS),
    ),
    ConfigField(
        "payer_id_system",
        str,
        "Identifier.system of payer ids on Coverage.payor (default: NAIC company codes)",
        "urn:oid:2.16.840.1.113883.6.300",
    ),
    ConfigField(
        "idempotency_system",
        str,
        "Identifier.system under which Carefront's idempotency keys are stored on the resources it creates",
        "https://carefront.dev/fhir/idempotency-key",
    ),
    ConfigField(
        "online_visit_types",
        list,
        "Ids of the HealthcareServices patients may book online; empty means every active one",
        [],
    ),
    ConfigField("default_visit_minutes", int, "Visit length when a HealthcareService does not state its own", 30),
    ConfigField("statement_due_days", int, "Days from an Invoice's date to its due date, unless it states one", 30),
    ConfigField("currency", str, "ISO 4217 currency of amounts that do not name theirs", "USD"),
    ConfigField("timeout_seconds", float, "Seconds to wait for one answer from the EHR", 8.0),
    ConfigField("max_retries", int, "Retries after a 429 or 503 (honouring Retry-After) before giving up", 2),
    ConfigField("max_retry_wait_seconds", float, "Longest Retry-After the adapter waits out itself", 5.0),
    ConfigField("page_size", int, "_count asked for in searches", 50),
    ConfigField("max_pages", int, "Most Bundle pages one search may follow before it is refused", 20),
)
"""The ``[adapters.fhir]`` settings."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The checked settings of one adapter."""

    base_url: str
    auth: str
    token_url: str
    client_id: str
    private_key: RSAKey | ECKey | None
    key_id: str
    algorithm: str
    scopes: tuple[str, ...]
    mrn_system: str
    account_system: str
    statement_code_system: str
    relationships: Mapping[str, ProxyAccess]
    payer_id_system: str
    idempotency_system: str
    online_visit_types: frozenset[str]
    default_visit_minutes: int
    statement_due_days: int
    currency: str
    timeout_seconds: float
    max_retries: int
    max_retry_wait_seconds: float
    page_size: int
    max_pages: int


def _relationships(pairs: list[str]) -> dict[str, ProxyAccess]:
    mapped: dict[str, ProxyAccess] = {}
    for pair in pairs:
        code, _, access = pair.partition("=")
        try:
            mapped[code.strip()] = ProxyAccess(access.strip())
        except ValueError:
            choices = ", ".join(member.value for member in ProxyAccess)
            raise ConfigError(
                PLUGIN, "relationship_map", f"CODE=access with access one of {choices}, got {pair!r}"
            ) from None
    return mapped


def _private_key(pem: str, algorithm: str) -> RSAKey | ECKey:
    try:
        loaded = load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ConfigError(PLUGIN, "private_key", "an unencrypted PEM private key") from None
    if algorithm == "RS384":
        if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size < 2048:
            raise ConfigError(PLUGIN, "private_key", "an RSA key of at least 2048 bits for RS384")
        return RSAKey.import_key(pem)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp384r1":
        raise ConfigError(PLUGIN, "private_key", "an EC key on curve P-384 for ES384")
    return ECKey.import_key(pem)


def _positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(PLUGIN, name, f"a number above zero, got {value}")


def read_settings(raw: Mapping[str, Any]) -> Settings:
    """Check ``raw`` (the ``[adapters.fhir]`` section) and return the settings, or raise ``ConfigError``."""
    values = resolve_config(PLUGIN, FIELDS, raw)
    base_url = values["base_url"].rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        raise ConfigError(PLUGIN, "base_url", f"an http(s) URL, got {base_url!r}")
    private_key = None
    if values["auth"] == "smart":
        for name in ("client_id", "private_key"):
            if not values[name]:
                raise ConfigError(PLUGIN, name, 'is required when auth is "smart"')
        private_key = _private_key(values["private_key"], values["algorithm"])
    for name in ("timeout_seconds", "page_size", "max_pages", "default_visit_minutes"):
        _positive(name, values[name])
    for name in ("max_retries", "max_retry_wait_seconds", "statement_due_days"):
        if values[name] < 0:
            raise ConfigError(PLUGIN, name, f"zero or more, got {values[name]}")
    return Settings(
        base_url=base_url,
        auth=values["auth"],
        token_url=values["token_url"],
        client_id=values["client_id"],
        private_key=private_key,
        key_id=values["key_id"],
        algorithm=values["algorithm"],
        scopes=tuple(values["scopes"]),
        mrn_system=values["mrn_system"],
        account_system=values["account_system"],
        statement_code_system=values["statement_code_system"],
        relationships=_relationships(values["relationship_map"]),
        payer_id_system=values["payer_id_system"],
        idempotency_system=values["idempotency_system"],
        online_visit_types=frozenset(values["online_visit_types"]),
        default_visit_minutes=values["default_visit_minutes"],
        statement_due_days=values["statement_due_days"],
        currency=values["currency"],
        timeout_seconds=values["timeout_seconds"],
        max_retries=values["max_retries"],
        max_retry_wait_seconds=values["max_retry_wait_seconds"],
        page_size=values["page_size"],
        max_pages=values["max_pages"],
    )
