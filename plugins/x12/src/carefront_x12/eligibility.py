"""Eligibility: the 270 inquiry encoder and the 271 response decoder (005010X279A1).

:func:`encode_270` builds an inquiry for one patient (the subscriber, or a dependent of the
subscriber) and :func:`parse_271` reads a response into frozen dataclasses that keep the X12
codes. :func:`eligibility_result` then says what the response means for the portal: active or not,
the plan, the copay, deductible, out-of-pocket and coinsurance figures, or the AAA rejection.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from carefront_sdk.models import EligibilityBenefit, EligibilityRejection, EligibilityResult, Money

from carefront_x12.codes import (
    ACTIVE_COVERAGE_CODES,
    TIME_PERIODS,
    rejection_message,
)
from carefront_x12.core import (
    DateRange,
    Envelope,
    Repeated,
    Segment,
    SegmentSpec,
    X12Error,
    build_interchange,
    date_range,
    parse_interchange,
)

__all__ = [
    "IMPLEMENTATION_270_271",
    "Benefit",
    "EligibilityInquiry",
    "EligibilityResponse",
    "Member",
    "Person",
    "Rejection",
    "Trace",
    "eligibility_result",
    "encode_270",
    "parse_271",
    "x12_name",
]

IMPLEMENTATION_270_271 = "005010X279A1"
_KINDS = {"B": "copay", "A": "coinsurance", "C": "deductible", "G": "out_of_pocket"}
_REMAINING = "29"
_YEAR_TO_DATE = "24"
# Coverage levels that describe the patient alone rank before family-wide figures.
_INDIVIDUAL_LEVELS = {"", "IND", "EMP"}


def x12_name(text: str, limit: int) -> str:
    """A name as X12's basic character set carries it: ASCII capitals, no delimiters, trimmed."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    kept = "".join(ch if ch.isalnum() or ch in " -.'&," else " " for ch in ascii_text.upper())
    return " ".join(kept.split())[:limit]


# --- The 270 inquiry ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Person:
    """A subscriber or dependent as the 270 names them."""

    given_name: str
    family_name: str
    birth_date: date | None = None
    gender: str | None = None
    """DMG03: M, F or U; None when not known."""
    member_id: str | None = None


@dataclass(frozen=True, slots=True)
class EligibilityInquiry:
    """What a 270 asks: is ``subscriber`` (or their ``dependent``) covered by the payer, for what."""

    reference: str
    """BHT03, echoed in the 271's BHT03."""
    payer_id: str
    payer_name: str
    provider_npi: str
    provider_name: str
    subscriber: Person
    trace_number: str
    """TRN02 of 2000C/2000D; the 271 echoes it as TRN*2."""
    trace_company_id: str
    """TRN03: "1" and an EIN, or "9" and an identifier the provider assigns."""
    dependent: Person | None = None
    relationship: str | None = None
    """INS02 when ``dependent`` is set: 01 spouse, 19 child, 34 other adult."""
    group_number: str | None = None
    service_types: tuple[str, ...] = ("30",)
    service_date: date | None = None


def _person_segments(
    person: Person, entity: str, inquiry: EligibilityInquiry, *, with_id: bool, names: bool
) -> list[SegmentSpec]:
    nm1: list[str] = ["NM1", entity, "1"]
    if names:
        nm1 += [x12_name(person.family_name, 60), x12_name(person.given_name, 35)]
    else:
        nm1 += ["", ""]
    if with_id:
        member_id = (person.member_id or "").strip()
        if not member_id:
            raise X12Error("the subscriber's member id is required", "NM1", None, 9)
        nm1 += ["", "", "", "MI", member_id]
    segments: list[SegmentSpec] = [nm1]
    if with_id and inquiry.group_number:
        segments.append(["REF", "6P", inquiry.group_number.strip()])
    # Only the patient's own birth date is sent: a subscriber named by id alone needs none (X279 example 2).
    if names and person.birth_date is not None:
        segments.append(["DMG", "D8", person.birth_date.strftime("%Y%m%d"), person.gender or ""])
    return segments


