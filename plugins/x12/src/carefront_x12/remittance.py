"""The 835 remittance advice decoder (005010X221A1): payments, claims, service lines and adjustments.

``parse_835(text)`` gives a :class:`Remittance` of frozen dataclasses: the payment (BPR) and its
trace (TRN), each claim (CLP) with what was charged and paid, its adjustments (CAS: group code,
CARC and amount, up to six per segment) and remark codes (MOA/MIA), and each service line (SVC)
with its own adjustments and RARC remarks (LQ). Adjustments are the SDK's
:class:`~carefront_sdk.models.Adjustment`, so the billing pages read them as they read statements;
:mod:`carefront_x12.adjustment_codes` explains the codes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from carefront_sdk.models import Adjustment, Money

from carefront_x12.core import Segment, TransactionSet, X12Error, parse_interchange

__all__ = [
    "CLAIM_STATUSES",
    "ClaimPayment",
    "ProviderAdjustment",
    "Remittance",
    "ServicePayment",
    "parse_835",
    "parse_remittances",
]

# CLP02 claim status codes.
CLAIM_STATUSES: dict[str, str] = {
    "1": "Processed as Primary",
    "2": "Processed as Secondary",
    "3": "Processed as Tertiary",
    "4": "Denied",
    "19": "Processed as Primary, Forwarded to Additional Payer(s)",
    "20": "Processed as Secondary, Forwarded to Additional Payer(s)",
    "21": "Processed as Tertiary, Forwarded to Additional Payer(s)",
    "22": "Reversal of Previous Payment",
    "23": "Not Our Claim, Forwarded to Additional Payer(s)",
    "25": "Predetermination Pricing Only - No Payment",
}
_CAS_TRIPLES = 6


@dataclass(frozen=True, slots=True)
class ServicePayment:
    """Loop 2110: one service line (SVC) as the payer adjudicated it."""

    procedure: tuple[str, ...]
    """SVC01 components: qualifier (HC, NU, …), code, then modifiers."""
    charged: Money
    paid: Money
    units: str
    service_dates: tuple[date, ...]
    adjustments: tuple[Adjustment, ...]
    remark_codes: tuple[str, ...]
    """LQ*HE remittance advice remark codes (RARC)."""
    control_number: str = ""
    """REF*6R, the provider's line item control number."""


@dataclass(frozen=True, slots=True)
class ClaimPayment:
    """Loop 2100: one claim (CLP) with its adjustments and service lines."""

    patient_control_number: str
    """CLP01: the provider's own claim id, as sent in the 837."""
    status_code: str
    charged: Money
    paid: Money
    patient_responsibility: Money | None
    filing_indicator: str
    payer_claim_number: str
    adjustments: tuple[Adjustment, ...]
    remark_codes: tuple[str, ...]
    """MOA/MIA remark codes that apply to the whole claim."""
    services: tuple[ServicePayment, ...]
    statement_dates: tuple[date, ...] = ()

    @property
    def status(self) -> str:
        return CLAIM_STATUSES.get(self.status_code, f"Status {self.status_code}")


@dataclass(frozen=True, slots=True)
class ProviderAdjustment:
    """A PLB adjustment: money moved at the provider level, not tied to one claim."""

    reason: str
    reference: str
    amount: Money


@dataclass(frozen=True, slots=True)
class Remittance:
    """One 835 transaction set: one payment (or notice of no payment) and the claims it covers."""

    payer_name: str
    payer_id: str
    payee_name: str
    payee_id: str
    total_paid: Money
    """BPR02."""
    credit_debit: str
    """BPR03: C credit, D debit."""
    payment_method: str
    """BPR04: ACH, CHK, FWT, BOP or NON (no payment)."""
    payment_date: date | None
    trace_number: str
    """TRN02: the check or EFT trace number that ties the 835 to the money."""
    payer_trace_id: str
    claims: tuple[ClaimPayment, ...]
    provider_adjustments: tuple[ProviderAdjustment, ...] = ()


def _money(segment: Segment, number: int, what: str) -> Money:
    cents = segment.cents(number)
    if cents is None:
        raise segment.error(f"{what} is missing", number)
    return Money(cents)


def _adjustments(segment: Segment, remark_codes: tuple[str, ...]) -> list[Adjustment]:
    group = segment.required(1, "CAS01 (claim adjustment group code)")
    found: list[Adjustment] = []
    for triple in range(_CAS_TRIPLES):
        reason_at = 2 + triple * 3
        reason = segment.element(reason_at)
        if not reason:
            if segment.element(reason_at + 1):
                raise segment.error("an adjustment amount without its reason code", reason_at)
            continue
        amount = segment.cents(reason_at + 1)
        if amount is None:
            raise segment.error(f"adjustment reason {reason} has no amount", reason_at + 1)
        found.append(Adjustment(Money(amount), group, reason, remark_codes))
    if not found:
        raise segment.error("CAS names no adjustment reason", 2)
    return found


