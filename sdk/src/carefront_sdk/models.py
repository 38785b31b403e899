"""Every value that crosses the boundary between the portal and a plugin.

All models are frozen dataclasses. Money is integer minor units plus an ISO 4217 currency code;
every ``datetime`` is time-zone aware; ``date`` is a calendar day with no zone. Identifiers are the
source system's own, as strings, and opaque to the portal.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime

__all__ = [
    "Adjustment",
    "Appointment",
    "AppointmentEvent",
    "AppointmentStatus",
    "AuditEvent",
    "Channel",
    "ChargeLine",
    "Checkout",
    "CheckoutKind",
    "CheckoutRequest",
    "ClaimStatus",
    "ClaimStatusRequest",
    "CodeSystem",
    "Coverage",
    "CoverageChange",
    "CoverageEvent",
    "CoverageRank",
    "DashboardCard",
    "Delivery",
    "DemoPersona",
    "EligibilityBenefit",
    "EligibilityRejection",
    "EligibilityRequest",
    "EligibilityResult",
    "GatewayPage",
    "Health",
    "Location",
    "Message",
    "Money",
    "NavItem",
    "OffSessionCharge",
    "Patient",
    "PatientQuery",
    "PatientSearch",
    "Payment",
    "PaymentEvent",
    "PaymentPosting",
    "PaymentStatus",
    "PlanEvent",
    "PostingReceipt",
    "Provider",
    "ProxyAccess",
    "Refund",
    "RefundRequest",
    "RelatedPerson",
    "SaveMethodRequest",
    "SavedMethod",
    "SchedulingCatalog",
    "Slot",
    "SlotQuery",
    "Statement",
    "StatementSummary",
    "Visit",
    "VisitType",
    "WebhookEvent",
    "require_aware",
]


def require_aware(value: datetime, name: str) -> None:
    """Refuse a naive datetime: a time without a zone is ambiguous across a hospital's sites."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be time-zone aware, got naive {value!r}")