def _inquiry_segments(inquiry: EligibilityInquiry, when: datetime) -> list[SegmentSpec]:
    if not inquiry.service_types:
        raise X12Error("a 270 asks about at least one service type", "EQ", None, 1)
    trace: SegmentSpec = ["TRN", "1", inquiry.trace_number, inquiry.trace_company_id]
    asks: list[SegmentSpec] = []
    if inquiry.service_date is not None:
        asks.append(["DTP", "291", "D8", inquiry.service_date.strftime("%Y%m%d")])
    asks.append(["EQ", Repeated(*inquiry.service_types)])
    segments: list[SegmentSpec] = [
        ["BHT", "0022", "13", inquiry.reference, when.strftime("%Y%m%d"), when.strftime("%H%M%S")],
        ["HL", "1", "", "20", "1"],
        ["NM1", "PR", "2", x12_name(inquiry.payer_name, 60), "", "", "", "", "PI", inquiry.payer_id],
        ["HL", "2", "1", "21", "1"],
        ["NM1", "1P", "2", x12_name(inquiry.provider_name, 60), "", "", "", "", "XX", inquiry.provider_npi],
        ["HL", "3", "2", "22", "1" if inquiry.dependent else "0"],
    ]
    if inquiry.dependent is None:
        segments.append(trace)
        segments += _person_segments(inquiry.subscriber, "IL", inquiry, with_id=True, names=True)
        return segments + asks
    # A dependent without an id of their own: the subscriber is named by member id (X279 1.4.7.1).
    segments += _person_segments(inquiry.subscriber, "IL", inquiry, with_id=True, names=False)
    segments += [["HL", "4", "3", "23", "0"], trace]
    segments += _person_segments(inquiry.dependent, "03", inquiry, with_id=False, names=True)
    if inquiry.relationship:
        segments.append(["INS", "N", inquiry.relationship])
    return segments + asks


def encode_270(inquiry: EligibilityInquiry, *, envelope: Envelope, control_number: int, when: datetime) -> str:
    """The 270 interchange for ``inquiry``, sent at ``when``."""
    return build_interchange(
        [_inquiry_segments(inquiry, when)],
        functional_id="HS",
        version=IMPLEMENTATION_270_271,
        envelope=envelope,
        control_number=control_number,
        when=when,
    )


# --- The 271 response -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Trace:
    """A TRN segment: type 1 is the payer's own trace, 2 echoes the inquiry's."""

    type: str
    number: str
    company: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    """An AAA segment: the request could not be answered, and why."""

    loop: str
    """Where it was: 2100A (payer), 2100B (provider), 2100C/2100D (patient), 2110C/2110D (one benefit)."""
    valid_request: bool
    reason: str
    follow_up: str

    @property
    def message(self) -> str:
        return rejection_message(self.reason, self.follow_up)


@dataclass(frozen=True, slots=True)
class Benefit:
    """One EB segment with the MSG and DTP segments that follow it."""

    code: str
    coverage_level: str = ""
    service_types: tuple[str, ...] = ()
    insurance_type: str = ""
    plan_description: str = ""
    time_period: str = ""
    amount: int | None = None
    """EB07 in cents."""
    percent: Decimal | None = None
    """EB08 as sent: a fraction (.2 is 20 %)."""
    in_network: str = ""
    """EB12: Y in network, N out of network, W either, U unknown."""
    messages: tuple[str, ...] = ()
    dates: tuple[DateRange, ...] = ()


@dataclass(frozen=True, slots=True)
class Member:
    """Loop 2000C (subscriber) or 2000D (dependent) of a 271."""

    level: str
    """subscriber or dependent."""
    member_id: str = ""
    relationship: str = ""
    traces: tuple[Trace, ...] = ()
    dates: tuple[DateRange, ...] = ()
    benefits: tuple[Benefit, ...] = ()
    rejections: tuple[Rejection, ...] = ()


@dataclass(frozen=True, slots=True)
class EligibilityResponse:
    """A decoded 271."""

    reference: str
    payer_name: str
    payer_id: str
    provider_id: str
    rejections: tuple[Rejection, ...]
    """AAA segments of the payer (2100A) and provider (2100B) loops."""
    members: tuple[Member, ...]

    @property
    def patient(self) -> Member | None:
        """The person the inquiry was about: the dependent when there is one, else the subscriber."""
        dependents = [member for member in self.members if member.level == "dependent"]
        if dependents:
            return dependents[-1]
        return self.members[-1] if self.members else None


@dataclass
class _MemberBuilder:
    level: str
    member_id: str = ""
    relationship: str = ""
    traces: list[Trace] = field(default_factory=list)
    dates: list[DateRange] = field(default_factory=list)
    benefits: list[_BenefitBuilder] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def build(self) -> Member:
        return Member(
            self.level,
            self.member_id,
            self.relationship,
            tuple(self.traces),
            tuple(self.dates),
            tuple(benefit.build() for benefit in self.benefits),
            tuple(self.rejections),
        )