@dataclass
class _Service:
    segment: Segment
    dates: list[date] = field(default_factory=list)
    cas: list[Segment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    control_number: str = ""

    def build(self) -> ServicePayment:
        remarks = tuple(self.remarks)
        adjustments = tuple(adj for cas in self.cas for adj in _adjustments(cas, remarks))
        svc = self.segment
        return ServicePayment(
            procedure=svc.components(1),
            charged=_money(svc, 2, "SVC02 (line charge)"),
            paid=_money(svc, 3, "SVC03 (line payment)"),
            units=svc.element(5) or "1",
            service_dates=tuple(self.dates),
            adjustments=adjustments,
            remark_codes=remarks,
            control_number=self.control_number,
        )


@dataclass
class _Claim:
    segment: Segment
    cas: list[Segment] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    services: list[_Service] = field(default_factory=list)
    dates: list[date] = field(default_factory=list)

    def build(self) -> ClaimPayment:
        clp = self.segment
        remarks = tuple(self.remarks)
        return ClaimPayment(
            patient_control_number=clp.required(1, "CLP01 (patient control number)"),
            status_code=clp.required(2, "CLP02 (claim status code)"),
            charged=_money(clp, 3, "CLP03 (total claim charge)"),
            paid=_money(clp, 4, "CLP04 (claim payment amount)"),
            patient_responsibility=Money(cents) if (cents := clp.cents(5)) is not None else None,
            filing_indicator=clp.element(6),
            payer_claim_number=clp.element(7),
            adjustments=tuple(adj for cas in self.cas for adj in _adjustments(cas, remarks)),
            remark_codes=remarks,
            services=tuple(service.build() for service in self.services),
            statement_dates=tuple(self.dates),
        )


def _remark_codes(segment: Segment) -> list[str]:
    # MIA05/MIA20-24 and MOA03-07 hold claim-level remark codes.
    positions = (5, 20, 21, 22, 23, 24) if segment.id == "MIA" else (3, 4, 5, 6, 7)
    return [segment.element(number) for number in positions if segment.element(number)]


def _provider_adjustments(segment: Segment) -> list[ProviderAdjustment]:
    found: list[ProviderAdjustment] = []
    for pair in range(6):
        at = 3 + pair * 2
        if not segment.element(at):
            continue
        reason, *reference = segment.components(at)
        found.append(ProviderAdjustment(reason, ":".join(reference), _money(segment, at + 1, "PLB amount")))
    return found


def _remittance(transaction: TransactionSet) -> Remittance:
    bpr: Segment | None = None
    trace = payer_trace = payer_name = payer_id = payee_name = payee_id = ""
    entity = ""
    claims: list[_Claim] = []
    claim: _Claim | None = None
    service: _Service | None = None
    plb: list[ProviderAdjustment] = []
    for segment in transaction.segments:
        code = segment.id
        if code == "BPR":
            bpr = segment
        elif code == "TRN" and not claims:
            trace, payer_trace = segment.element(2), segment.element(3)
        elif code == "N1":
            entity = segment.element(1)
            if entity == "PR":
                payer_name, payer_id = segment.element(2), segment.element(4)
            elif entity == "PE":
                payee_name, payee_id = segment.element(2), segment.element(4)
        elif code == "REF" and entity == "PR" and not claims and segment.element(1) == "2U":
            payer_id = payer_id or segment.element(2)
        elif code == "CLP":
            claim, service = _Claim(segment), None
            claims.append(claim)
        elif code == "SVC":
            if claim is None:
                raise segment.error("SVC before any CLP")
            service = _Service(segment)
            claim.services.append(service)
        elif code == "CAS":
            if claim is None:
                raise segment.error("CAS before any CLP")
            (service.cas if service else claim.cas).append(segment)
        elif code in {"MOA", "MIA"} and claim is not None and service is None:
            claim.remarks += _remark_codes(segment)
        elif code == "LQ" and service is not None and segment.element(1) == "HE":
            service.remarks.append(segment.required(2, "LQ02 (remark code)"))
        elif code == "DTM" and claim is not None:
            qualifier = segment.element(1)
            if service is not None and qualifier in {"150", "151", "472"}:
                service.dates.append(segment.date(2))
            elif service is None and qualifier in {"232", "233"}:
                claim.dates.append(segment.date(2))
        elif code == "REF" and service is not None and segment.element(1) == "6R":
            service.control_number = segment.element(2)
        elif code == "PLB":
            plb += _provider_adjustments(segment)
    if bpr is None:
        raise X12Error("the 835 has no BPR (financial information) segment", "BPR")
    payment_date = bpr.date(16) if bpr.element(16) else None
    return Remittance(
        payer_name=payer_name,
        payer_id=payer_id,
        payee_name=payee_name,
        payee_id=payee_id,
        total_paid=_money(bpr, 2, "BPR02 (total actual provider payment amount)"),
        credit_debit=bpr.element(3),
        payment_method=bpr.element(4),
        payment_date=payment_date,
        trace_number=trace,
        payer_trace_id=payer_trace,
        claims=tuple(c.build() for c in claims),
        provider_adjustments=tuple(plb),
    )


def parse_remittances(data: str | bytes, *, check_envelopes: bool = True) -> tuple[Remittance, ...]:
    """Every 835 of an interchange, in order (a payer may batch several payments in one file)."""
    interchange = parse_interchange(data, check_envelopes=check_envelopes)
    found = interchange.transactions("835")
    if not found:
        raise X12Error("the interchange holds no 835 transaction set", "ST")
    return tuple(_remittance(transaction) for transaction in found)


def parse_835(data: str | bytes, *, check_envelopes: bool = True) -> Remittance:
    """The one 835 of an interchange; :class:`X12Error` when it is malformed or holds several."""
    remittances = parse_remittances(data, check_envelopes=check_envelopes)
    if len(remittances) != 1:
        raise X12Error(f"expected one 835 transaction set, found {len(remittances)}", "ST")
    return remittances[0]