# --- Money ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Money:
    """An amount in integer minor units (cents) of ``currency``; never a float."""

    amount: int
    currency: str = "USD"

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise TypeError(f"Money.amount must be an int of minor units, got {self.amount!r}")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"Money.currency must be an ISO 4217 code, got {self.currency!r}")

    def _same_currency(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    @classmethod
    def zero(cls, currency: str = "USD") -> Money:
        return cls(0, currency)


# --- Patients and proxies ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PatientQuery:
    """Who is asking to be matched: legal name, birth date and one identifier from a letter or bill."""

    given_name: str
    family_name: str
    birth_date: date
    mrn: str | None = None
    account_number: str | None = None
    statement_code: str | None = None

    def __post_init__(self) -> None:
        if not (self.mrn or self.account_number or self.statement_code):
            raise ValueError("PatientQuery needs one of mrn, account_number or statement_code")


@dataclass(frozen=True, slots=True)
class PatientSearch:
    """What a representative knows about a caller, to find their record (``EHR.search_patients``).

    Every field given must match: ``name`` is a family name, or a given and a family name ("Ana
    Lopez"), compared without case or extra spaces; ``phone`` compares digits only; the identifiers
    compare exactly (a statement code without spaces, dashes or case). At least one field is needed.

    .. versionadded:: 0.1
    """

    name: str | None = None
    birth_date: date | None = None
    mrn: str | None = None
    account_number: str | None = None
    phone: str | None = None
    statement_code: str | None = None
    limit: int = 20
    """At most this many patients come back."""

    def __post_init__(self) -> None:
        if not any((self.name, self.birth_date, self.mrn, self.account_number, self.phone, self.statement_code)):
            raise ValueError("PatientSearch needs at least one field")
        if self.limit < 1:
            raise ValueError("PatientSearch.limit must be at least 1")

    @property
    def name_parts(self) -> tuple[str | None, str]:
        """(given name or None, family name) of ``name``: its last word is the family name."""
        words = (self.name or "").split()
        if len(words) < 2:
            return None, " ".join(words)
        return " ".join(words[:-1]), words[-1]

    @property
    def phone_digits(self) -> str:
        """The phone's digits, national part only for a US number written with its +1."""
        digits = "".join(ch for ch in self.phone or "" if ch.isdigit())
        return digits[1:] if len(digits) == 11 and digits.startswith("1") else digits


@dataclass(frozen=True, slots=True)
class Patient:
    id: str
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    account_number: str
    """The guarantor account the patient's statements are billed to."""
    email: str | None = None
    phone: str | None = None
    language: str = "en"
    address: str | None = None


class ProxyAccess(enum.StrEnum):
    """What a proxy may see and do for the patient."""

    GUARDIAN = "guardian"
    """Parent or legal guardian of a minor: everything."""
    CAREGIVER = "caregiver"
    """Invited by the patient: everything."""
    BILLING = "billing"
    """Billing-only delegate: statements, payments and plans; no appointments or clinical text."""


@dataclass(frozen=True, slots=True)
class RelatedPerson:
    """Someone the EHR records as acting for the patient (FHIR RelatedPerson)."""

    id: str
    patient_id: str
    given_name: str
    family_name: str
    relationship: str
    access: ProxyAccess
    birth_date: date | None = None
    email: str | None = None
    patient_id_of_proxy: str | None = None
    """When the proxy is a patient of the hospital too, their own patient id."""


# --- Statements ----------------------------------------------------------------------------------


class CodeSystem(enum.StrEnum):
    """The code systems of a statement, as ``ChargeLine.code_system`` and the code-description hook name them."""

    CPT = "CPT"
    HCPCS = "HCPCS"
    REV = "REV"
    """UB-04 revenue codes (hospital facility charges)."""
    CARC = "CARC"
    """X12 claim adjustment reason codes (``Adjustment.reason_code``)."""
    RARC = "RARC"
    """X12 remittance advice remark codes (``Adjustment.remark_codes``)."""
    CAGC = "CAGC"
    """X12 claim adjustment group codes (``Adjustment.group_code``): CO, PR, OA, PI."""


@dataclass(frozen=True, slots=True)
class Adjustment:
    """Why a line's charge was reduced or left to the patient (X12 CAS / 835 semantics)."""

    amount: Money
    group_code: str
    """CO contractual, PR patient responsibility, OA other, PI payer initiated."""
    reason_code: str
    """A CARC, e.g. "45" (charge exceeds fee schedule) or "1" (deductible)."""
    remark_codes: tuple[str, ...] = ()
    """RARCs that explain the CARC further."""


@dataclass(frozen=True, slots=True)
class Visit:
    id: str
    started_on: date
    kind: str
    """Office visit, emergency, inpatient stay, outpatient procedure, lab, imaging."""
    department: str
    provider: str
    ended_on: date | None = None


@dataclass(frozen=True, slots=True)
class ChargeLine:
    """One itemized line of a statement.

    The line adds up: ``patient_owes == charged - insurance_paid - (adjustments not in group PR)``.
    Contractual and other reductions (CO, OA, PI) lower what anyone owes; PR adjustments (deductible,
    coinsurance, copay) do not reduce the charge, they explain why the patient owes it. A self-pay
    line has no adjustments and the patient owes the whole charge. All amounts share one currency.
    """

    id: str
    visit_id: str
    service_date: date
    code: str
    code_system: str
    """CPT, HCPCS or REV (UB-04 revenue code)."""
    description: str
    provider: str
    quantity: int
    charged: Money
    insurance_paid: Money
    adjustments: tuple[Adjustment, ...]
    patient_owes: Money


@dataclass(frozen=True, slots=True)
class StatementSummary:
    """A statement's totals, which are the sums of its lines (see :class:`ChargeLine`):

    - ``total_charged`` is the sum of the lines' ``charged``, ``insurance_paid`` of their
      ``insurance_paid``, and ``adjustments`` of their adjustments not in group PR;
    - ``balance == sum(line.patient_owes) - patient_paid``, hence also
      ``balance == total_charged - insurance_paid - adjustments - patient_paid``.

    The contract kit's ``statement_problems`` checks exactly this.
    """

    id: str
    patient_id: str
    account_number: str
    statement_code: str
    """The code printed on the paper bill, used for guest payment and sign-up matching."""
    issued_on: date
    due_on: date
    total_charged: Money
    insurance_paid: Money
    adjustments: Money
    patient_paid: Money
    """What the patient has paid towards this statement (through the portal or otherwise)."""
    balance: Money
    """What the patient still owes on this statement; negative is a credit."""


@dataclass(frozen=True, slots=True)
class Statement:
    summary: StatementSummary
    visits: tuple[Visit, ...]
    lines: tuple[ChargeLine, ...]


# --- Coverage and eligibility --------------------------------------------------------------------


class CoverageRank(enum.StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclass(frozen=True, slots=True)
class Coverage:
    id: str
    patient_id: str
    rank: CoverageRank
    payer_id: str
    payer_name: str
    plan_name: str
    member_id: str
    group_number: str | None
    subscriber_name: str
    subscriber_birth_date: date
    relationship: str
    """The patient's relationship to the subscriber: self, spouse, child, other."""
    starts_on: date
    ends_on: date | None = None


@dataclass(frozen=True, slots=True)
class CoverageChange:
    """Add (``coverage_id`` None), replace, or remove (``remove`` True) a coverage on file."""

    patient_id: str
    rank: CoverageRank
    payer_id: str = ""
    payer_name: str = ""
    plan_name: str = ""
    member_id: str = ""
    group_number: str | None = None
    subscriber_name: str = ""
    subscriber_birth_date: date | None = None
    relationship: str = "self"
    starts_on: date | None = None
    coverage_id: str | None = None
    remove: bool = False


@dataclass(frozen=True, slots=True)
class EligibilityRequest:
    coverage: Coverage
    patient: Patient
    service_type: str = "30"
    """X12 service type code; 30 is health benefit plan coverage, 98 a professional office visit."""
    on: date | None = None


@dataclass(frozen=True, slots=True)
class EligibilityBenefit:
    """One EB segment's meaning, in the portal's words."""

    kind: str
    """copay, coinsurance, deductible, out_of_pocket."""
    service_type: str
    in_network: bool
    amount: Money | None = None
    remaining: Money | None = None
    percent: int | None = None
    period: str | None = None
    """calendar_year, visit, lifetime."""


@dataclass(frozen=True, slots=True)
class EligibilityRejection:
    """A 271 AAA segment: the payer could not answer, and why."""

    code: str
    """AAA03 reject reason, e.g. "72" invalid member ID."""
    message: str
    follow_up: str
    """AAA04 follow-up action, e.g. "C" correct and resubmit."""


@dataclass(frozen=True, slots=True)
class EligibilityResult:
    active: bool
    checked_at: datetime
    payer_name: str
    plan_name: str | None = None
    benefits: tuple[EligibilityBenefit, ...] = ()
    rejection: EligibilityRejection | None = None
    trace_number: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.checked_at, "EligibilityResult.checked_at")


@dataclass(frozen=True, slots=True)
class ClaimStatusRequest:
    patient: Patient
    coverage: Coverage
    claim_id: str
    service_date: date
    charged: Money


@dataclass(frozen=True, slots=True)
class ClaimStatus:
    claim_id: str
    category_code: str
    """X12 claim status category (STC01-1), e.g. F1 finalized/payment, P1 pending."""
    status_code: str
    message: str
    as_of: datetime
    paid: Money | None = None

    def __post_init__(self) -> None:
        require_aware(self.as_of, "ClaimStatus.as_of")


# --- Scheduling ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitType:
    id: str
    name: str
    duration_minutes: int
    bookable_online: bool
    instructions: str = ""
    call_phone: str | None = None
    """Whom to call when the visit type cannot be booked online."""
    typical_charge: Money | None = None
    """The hospital's usual charge for this visit (its fee schedule), for the patient's pre-visit cost
    estimate; None when the hospital publishes none."""
    service_type: str = "30"
    """The X12 service type code the payer is asked about for the estimate: 98 a professional office
    visit, PT physical therapy, 4 diagnostic imaging; 30 (health benefit plan coverage) by default."""


@dataclass(frozen=True, slots=True)
class Location:
    id: str
    name: str
    address: str
    phone: str


@dataclass(frozen=True, slots=True)
class Provider:
    id: str
    name: str
    specialty: str
    location_ids: tuple[str, ...]
    visit_type_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SchedulingCatalog:
    visit_types: tuple[VisitType, ...]
    locations: tuple[Location, ...]
    providers: tuple[Provider, ...]


@dataclass(frozen=True, slots=True)
class SlotQuery:
    visit_type_id: str
    day: date
    location_id: str | None = None
    provider_id: str | None = None


@dataclass(frozen=True, slots=True)
class Slot:
    id: str
    starts_at: datetime
    ends_at: datetime
    provider_id: str
    location_id: str
    visit_type_id: str

    def __post_init__(self) -> None:
        require_aware(self.starts_at, "Slot.starts_at")
        require_aware(self.ends_at, "Slot.ends_at")


class AppointmentStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"
    FULFILLED = "fulfilled"
    NOSHOW = "noshow"


@dataclass(frozen=True, slots=True)
class Appointment:
    id: str
    patient_id: str
    status: AppointmentStatus
    starts_at: datetime
    ends_at: datetime
    visit_type_id: str
    provider_id: str
    location_id: str
    slot_id: str | None = None
    instructions: str = ""

    def __post_init__(self) -> None:
        require_aware(self.starts_at, "Appointment.starts_at")
        require_aware(self.ends_at, "Appointment.ends_at")


# --- Payments ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentPosting:
    """A payment taken through the portal, to be posted to the patient's account in the EHR."""

    patient_id: str
    account_number: str
    amount: Money
    gateway_reference: str
    paid_at: datetime
    method: str
    """card, ach, wallet — as the gateway reported it."""
    statement_id: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.paid_at, "PaymentPosting.paid_at")