@dataclass
class _BenefitBuilder:
    benefit: Benefit
    messages: list[str] = field(default_factory=list)
    dates: list[DateRange] = field(default_factory=list)

    def build(self) -> Benefit:
        return Benefit(
            **{
                **{name: getattr(self.benefit, name) for name in Benefit.__dataclass_fields__},
                "messages": tuple(self.messages),
                "dates": tuple(self.dates),
            }
        )


def _benefit(segment: Segment) -> Benefit:
    percent = segment.amount(8)
    return Benefit(
        code=segment.required(1, "EB01 (eligibility or benefit code)"),
        coverage_level=segment.element(2),
        service_types=segment.repeats(3),
        insurance_type=segment.element(4),
        plan_description=segment.element(5),
        time_period=segment.element(6),
        amount=segment.cents(7),
        percent=percent,
        in_network=segment.element(12),
    )


def _rejection(segment: Segment, loop: str) -> Rejection:
    return Rejection(loop, segment.element(1) == "Y", segment.element(3), segment.element(4))


def parse_271(data: str | bytes, *, check_envelopes: bool = True) -> EligibilityResponse:
    """Decode the one 271 of an interchange; :class:`X12Error` when it is malformed or absent."""
    interchange = parse_interchange(data, check_envelopes=check_envelopes)
    found = interchange.transactions("271")
    if len(found) != 1:
        other = ", ".join(sorted({tx.code for group in interchange.groups for tx in group.transactions}))
        raise X12Error(f"expected one 271 transaction set, found {len(found)} (sets: {other or 'none'})", "ST")
    transaction = found[0]
    reference = payer_name = payer_id = provider_id = ""
    top_rejections: list[Rejection] = []
    members: list[_MemberBuilder] = []
    level = ""
    member: _MemberBuilder | None = None
    benefit: _BenefitBuilder | None = None
    in_related_entity = False
    for segment in transaction.segments:
        code = segment.id
        if in_related_entity:
            # Loop 2120 names an entity tied to the benefit; its NM1 is not the patient's.
            in_related_entity = code != "LE"
            continue
        if code == "BHT":
            reference = segment.element(3)
        elif code == "HL":
            level = segment.required(3, "HL03 (hierarchical level code)")
            benefit = None
            member = None
            if level in {"22", "23"}:
                member = _MemberBuilder("subscriber" if level == "22" else "dependent")
                members.append(member)
            elif level not in {"20", "21"}:
                raise segment.error(f"hierarchical level {level!r} is not one a 271 has", 3)
        elif code == "LS":
            in_related_entity = True
        elif code == "NM1":
            if level == "20":
                payer_name, payer_id = segment.element(3), segment.element(9)
            elif level == "21":
                provider_id = segment.element(9)
            elif member is not None and benefit is None:
                member.member_id = segment.element(9) or member.member_id
        elif code == "AAA":
            if member is None:
                top_rejections.append(_rejection(segment, "2100A" if level == "20" else "2100B"))
            else:
                suffix = "C" if member.level == "subscriber" else "D"
                member.rejections.append(_rejection(segment, ("2110" if benefit else "2100") + suffix))
        elif code == "TRN" and member is not None:
            member.traces.append(Trace(segment.element(1), segment.element(2), segment.element(3)))
        elif code == "INS" and member is not None:
            member.relationship = segment.element(2)
        elif code == "DTP" and member is not None:
            (benefit.dates if benefit else member.dates).append(date_range(segment))
        elif code == "EB":
            if member is None:
                raise segment.error("EB outside a subscriber or dependent loop")
            benefit = _BenefitBuilder(_benefit(segment))
            member.benefits.append(benefit)
        elif code == "MSG" and benefit is not None:
            benefit.messages.append(segment.element(1))
    if in_related_entity:
        raise X12Error("loop 2120 (LS) is not closed by LE", "LS")
    return EligibilityResponse(
        reference,
        payer_name,
        payer_id,
        provider_id,
        tuple(top_rejections),
        tuple(builder.build() for builder in members),
    )


# --- What the response means for the portal -------------------------------------------------------


def _percent(value: Decimal) -> int:
    # X279 sends EB08 as a fraction (.2); some payers send 20 for 20 %.
    scaled = value * 100 if value <= 1 else value
    return int(scaled.to_integral_value())


