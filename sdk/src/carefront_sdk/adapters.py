"""The four ports a hospital connects, as typed protocols, and the registry plugins hand them to.

Every method is ``async`` and takes and returns the frozen models of :mod:`carefront_sdk.models`.
Every mutating method takes an ``idempotency_key``: calling it again with the same key must not
do the thing twice, and must return the first call's result. Failures are raised only as the tiers
of :mod:`carefront_sdk.errors`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from carefront_sdk.config import ConfigField
from carefront_sdk.models import (
    Appointment,
    Channel,
    Checkout,
    CheckoutRequest,
    ClaimStatus,
    ClaimStatusRequest,
    Coverage,
    CoverageChange,
    Delivery,
    EligibilityRequest,
    EligibilityResult,
    GatewayPage,
    Health,
    Message,
    OffSessionCharge,
    Patient,
    PatientQuery,
    PatientSearch,
    Payment,
    PaymentPosting,
    PostingReceipt,
    Refund,
    RefundRequest,
    RelatedPerson,
    SavedMethod,
    SaveMethodRequest,
    SchedulingCatalog,
    Slot,
    SlotQuery,
    Statement,
    StatementSummary,
    WebhookEvent,
)

__all__ = [
    "EHR",
    "AdapterContext",
    "AdapterFactory",
    "AdapterRegistration",
    "AdapterRegistry",
    "Clearinghouse",
    "Notifier",
    "PaymentGateway",
    "Port",
]


class Port(enum.StrEnum):
    """The systems a hospital plugs in. Configuration picks one adapter for each."""

    EHR = "ehr"
    CLEARINGHOUSE = "clearinghouse"
    GATEWAY = "gateway"
    NOTIFIER = "notifier"


@runtime_checkable
class EHR(Protocol):
    """The EHR / practice-management system: the system of record for patients and their bills."""

    async def health(self) -> Health:
        """Cheap reachability check for ``/readyz`` and the plugins page."""
        ...

    async def match_patient(self, query: PatientQuery) -> Sequence[Patient]:
        """Every patient matching name, birth date and the identifier given; empty when none."""
        ...

    async def read_patient(self, patient_id: str) -> Patient:
        """The patient, or ``NotFound``."""
        ...

    async def search_patients(self, query: PatientSearch) -> Sequence[Patient]:
        """Patients matching every field of ``query`` (a representative finding a caller), at most
        ``query.limit``, ordered by family and given name; empty when none.

        .. versionadded:: 0.1
        """
        ...

    async def list_related_persons(self, patient_id: str) -> Sequence[RelatedPerson]:
        """Guardians, caregivers and billing delegates recorded for the patient."""
        ...

    async def list_statements(self, patient_id: str) -> Sequence[StatementSummary]:
        """The patient's statements, newest first."""
        ...

    async def read_statement(self, statement_id: str) -> Statement:
        """One statement with visits and itemized lines, or ``NotFound``."""
        ...

    async def find_statement_by_code(self, statement_code: str) -> StatementSummary:
        """The statement whose printed code this is, or ``NotFound`` (guest payment)."""
        ...

    async def list_coverages(self, patient_id: str) -> Sequence[Coverage]:
        """Coverage on file, primary first."""
        ...

    async def write_coverage(self, change: CoverageChange, idempotency_key: str) -> Coverage | None:
        """Add, replace or remove a coverage; the stored coverage, or None when removed."""
        ...

    async def read_scheduling_catalog(self) -> SchedulingCatalog:
        """Visit types, locations and providers that patients may see."""
        ...

    async def list_appointments(self, patient_id: str) -> Sequence[Appointment]:
        """Past and upcoming appointments, soonest first."""
        ...

    async def find_slots(self, query: SlotQuery) -> Sequence[Slot]:
        """Open slots on ``query.day`` (in the hospital's time zone), earliest first."""
        ...

    async def book(self, patient_id: str, slot_id: str, idempotency_key: str) -> Appointment:
        """Book the slot; ``Refused("slot_taken", ...)`` when it is no longer open (booked under
        any other idempotency key, by anyone), ``NotFound`` when the slot or patient is unknown."""
        ...

    async def cancel(self, appointment_id: str, reason: str, idempotency_key: str) -> Appointment:
        """Cancel the appointment and free its slot; ``NotFound`` when the appointment is unknown."""
        ...

    async def post_payment(self, posting: PaymentPosting, idempotency_key: str) -> PostingReceipt:
        """Record a payment taken through the portal against the patient's account."""
        ...