@dataclass(frozen=True, slots=True)
class PostingReceipt:
    reference: str
    posted_at: datetime


class CheckoutKind(enum.StrEnum):
    REDIRECT = "redirect"
    """Send the browser to the gateway's hosted page at ``Checkout.url``."""
    ELEMENT = "element"
    """Mount the gateway's own card element with ``Checkout.client_secret``."""


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    amount: Money
    description: str
    customer_reference: str
    """An opaque id for the payer; never a name, birth date or MRN (it reaches the gateway)."""
    return_url: str
    cancel_url: str
    save_method: bool = False
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Checkout:
    reference: str
    kind: CheckoutKind
    url: str | None = None
    client_secret: str | None = None
    publishable_key: str | None = None


CSP_DIRECTIVES = frozenset(
    {"script-src", "frame-src", "connect-src", "img-src", "style-src", "font-src", "form-action"}
)
"""The Content-Security-Policy directives a gateway may widen, on the payment page only."""


@dataclass(frozen=True, slots=True)
class GatewayPage:
    """What the portal's payment page needs to run a gateway's own element (``CheckoutKind.ELEMENT``),
    or to send a form to its hosted page on another origin. Declared once, when the adapter is
    registered: ``registry.add(name, factory, page=GatewayPage(...))``.

    .. versionadded:: 0.1
    """

    csp: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Extra sources by directive (one of :data:`CSP_DIRECTIVES`), each an ``https://`` origin; the
    portal allows them on the payment page and nowhere else."""
    scripts: tuple[str, ...] = ()
    """Scripts the element page loads, in order: an ``https://`` URL (allowed by ``script-src``), or
    a file in the plugin's static folder as ``plugins/<plugin>/<file>`` (``carefront_static_dirs``).
    The page gives them a ``<div id="gateway-element">`` with ``data-client-secret``,
    ``data-publishable-key``, ``data-reference`` and ``data-return-url``, inside the pay form; a
    ``<p id="gateway-error" role="alert">`` for the gateway's message, whose ``data-unavailable`` is
    the portal's own (translated) message for when the element cannot load; and the form's submit
    button ``hidden``, for the script to show once the element is ready (without JavaScript the page
    says what to do instead)."""

    def __post_init__(self) -> None:
        for directive, sources in self.csp.items():
            if directive not in CSP_DIRECTIVES:
                raise ValueError(f"GatewayPage.csp: {directive!r} is not one of {sorted(CSP_DIRECTIVES)}")
            for source in sources:
                rest = source.removeprefix("https://")
                if rest == source or not rest or any(char in rest for char in "*'; /"):
                    raise ValueError(f"GatewayPage.csp[{directive!r}]: {source!r} is not an https:// origin")
        for script in self.scripts:
            served = script.split("/", 2)
            in_plugin = served[0] == "plugins" and len(served) == 3 and all(served) and ".." not in script
            if not ((script.startswith("https://") and len(script) > len("https://")) or in_plugin):
                raise ValueError(f"GatewayPage.scripts: {script!r} is neither https:// nor plugins/<plugin>/<file>")


@dataclass(frozen=True, slots=True)
class SaveMethodRequest:
    customer_reference: str
    return_url: str
    cancel_url: str


class PaymentStatus(enum.StrEnum):
    PENDING = "pending"
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class Payment:
    reference: str
    status: PaymentStatus
    amount: Money
    method: str | None = None
    method_summary: str | None = None
    """What the patient recognises, e.g. "Visa ending 4242"."""
    failure_message: str | None = None
    saved_method_reference: str | None = None
    checkout_reference: str | None = None


@dataclass(frozen=True, slots=True)
class SavedMethod:
    reference: str
    customer_reference: str
    summary: str
    expires: str | None = None
    """MM/YYYY as the card shows it."""


@dataclass(frozen=True, slots=True)
class OffSessionCharge:
    method_reference: str
    customer_reference: str
    amount: Money
    description: str
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RefundRequest:
    payment_reference: str
    amount: Money
    reason: str


@dataclass(frozen=True, slots=True)
class Refund:
    reference: str
    payment_reference: str
    amount: Money
    status: PaymentStatus


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified gateway notification, reduced to what the portal acts on."""

    id: str
    kind: str
    """payment.succeeded, payment.failed, method.saved, refund.succeeded or other."""
    created_at: datetime
    payment: Payment | None = None
    saved_method: SavedMethod | None = None

    def __post_init__(self) -> None:
        require_aware(self.created_at, "WebhookEvent.created_at")


