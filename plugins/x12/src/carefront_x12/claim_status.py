"""Claim status: the 276 inquiry encoder and the 277 response decoder (005010X212).

:func:`encode_276` asks a payer about one claim; :func:`parse_277` reads every status the payer
reports, at the level of the information receiver, the provider, the claim and its service lines;
:func:`claim_statuses` turns the claim-level ones into the SDK's :class:`ClaimStatus`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from carefront_sdk.models import ClaimStatus, Money

from carefront_x12.codes import claim_status_message
from carefront_x12.core import (
    DateRange,
    Envelope,
    Segment,
    SegmentSpec,
    X12Error,
    build_interchange,
    date_range,
    parse_interchange,
)
from carefront_x12.eligibility import Person, x12_name

__all__ = [
    "IMPLEMENTATION_276_277",
    "ClaimReport",
    "ClaimStatusInquiry",
    "ClaimStatusResponse",
    "ServiceLineStatus",
    "StatusInfo",
    "claim_statuses",
    "encode_276",
    "parse_277",
]

IMPLEMENTATION_276_277 = "005010X212"


@dataclass(frozen=True, slots=True)
class ClaimStatusInquiry:
    """What a 276 asks: where does the claim ``claim_id`` for ``patient`` stand with the payer."""

    reference: str
    payer_id: str
    payer_name: str
    submitter_id: str
    """NM109 of 2100B (the information receiver, ETIN qualifier 46)."""
    submitter_name: str
    provider_npi: str
    provider_name: str
    subscriber: Person
    claim_id: str
    """The provider's claim id: TRN02 and REF*EJ (patient control number)."""
    charged_cents: int
    service_date: date
    dependent: Person | None = None
    payer_claim_number: str | None = None
    """REF*1K, when the payer has assigned one."""


def _claim_segments(inquiry: ClaimStatusInquiry) -> list[SegmentSpec]:
    segments: list[SegmentSpec] = [
        ["TRN", "1", inquiry.claim_id],
    ]
    if inquiry.payer_claim_number:
        segments.append(["REF", "1K", inquiry.payer_claim_number])
    segments.append(["REF", "EJ", inquiry.claim_id])
    segments.append(["AMT", "T3", f"{inquiry.charged_cents // 100}.{inquiry.charged_cents % 100:02d}"])
    segments.append(["DTP", "472", "D8", inquiry.service_date.strftime("%Y%m%d")])
    return segments


def _dmg(person: Person) -> list[SegmentSpec]:
    if person.birth_date is None:
        return []
    return [["DMG", "D8", person.birth_date.strftime("%Y%m%d"), person.gender or ""]]


def encode_276(inquiry: ClaimStatusInquiry, *, envelope: Envelope, control_number: int, when: datetime) -> str:
    """The 276 interchange for ``inquiry``, sent at ``when``."""
    if inquiry.charged_cents < 0:
        raise X12Error("the claim's charge cannot be negative", "AMT", None, 2)
    member_id = (inquiry.subscriber.member_id or "").strip()
    if not member_id:
        raise X12Error("the subscriber's member id is required", "NM1", None, 9)
    subscriber_nm1: SegmentSpec = [
        "NM1",
        "IL",
        "1",
        x12_name(inquiry.subscriber.family_name, 60),
        x12_name(inquiry.subscriber.given_name, 35),
        "",
        "",
        "",
        "MI",
        member_id,
    ]
    body: list[SegmentSpec] = [
        ["BHT", "0010", "13", inquiry.reference, when.strftime("%Y%m%d"), when.strftime("%H%M")],
        ["HL", "1", "", "20", "1"],
        ["NM1", "PR", "2", x12_name(inquiry.payer_name, 60), "", "", "", "", "PI", inquiry.payer_id],
        ["HL", "2", "1", "21", "1"],
        ["NM1", "41", "2", x12_name(inquiry.submitter_name, 60), "", "", "", "", "46", inquiry.submitter_id],
        ["HL", "3", "2", "19", "1"],
        ["NM1", "1P", "2", x12_name(inquiry.provider_name, 60), "", "", "", "", "XX", inquiry.provider_npi],
        ["HL", "4", "3", "22", "1" if inquiry.dependent else "0"],
    ]
    if inquiry.dependent is None:
        body += [*_dmg(inquiry.subscriber), subscriber_nm1, *_claim_segments(inquiry)]
    else:
        dependent = inquiry.dependent
        body += [subscriber_nm1, ["HL", "5", "4", "23"], *_dmg(dependent)]
        body.append(["NM1", "QC", "1", x12_name(dependent.family_name, 60), x12_name(dependent.given_name, 35)])
        body += _claim_segments(inquiry)
    return build_interchange(
        [body],
        functional_id="HR",
        version=IMPLEMENTATION_276_277,
        envelope=envelope,
        control_number=control_number,
        when=when,
    )


# --- The 277 response -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusInfo:
    """One STC segment: up to three category/status/entity triples, the date, and the amounts."""

    codes: tuple[tuple[str, str, str], ...]
    """(category, status, entity) from STC01, STC10 and STC11."""
    effective: date | None
    charged: int | None
    """STC04 in cents."""
    paid: int | None
    """STC05 in cents."""
    check_number: str = ""

    @property
    def category(self) -> str:
        return self.codes[0][0]

    @property
    def status(self) -> str:
        return self.codes[0][1]


