"""The x12 clearinghouse adapter: SDK requests in, X12 270/276 out, 271/277 back, SDK results out.

The adapter encodes a 270 (or 276) from the portal's request, exchanges it over the configured
real-time transport, decodes the 271 (or 277) and maps it to the SDK's models. What the payer says
(a rejection, a claim not found) is a result; what goes wrong on the way (a timeout, a malformed or
mismatched answer) is ``Unavailable``; request data X12 cannot carry is ``Refused``.
"""

from __future__ import annotations

import logging
import re
import secrets
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from carefront_sdk.adapters import AdapterContext
from carefront_sdk.config import ConfigField
from carefront_sdk.errors import ConfigError, Refused, Unavailable
from carefront_sdk.models import (
    ClaimStatus,
    ClaimStatusRequest,
    Coverage,
    EligibilityRequest,
    EligibilityResult,
    Health,
    Patient,
)

from carefront_x12.claim_status import ClaimStatusInquiry, claim_statuses, encode_276, parse_277
from carefront_x12.core import Envelope, X12Error
from carefront_x12.eligibility import EligibilityInquiry, Person, eligibility_result, encode_270, parse_271
from carefront_x12.transport import HttpsTransport, OAuth2ClientCredentials, Transport

__all__ = ["FIELDS", "PLUGIN", "X12Clearinghouse", "make_clearinghouse"]

PLUGIN = "x12"
log = logging.getLogger(__name__)

FIELDS: tuple[ConfigField, ...] = (
    ConfigField("endpoint_url", str, "The clearinghouse's real-time URL (CAQH CORE HTTP MIME), https://…"),
    ConfigField("auth", str, "How to sign in: basic (username/password) or oauth2 (client credentials)",
                default="basic", choices=("basic", "oauth2")),
    ConfigField("username", str, "Basic auth user name", default=""),
    ConfigField("password", str, "Basic auth password", default="", secret=True),
    ConfigField("token_url", str, "OAuth 2.0 token endpoint", default=""),
    ConfigField("client_id", str, "OAuth 2.0 client id", default=""),
    ConfigField("client_secret", str, "OAuth 2.0 client secret", default="", secret=True),
    ConfigField("scope", str, "OAuth 2.0 scope, when the clearinghouse wants one", default=""),
    ConfigField("submitter_id", str, "Your id at the clearinghouse: ISA06, GS02, the 276's information receiver"),
    ConfigField("receiver_id", str, "The clearinghouse's id: ISA08, GS03"),
    ConfigField("provider_npi", str, "The billing provider's 10-digit NPI"),
    ConfigField("provider_name", str, "The billing provider's name as the payers know it"),
    ConfigField("payer_ids", list, "Payer id map: entries 'portal payer id=clearinghouse payer id'", default=[]),
    ConfigField("usage", str, "ISA15: T for test data, P for production", default="T", choices=("T", "P")),
    ConfigField("timeout", float, "Seconds to wait for the clearinghouse (below the portal's adapter timeout)",
                default=8.0),
    ConfigField("trace_company_id", str, "TRN03: '1' + your EIN or '9' + an id you assign; default '9' + NPI[:9]",
                default=""),
)  # fmt: skip

# INS02 of 2100D: the patient's relationship to the subscriber.
_RELATIONSHIPS = {"spouse": "01", "child": "19", "other": "34"}
_NPI = re.compile(r"\d{10}")


def _npi_is_valid(npi: str) -> bool:
    # The NPI check digit is Luhn over "80840" + the first nine digits (CMS NPI standard).
    if not _NPI.fullmatch(npi):
        return False
    total = 0
    for index, char in enumerate(reversed("80840" + npi[:9])):
        digit = int(char) * (2 if index % 2 == 0 else 1)
        total += digit - 9 if digit > 9 else digit
    return (10 - total % 10) % 10 == int(npi[9])


def _payer_map(entries: Sequence[str]) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for entry in entries:
        portal_id, separator, clearinghouse_id = str(entry).partition("=")
        if not separator or not portal_id.strip() or not clearinghouse_id.strip():
            raise ConfigError(PLUGIN, "payer_ids", f"entries look like '60054=AETNA', got {entry!r}")
        mapping[portal_id.strip()] = clearinghouse_id.strip()
    return mapping


def _transport(config: Mapping[str, Any]) -> HttpsTransport:
    common = {
        "sender_id": config["submitter_id"],
        "receiver_id": config["receiver_id"],
        "timeout": float(config["timeout"]),
    }
    if not str(config["endpoint_url"]).startswith(("https://", "http://")):
        raise ConfigError(PLUGIN, "endpoint_url", "an https:// URL")
    if config["auth"] == "oauth2":
        for name in ("token_url", "client_id", "client_secret"):
            if not config[name]:
                raise ConfigError(PLUGIN, name, "is required when auth is oauth2")
        credentials = OAuth2ClientCredentials(
            config["token_url"], config["client_id"], config["client_secret"], config["scope"]
        )
        return HttpsTransport(config["endpoint_url"], oauth2=credentials, **common)
    for name in ("username", "password"):
        if not config[name]:
            raise ConfigError(PLUGIN, name, "is required when auth is basic")
    return HttpsTransport(config["endpoint_url"], basic_auth=(config["username"], config["password"]), **common)


def _split_name(full_name: str) -> tuple[str, str]:
    # Coverage keeps the subscriber's name whole; X12 wants family and given apart.
    *given, family = full_name.split() or [""]
    return " ".join(given), family