@runtime_checkable
class Clearinghouse(Protocol):
    """Real-time insurance transactions (X12 270/271, 276/277 or a vendor API)."""

    async def health(self) -> Health:
        """Cheap reachability check."""
        ...

    async def check_eligibility(self, request: EligibilityRequest) -> EligibilityResult:
        """Is the coverage active, and what does the patient pay for the service type."""
        ...

    async def claim_status(self, request: ClaimStatusRequest) -> Sequence[ClaimStatus]:
        """Where a claim stands with the payer."""
        ...


@runtime_checkable
class PaymentGateway(Protocol):
    """Takes card and bank payments; card data goes to the gateway, never to Carefront."""

    async def health(self) -> Health:
        """Cheap reachability check."""
        ...

    async def start_checkout(self, request: CheckoutRequest, idempotency_key: str) -> Checkout:
        """Begin a payment: a hosted page to redirect to, or a client secret for an element."""
        ...

    async def read_payment(self, reference: str) -> Payment:
        """A payment (or a checkout, by its reference) as the gateway sees it now."""
        ...

    async def start_saving_method(self, request: SaveMethodRequest, idempotency_key: str) -> Checkout:
        """Begin saving a method for later off-session charges (autopay)."""
        ...

    async def read_saved_method(self, reference: str) -> SavedMethod:
        """A saved method by its reference, or ``NotFound``."""
        ...

    async def charge_saved_method(self, charge: OffSessionCharge, idempotency_key: str) -> Payment:
        """Charge a saved method with the patient away; a decline is ``Refused``."""
        ...

    async def refund(self, request: RefundRequest, idempotency_key: str) -> Refund:
        """Refund all or part of a payment."""
        ...

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        """Verify the signature and freshness of a notification and parse it; ``WebhookRejected`` if not."""
        ...


@runtime_checkable
class Notifier(Protocol):
    """Sends email and text messages to patients and staff."""

    channels: frozenset[Channel]
    """The channels this notifier can deliver."""

    async def health(self) -> Health:
        """Cheap reachability check."""
        ...

    async def send(self, message: Message, idempotency_key: str) -> Delivery:
        """Hand the message to the provider; ``Refused`` for an address it will never accept."""
        ...


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What the portal gives an adapter factory."""

    name: str
    """The adapter's registered name."""
    config: Mapping[str, Any]
    """The resolved ``[adapters.<name>]`` settings."""
    data_dir: Path
    """A folder the adapter may keep files in (not served to browsers)."""
    public_url: str
    """The portal's external base URL, for return and webhook URLs."""
    time_zone: str
    """The hospital's IANA time zone."""
    clock: Callable[[], datetime]
    """The current time, aware; tests move it."""


AdapterFactory = Callable[[AdapterContext], Any]


@dataclass(frozen=True, slots=True)
class AdapterRegistration:
    port: Port
    name: str
    factory: AdapterFactory
    config: tuple[ConfigField, ...]
    plugin: str
    page: GatewayPage | None = None
    """Payment gateways only: what the payment page must allow and load for this adapter."""


@dataclass
class AdapterRegistry:
    """Collects the adapters plugins offer for one port; the portal then picks one by name.

    The plugin host creates one registry per port and per plugin, so it knows who offered what.
    """

    port: Port
    plugin: str
    registrations: list[AdapterRegistration] = field(default_factory=list)

    def add(
        self,
        name: str,
        factory: AdapterFactory,
        *,
        config: Sequence[ConfigField] = (),
        page: GatewayPage | None = None,
    ) -> None:
        """Offer an adapter called ``name``, built by ``factory(context)`` once it is chosen.

        Adapters a plugin offers for several ports under one name share one ``[adapters.<name>]``
        section of configuration. A payment gateway whose checkout is an element on the portal's
        page, or a hosted page on another origin, declares what that page needs in ``page``.
        """
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"adapter name must be letters, digits, - or _, got {name!r}")
        if page is not None and self.port is not Port.GATEWAY:
            raise ValueError("only a payment gateway declares a page")
        self.registrations.append(AdapterRegistration(self.port, name, factory, tuple(config), self.plugin, page))