@dataclass(frozen=True, slots=True)
class ServiceLineStatus:
    """Loop 2220D/2220E: one service line of the claim and its statuses."""

    procedure: tuple[str, ...]
    charged: int | None
    paid: int | None
    statuses: tuple[StatusInfo, ...]
    dates: tuple[DateRange, ...]


@dataclass(frozen=True, slots=True)
class ClaimReport:
    """Loop 2200D/2200E: one claim's tracking numbers and statuses."""

    tracking_number: str
    patient_control_number: str
    payer_claim_number: str
    statuses: tuple[StatusInfo, ...]
    dates: tuple[DateRange, ...]
    service_lines: tuple[ServiceLineStatus, ...]


@dataclass(frozen=True, slots=True)
class ClaimStatusResponse:
    """A decoded 277."""

    payer_name: str
    receiver_statuses: tuple[StatusInfo, ...]
    """STC of 2200B (the request as a whole, e.g. E0)."""
    provider_statuses: tuple[StatusInfo, ...]
    """STC of 2200C (the provider, e.g. not on file)."""
    claims: tuple[ClaimReport, ...]


@dataclass
class _LineBuilder:
    procedure: tuple[str, ...]
    charged: int | None
    paid: int | None
    statuses: list[StatusInfo] = field(default_factory=list)
    dates: list[DateRange] = field(default_factory=list)


@dataclass
class _ClaimBuilder:
    tracking_number: str = ""
    patient_control_number: str = ""
    payer_claim_number: str = ""
    statuses: list[StatusInfo] = field(default_factory=list)
    dates: list[DateRange] = field(default_factory=list)
    lines: list[_LineBuilder] = field(default_factory=list)

    def build(self) -> ClaimReport:
        return ClaimReport(
            self.tracking_number,
            self.patient_control_number,
            self.payer_claim_number,
            tuple(self.statuses),
            tuple(self.dates),
            tuple(
                ServiceLineStatus(line.procedure, line.charged, line.paid, tuple(line.statuses), tuple(line.dates))
                for line in self.lines
            ),
        )


def _status(segment: Segment) -> StatusInfo:
    codes: list[tuple[str, str, str]] = []
    for number in (1, 10, 11):
        if segment.element(number):
            parts = (*segment.components(number), "", "", "")
            codes.append((parts[0], parts[1], parts[2]))
    if not codes or not codes[0][0]:
        raise segment.error("STC01 (health care claim status) is missing", 1)
    effective = segment.date(2) if segment.element(2) else None
    return StatusInfo(tuple(codes), effective, segment.cents(4), segment.cents(5), segment.element(9))


def parse_277(data: str | bytes, *, check_envelopes: bool = True) -> ClaimStatusResponse:
    """Decode the one 277 of an interchange; :class:`X12Error` when it is malformed or absent."""
    interchange = parse_interchange(data, check_envelopes=check_envelopes)
    found = interchange.transactions("277")
    if len(found) != 1:
        raise X12Error(f"expected one 277 transaction set, found {len(found)}", "ST")
    payer_name = ""
    receiver: list[StatusInfo] = []
    provider: list[StatusInfo] = []
    claims: list[_ClaimBuilder] = []
    level = ""
    claim: _ClaimBuilder | None = None
    line: _LineBuilder | None = None
    for segment in found[0].segments:
        code = segment.id
        if code == "HL":
            level = segment.required(3, "HL03 (hierarchical level code)")
            if level not in {"20", "21", "19", "22", "23"}:
                raise segment.error(f"hierarchical level {level!r} is not one a 277 has", 3)
            claim = line = None
        elif code == "NM1" and level == "20":
            payer_name = segment.element(3)
        elif code == "TRN" and level in {"22", "23"}:
            claim = _ClaimBuilder(tracking_number=segment.element(2))
            claims.append(claim)
            line = None
        elif code == "SVC":
            if claim is None:
                raise segment.error("SVC before the claim's TRN")
            line = _LineBuilder(segment.components(1), segment.cents(2), segment.cents(3))
            claim.lines.append(line)
        elif code == "STC":
            status = _status(segment)
            if line is not None:
                line.statuses.append(status)
            elif claim is not None:
                claim.statuses.append(status)
            elif level == "21":
                receiver.append(status)
            elif level == "19":
                provider.append(status)
            else:
                raise segment.error("STC outside a receiver, provider or claim loop")
        elif code == "REF" and claim is not None and line is None:
            if segment.element(1) == "1K":
                claim.payer_claim_number = segment.element(2)
            elif segment.element(1) == "EJ":
                claim.patient_control_number = segment.element(2)
        elif code == "DTP" and claim is not None:
            (line.dates if line else claim.dates).append(date_range(segment))
    return ClaimStatusResponse(payer_name, tuple(receiver), tuple(provider), tuple(c.build() for c in claims))


def claim_statuses(response: ClaimStatusResponse, *, claim_id: str, as_of: datetime) -> list[ClaimStatus]:
    """The statuses of claim ``claim_id`` as the SDK models them; request-level errors stand in for it
    when the payer could not look the claim up."""

    def to_sdk(status: StatusInfo) -> ClaimStatus:
        paid = Money(status.paid) if status.paid is not None and status.category.startswith("F") else None
        return ClaimStatus(
            claim_id, status.category, status.status, claim_status_message(status.category, status.status), as_of, paid
        )

    ours = [report for report in response.claims if claim_id in {report.tracking_number, report.patient_control_number}]
    statuses = [to_sdk(status) for report in ours for status in report.statuses]
    if statuses:
        return statuses
    return [to_sdk(status) for status in (*response.receiver_statuses, *response.provider_statuses)]