def _unusable(what: str, error: X12Error) -> Unavailable:
    # Positions only: an X12Error's message may quote the payload, which can hold PHI.
    return Unavailable(
        f"x12: the clearinghouse's {what} is unusable at segment {error.segment_id or '?'}"
        f" #{error.segment_position or '?'} element {error.element_position or '?'}"
    )


class X12Clearinghouse:
    """The Clearinghouse port over X12 005010."""

    def __init__(self, context: AdapterContext, *, transport: Transport | None = None) -> None:
        config = context.config
        if not _npi_is_valid(str(config["provider_npi"])):
            raise ConfigError(PLUGIN, "provider_npi", "a valid 10-digit NPI")
        self._config = config
        self._clock = context.clock
        self._zone = ZoneInfo(context.time_zone)
        self._payer_ids = _payer_map(config["payer_ids"])
        self._transport: Transport = transport or _transport(config)
        self._envelope = Envelope(
            sender_id=config["submitter_id"], receiver_id=config["receiver_id"], usage=config["usage"]
        )
        self._trace_company = config["trace_company_id"] or f"9{config['provider_npi'][:9]}"

    def _today(self) -> date:
        return self._clock().astimezone(self._zone).date()

    def _people(self, patient: Patient, coverage: Coverage) -> tuple[Person, Person | None, str | None]:
        relationship = coverage.relationship.strip().lower()
        if relationship in {"", "self"}:
            subscriber = Person(patient.given_name, patient.family_name, patient.birth_date, None, coverage.member_id)
            return subscriber, None, None
        given, family = _split_name(coverage.subscriber_name)
        subscriber = Person(given, family, coverage.subscriber_birth_date, None, coverage.member_id)
        dependent = Person(patient.given_name, patient.family_name, patient.birth_date)
        return subscriber, dependent, _RELATIONSHIPS.get(relationship, "34")

    async def health(self) -> Health:
        return await self._transport.health()

    async def check_eligibility(self, request: EligibilityRequest) -> EligibilityResult:
        coverage = request.coverage
        subscriber, dependent, relationship = self._people(request.patient, coverage)
        trace = uuid.uuid4().hex[:20].upper()
        inquiry = EligibilityInquiry(
            reference=trace,
            payer_id=self._payer_ids.get(coverage.payer_id, coverage.payer_id),
            payer_name=coverage.payer_name,
            provider_npi=self._config["provider_npi"],
            provider_name=self._config["provider_name"],
            subscriber=subscriber,
            trace_number=trace,
            trace_company_id=self._trace_company,
            dependent=dependent,
            relationship=relationship,
            group_number=coverage.group_number,
            service_types=(request.service_type,),
            service_date=request.on or self._today(),
        )
        try:
            payload = encode_270(
                inquiry, envelope=self._envelope, control_number=secrets.randbelow(999_999_999) + 1, when=self._clock()
            )
        except X12Error:
            raise Refused(
                "invalid_coverage",
                "The insurance details contain characters the insurer cannot accept. Check the member ID.",
            ) from None
        answer = await self._transport.exchange(payload)
        try:
            response = parse_271(answer)
        except X12Error as error:
            raise _unusable("271", error) from None
        patient = response.patient
        echoed = {t.number for t in patient.traces if t.type == "2"} if patient else set()
        if echoed and trace not in echoed:
            raise Unavailable("x12: the 271 answers another inquiry (its TRN does not echo ours)")
        result = eligibility_result(
            response, checked_at=self._clock(), payer_name=coverage.payer_name, trace_number=trace
        )
        log.info(
            "x12 271: active=%s benefits=%d rejection=%s",
            result.active,
            len(result.benefits),
            result.rejection.code if result.rejection else "-",
        )
        return result

    async def claim_status(self, request: ClaimStatusRequest) -> Sequence[ClaimStatus]:
        coverage = request.coverage
        subscriber, dependent, _ = self._people(request.patient, coverage)
        if request.charged.currency != "USD":
            raise Refused("invalid_claim", "Claim status can only be asked for claims in US dollars.")
        inquiry = ClaimStatusInquiry(
            reference=uuid.uuid4().hex[:20].upper(),
            payer_id=self._payer_ids.get(coverage.payer_id, coverage.payer_id),
            payer_name=coverage.payer_name,
            submitter_id=self._config["submitter_id"],
            submitter_name=self._config["provider_name"],
            provider_npi=self._config["provider_npi"],
            provider_name=self._config["provider_name"],
            subscriber=subscriber,
            claim_id=request.claim_id,
            charged_cents=request.charged.amount,
            service_date=request.service_date,
            dependent=dependent,
        )
        try:
            payload = encode_276(
                inquiry, envelope=self._envelope, control_number=secrets.randbelow(999_999_999) + 1, when=self._clock()
            )
        except X12Error:
            raise Refused("invalid_claim", "The claim details contain characters the insurer cannot accept.") from None
        answer = await self._transport.exchange(payload)
        try:
            response = parse_277(answer)
        except X12Error as error:
            raise _unusable("277", error) from None
        statuses = claim_statuses(response, claim_id=request.claim_id, as_of=self._clock())
        if not statuses:
            raise Unavailable("x12: the 277 reports no status for the claim asked about")
        log.info("x12 277: %s", ",".join(f"{s.category_code}/{s.status_code}" for s in statuses))
        return statuses


def make_clearinghouse(context: AdapterContext) -> X12Clearinghouse:
    """The factory the plugin registers: an adapter on the HTTPS transport its config describes."""
    return X12Clearinghouse(context)