# --- Messages ------------------------------------------------------------------------------------


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


@dataclass(frozen=True, slots=True)
class Message:
    channel: Channel
    to: str
    text: str
    subject: str = ""
    html: str | None = None
    language: str = "en"


@dataclass(frozen=True, slots=True)
class Delivery:
    reference: str
    accepted_at: datetime


# --- Health and extension values -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Health:
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class NavItem:
    """A link in the portal's navigation. ``label`` is shown as given: translate it yourself."""

    label: str
    href: str
    audience: str = "patient"
    """patient or staff."""
    order: int = 100


@dataclass(frozen=True, slots=True)
class DashboardCard:
    """A card on the patient's home page: a title, a short text and an optional link."""

    title: str
    text: str
    href: str | None = None
    link_label: str | None = None
    order: int = 100


@dataclass(frozen=True, slots=True)
class DemoPersona:
    """Someone a demo visitor can sign in as; offered only by demo plugins such as the sandbox."""

    role: str
    """patient, guarantor (parent of a minor), representative or supervisor."""
    label: str
    """What makes this persona worth trying, e.g. "a patient with a balance"."""
    given_name: str
    family_name: str
    email: str
    birth_date: date | None = None
    mrn: str | None = None
    statement_code: str | None = None
    patient_id: str | None = None


# --- Events --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    payment_id: str
    patient_id: str
    amount: Money
    gateway_reference: str
    occurred_at: datetime
    plan_id: str | None = None


@dataclass(frozen=True, slots=True)
class PlanEvent:
    plan_id: str
    patient_id: str
    change: str
    """created, amount_changed, day_changed, statement_added, method_changed, extended, skipped, paused,
    resumed, cancelled, defaulted, completed."""
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class CoverageEvent:
    patient_id: str
    coverage_id: str | None
    change: str
    """added, updated, removed."""
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class AppointmentEvent:
    appointment: Appointment
    occurred_at: datetime
    previous_appointment_id: str | None = None
    """Set when the booking is a reschedule."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One row of the audit log, as a SIEM would receive it."""

    id: str
    occurred_at: datetime
    actor: str
    acting_as: str | None
    action: str
    subject: str | None
    outcome: str
    detail: Mapping[str, str] = field(default_factory=dict)