def _money(cents: int | None) -> Money | None:
    return Money(cents) if cents is not None else None


@dataclass
class _Figure:
    kind: str
    service_type: str
    in_network: bool
    level: str
    amount: int | None = None
    period: str | None = None
    remaining: int | None = None
    to_date: int | None = None
    percent: int | None = None


def _figures(benefits: Iterable[Benefit]) -> list[_Figure]:
    figures: dict[tuple[str, str, bool, str], _Figure] = {}
    for benefit in benefits:
        kind = _KINDS.get(benefit.code)
        if kind is None:
            continue
        in_network = benefit.in_network != "N"
        for service_type in benefit.service_types or ("30",):
            key = (kind, service_type, in_network, benefit.coverage_level)
            figure = figures.setdefault(key, _Figure(kind, service_type, in_network, benefit.coverage_level))
            if kind == "coinsurance":
                if figure.percent is None and benefit.percent is not None:
                    figure.percent = _percent(benefit.percent)
            elif benefit.time_period == _REMAINING:
                figure.remaining = benefit.amount if figure.remaining is None else figure.remaining
            elif benefit.time_period == _YEAR_TO_DATE:
                figure.to_date = benefit.amount if figure.to_date is None else figure.to_date
            elif figure.amount is None and benefit.amount is not None:
                figure.amount = benefit.amount
                figure.period = TIME_PERIODS.get(benefit.time_period)
    return list(figures.values())


def _portal_benefits(benefits: Sequence[Benefit]) -> tuple[EligibilityBenefit, ...]:
    best: dict[tuple[str, str, bool], _Figure] = {}
    for figure in _figures(benefits):
        key = (figure.kind, figure.service_type, figure.in_network)
        rank = 0 if figure.level in _INDIVIDUAL_LEVELS else 1
        held = best.get(key)
        if held is None or rank < (0 if held.level in _INDIVIDUAL_LEVELS else 1):
            best[key] = figure
    out: list[EligibilityBenefit] = []
    for figure in best.values():
        remaining = figure.remaining
        if remaining is None and figure.amount is not None and figure.to_date is not None:
            remaining = max(figure.amount - figure.to_date, 0)
        if figure.amount is None and remaining is None and figure.percent is None:
            continue
        out.append(
            EligibilityBenefit(
                kind=figure.kind,
                service_type=figure.service_type,
                in_network=figure.in_network,
                amount=_money(figure.amount),
                remaining=_money(remaining),
                percent=figure.percent,
                period=figure.period,
            )
        )
    return tuple(out)


def _first_rejection(response: EligibilityResponse, patient: Member | None) -> Rejection | None:
    member_rejections = list(patient.rejections) if patient else []
    inquiry_level = [r for r in member_rejections if r.loop.startswith("2100")]
    candidates = inquiry_level + list(response.rejections)
    if candidates:
        return candidates[0]
    # A benefit-level AAA rejects the whole inquiry only when the payer sent no benefit at all.
    if member_rejections and not (patient and patient.benefits):
        return member_rejections[0]
    return None


def eligibility_result(
    response: EligibilityResponse, *, checked_at: datetime, payer_name: str, trace_number: str | None
) -> EligibilityResult:
    """The portal's reading of a 271: ``payer_name`` is used when the 271 does not name the payer."""
    patient = response.patient
    name = response.payer_name or payer_name
    rejection = _first_rejection(response, patient)
    echoed = next((t.number for t in (patient.traces if patient else ()) if t.type == "2"), None)
    trace = echoed or trace_number
    if rejection is not None or patient is None:
        sdk_rejection = (
            EligibilityRejection(rejection.reason, rejection.message, rejection.follow_up)
            if rejection is not None
            else EligibilityRejection("", "The insurer's answer named no patient.", "")
        )
        return EligibilityResult(False, checked_at, name, None, (), sdk_rejection, trace)
    coverage = [benefit for benefit in patient.benefits if benefit.code in ACTIVE_COVERAGE_CODES]
    plan_name = next((benefit.plan_description for benefit in coverage if benefit.plan_description), None)
    return EligibilityResult(
        active=bool(coverage),
        checked_at=checked_at,
        payer_name=name,
        plan_name=plan_name,
        benefits=_portal_benefits(patient.benefits),
        rejection=None,
        trace_number=trace,
    )
