"""FHIR R4 resources to Carefront's models and back: pure functions, no I/O.

The README's "Mapping" section is the prose of this module; keep the two in step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Concatenate, ParamSpec, TypeVar

from carefront_sdk.errors import Unavailable
from carefront_sdk.models import (
    Adjustment,
    Appointment,
    AppointmentStatus,
    ChargeLine,
    CoverageChange,
    CoverageRank,
    Location,
    Money,
    Patient,
    ProxyAccess,
    RelatedPerson,
    Slot,
    VisitType,
)

from carefront_fhir.client import Resource

__all__ = [
    "CARC_SYSTEM",
    "CARE_FRONT",
    "DUE_DATE_EXTENSION",
    "GATEWAY_REFERENCE_SYSTEM",
    "VISIT_DURATION_EXTENSION",
    "Adjudicated",
    "Unusable",
]

CARE_FRONT = "https://carefront.dev/fhir"
DUE_DATE_EXTENSION = f"{CARE_FRONT}/StructureDefinition/statement-due-date"
"""Extension on Invoice: ``valueDate``, the day the statement is due."""
VISIT_DURATION_EXTENSION = f"{CARE_FRONT}/StructureDefinition/visit-duration"
"""Extension on HealthcareService: ``valueDuration`` in minutes (UCUM ``min``)."""
TYPICAL_CHARGE_EXTENSION = f"{CARE_FRONT}/StructureDefinition/typical-charge"
"""Extension on HealthcareService: ``valueMoney``, the hospital's usual charge for the visit."""
SERVICE_TYPE_SYSTEM = "https://x12.org/codes/service-type-codes"
"""A ``HealthcareService.type`` coding in this system is the X12 service type asked of the payer."""
GATEWAY_REFERENCE_SYSTEM = f"{CARE_FRONT}/gateway-reference"
"""Identifier.system of the payment gateway's reference on PaymentReconciliation.paymentIdentifier."""

CARC_SYSTEM = "https://x12.org/codes/claim-adjustment-reason-codes"
RARC_SYSTEM = "https://x12.org/codes/remittance-advice-remark-codes"
GROUP_SYSTEM_SUFFIX = "claim-adjustment-group-codes"
"""A coding of ``adjudication.reason`` whose system ends so carries the CAS group code (CO, PR, OA, PI)."""

CODE_SYSTEMS = {
    "http://www.ama-assn.org/go/cpt": "CPT",
    "urn:oid:2.16.840.1.113883.6.12": "CPT",
    "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets": "HCPCS",
    "urn:oid:2.16.840.1.113883.6.285": "HCPCS",
    "https://www.nubc.org/CodeSystem/RevenueCodes": "REV",
}
"""ChargeItem.code systems the statement names, in the order they are preferred."""

PAID_CATEGORIES = ("benefit", "paidtoprovider")
"""Adjudication categories that are what insurance paid: the first present on an item counts."""
PATIENT_SHARE = {"deductible": "1", "coinsurance": "2", "copay": "3"}
"""Adjudication categories that are the patient's share (group PR), with the CARC each implies."""
CONTRACTUAL = {"discount": "45"}
"""Adjudication categories that are a contractual reduction (group CO), with the CARC each implies."""

SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
MEMBER_ID_TYPE = ("http://terminology.hl7.org/CodeSystem/v2-0203", "MB")

_APPOINTMENT_STATUS = {
    "booked": AppointmentStatus.BOOKED,
    "arrived": AppointmentStatus.BOOKED,
    "checked-in": AppointmentStatus.BOOKED,
    "pending": AppointmentStatus.BOOKED,
    "proposed": AppointmentStatus.BOOKED,
    "waitlist": AppointmentStatus.BOOKED,
    "fulfilled": AppointmentStatus.FULFILLED,
    "cancelled": AppointmentStatus.CANCELLED,
    "entered-in-error": AppointmentStatus.CANCELLED,
    "noshow": AppointmentStatus.NOSHOW,
}


class Unusable(Unavailable):
    """A resource lacks something the portal cannot do without; the detail names the element, never its value."""

    def __init__(self, resource: Resource, element: str) -> None:
        super().__init__(f"fhir: {_kind(resource)} lacks a usable {element}")


def _kind(resource: object) -> str:
    """The resource's type for a log line, whatever the server put there."""
    kind = resource.get("resourceType") if isinstance(resource, dict) else None
    return kind if isinstance(kind, str) and kind.isalpha() else "resource"


class Malformed(Unavailable):
    """A resource with an element of the wrong JSON type or shape; the detail names the resource type only."""

    def __init__(self, resource: object) -> None:
        super().__init__(f"fhir: {_kind(resource)} is malformed: an element has the wrong type or shape")


_Arguments = ParamSpec("_Arguments")
_Model = TypeVar("_Model")
# What reading a JSON value of the wrong type raises: a list where a dict was, a number where a string was.
_SHAPE_ERRORS = (AttributeError, TypeError, KeyError, IndexError, ValueError, ArithmeticError)


def _reads_resource(
    read: Callable[Concatenate[Resource, _Arguments], _Model],
) -> Callable[Concatenate[Resource, _Arguments], _Model]:
    """A server's resource of the wrong shape becomes the SDK's Unavailable tier, never a stray exception."""

    @functools.wraps(read)
    def guarded(resource: Resource, /, *args: _Arguments.args, **kwargs: _Arguments.kwargs) -> _Model:
        try:
            return read(resource, *args, **kwargs)
        except _SHAPE_ERRORS:
            raise Malformed(resource) from None

    return guarded


# --- Elements ------------------------------------------------------------------------------------


def reference_id(reference: object, resource_type: str) -> str | None:
    """The id in a ``{"reference": "Type/id"}`` of the given type (absolute URLs too), else None."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str):
        return None
    parts = text.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == resource_type:
        return parts[-1]
    return None


def identifier(resource: Resource, system: str) -> str | None:
    """The value of the resource's first identifier in ``system``."""
    for item in resource.get("identifier", []):
        if item.get("system") == system and item.get("value"):
            return str(item["value"])
    return None


def parse_date(value: object, zone: tzinfo) -> date:
    """A FHIR date, or the day a dateTime/instant falls on in the hospital's zone; ValueError if partial."""
    if not isinstance(value, str):
        raise ValueError("not a date")
    if "T" not in value:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value)
    return moment.astimezone(zone).date() if moment.tzinfo else moment.date()


def parse_instant(value: object) -> datetime:
    """A FHIR instant or a dateTime with a time and a zone; ValueError otherwise."""
    if not isinstance(value, str):
        raise ValueError("not an instant")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def money(value: object, currency: str, resource: Resource, element: str) -> Money:
    """A FHIR Money as integer minor units; a fraction of a cent is refused, never rounded."""
    if not isinstance(value, dict) or not isinstance(value.get("value"), Decimal | int):
        raise Unusable(resource, element)
    cents = Decimal(value["value"]) * 100
    if cents != cents.to_integral_value():
        raise Unusable(resource, element)
    return Money(int(cents), str(value.get("currency") or currency))


def fhir_money(amount: Money) -> dict[str, Any]:
    return {"value": Decimal(amount.amount) / 100, "currency": amount.currency}


def person_name(resource: Resource) -> tuple[str, str]:
    """(given, family) from the official name, else the first."""
    names = resource.get("name", [])
    if isinstance(names, dict):  # Organization, Location and HealthcareService have a plain string
        names = [names]
    chosen = next((name for name in names if name.get("use") == "official"), names[0] if names else {})
    given = " ".join(chosen.get("given", [])[:1])
    family = chosen.get("family", "")
    if not (given or family) and chosen.get("text"):
        given, _, family = str(chosen["text"]).rpartition(" ")
    return given, family


def full_name(resource: Resource) -> str:
    """A person's name as shown ("Jordan Lee"), or an organisation's or place's ``name``."""
    if isinstance(resource.get("name"), str):
        return str(resource["name"])
    given, family = person_name(resource)
    prefix = next((name.get("prefix", [""])[0] for name in resource.get("name", []) if name.get("prefix")), "")
    return " ".join(part for part in (prefix, given, family) if part)


def telecom(resource: Resource, system: str) -> str | None:
    """The first contact point of ``system`` (email, phone), a mobile phone first."""
    points = [point for point in resource.get("telecom", []) if point.get("system") == system and point.get("value")]
    points.sort(key=lambda point: point.get("use") != "mobile")
    return str(points[0]["value"]) if points else None


def address_text(resource: Resource) -> str | None:
    """The home (or first) address as one line."""
    addresses = resource.get("address", [])
    if isinstance(addresses, dict):  # Location has one address, not a list
        addresses = [addresses]
    if not addresses:
        return None
    chosen = next((item for item in addresses if item.get("use") == "home"), addresses[0])
    if chosen.get("text"):
        return str(chosen["text"])
    region = " ".join(part for part in (chosen.get("state", ""), chosen.get("postalCode", "")) if part)
    parts = [*chosen.get("line", []), chosen.get("city", ""), region]
    return ", ".join(part for part in parts if part) or None


def concept_text(concept: object) -> str:
    """A CodeableConcept as a person reads it: its text, else its first coding's display, else code."""
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", []):
        if coding.get("display"):
            return str(coding["display"])
    return next((str(coding["code"]) for coding in concept.get("coding", []) if coding.get("code")), "")


def codes(concept: object) -> list[tuple[str, str]]:
    """Every (system, code) of a CodeableConcept."""
    if not isinstance(concept, dict):
        return []
    return [
        (str(coding.get("system", "")), str(coding["code"]))
        for coding in concept.get("coding", [])
        if coding.get("code")
    ]


# --- Patients and proxies ------------------------------------------------------------------------


@_reads_resource
def patient(resource: Resource, *, mrn_system: str, account_number: str) -> Patient:
    given, family = person_name(resource)
    try:
        born = date.fromisoformat(resource.get("birthDate", ""))
    except ValueError:
        raise Unusable(resource, "birthDate") from None
    spoken = [item for item in resource.get("communication", []) if codes(item.get("language"))]
    spoken.sort(key=lambda item: not item.get("preferred"))
    language = codes(spoken[0]["language"])[0][1].split("-")[0].lower() if spoken else "en"
    return Patient(
        id=str(resource["id"]),
        mrn=identifier(resource, mrn_system) or "",
        given_name=given,
        family_name=family,
        birth_date=born,
        account_number=account_number,
        email=telecom(resource, "email"),
        phone=telecom(resource, "phone"),
        language=language,
        address=address_text(resource),
    )


@_reads_resource
def proxy_access(resource: Resource, relationships: Mapping[str, ProxyAccess]) -> tuple[ProxyAccess, str] | None:
    """The access the first mapped relationship code grants, and that relationship's name; None if none maps."""
    for concept in resource.get("relationship", []):
        for coding in concept.get("coding", []):
            access = relationships.get(str(coding.get("code", "")))
            if access is not None:
                name = coding.get("display") or concept.get("text") or coding["code"]
                return access, str(name).lower()
    return None


@_reads_resource
def related_person(
    resource: Resource, patient_id: str, access: ProxyAccess, relationship: str, proxy_patient_id: str | None
) -> RelatedPerson:
    given, family = person_name(resource)
    born = resource.get("birthDate")
    try:
        birth_date = date.fromisoformat(born) if isinstance(born, str) else None
    except ValueError:
        birth_date = None
    return RelatedPerson(
        id=str(resource["id"]),
        patient_id=patient_id,
        given_name=given,
        family_name=family,
        relationship=relationship,
        access=access,
        birth_date=birth_date,
        email=telecom(resource, "email"),
        patient_id_of_proxy=proxy_patient_id,
    )


# --- Statements ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Adjudicated:
    """What the EOBs say about one charge: insurance paid and the adjustments."""

    paid: Money
    adjustments: tuple[Adjustment, ...]


def _eob_key(item: Mapping[str, Any], zone: tzinfo) -> tuple[str | None, frozenset[tuple[str, str]], date | None]:
    encounters = [reference_id(ref, "Encounter") for ref in item.get("encounter", [])]
    served = item.get("servicedDate") or item.get("servicedPeriod", {}).get("start")
    try:
        served_on = parse_date(served, zone) if served else None
    except ValueError:
        served_on = None
    return (encounters[0] if encounters else None), frozenset(codes(item.get("productOrService"))), served_on


def _adjustment(entry: Mapping[str, Any], category: str, amount: Money) -> Adjustment | None:
    reason = entry.get("reason")
    carc = next((code for system, code in codes(reason) if system == CARC_SYSTEM), None)
    group = next((code for system, code in codes(reason) if system.endswith(GROUP_SYSTEM_SUFFIX)), None)
    remarks = tuple(code for system, code in codes(reason) if system == RARC_SYSTEM)
    if category in PATIENT_SHARE:
        return Adjustment(amount, group or "PR", carc or PATIENT_SHARE[category], remarks)
    if category in CONTRACTUAL:
        return Adjustment(amount, group or "CO", carc or CONTRACTUAL[category], remarks)
    if carc is not None:
        return Adjustment(amount, group or "CO", carc, remarks)
    return None


def _adjudicate(item: Mapping[str, Any], eob: Resource, currency: str) -> Adjudicated:
    amounts: dict[str, Money] = {}
    adjustments: list[Adjustment] = []
    for entry in item.get("adjudication", []):
        category = next((code for _, code in codes(entry.get("category"))), "")
        if "amount" not in entry:
            continue
        amount = money(entry["amount"], currency, eob, "item.adjudication.amount")
        if category in PAID_CATEGORIES:
            amounts[category] = amounts.get(category, Money.zero(amount.currency)) + amount
            continue
        adjustment = _adjustment(entry, category, amount)
        if adjustment is not None:
            adjustments.append(adjustment)
    paid = next((amounts[category] for category in PAID_CATEGORIES if category in amounts), Money.zero(currency))
    return Adjudicated(paid, tuple(adjustments))


def adjudications(
    charges: Sequence[Resource], eobs: Iterable[Resource], currency: str, zone: tzinfo
) -> dict[str, Adjudicated]:
    """Insurance paid and adjustments per ChargeItem id, from every EOB item that matches a charge.

    An EOB item matches a ChargeItem when its ``encounter`` is the charge's ``context``, its
    ``productOrService`` shares a coding with the charge's ``code`` and its serviced date is the
    charge's (where both state one). Each item matches one charge at most (the first, in the
    statement's line order); the items of several EOBs (primary, secondary) add up.
    """
    result: dict[str, Adjudicated] = {}
    for eob in eobs:
        if eob.get("status") != "active":
            continue
        unused = [(item, _eob_key(item, zone)) for item in eob.get("item", [])]
        for charge in charges:
            encounter = reference_id(charge.get("context"), "Encounter")
            charge_codes = frozenset(codes(charge.get("code")))
            served = charge_service_date(charge, zone)
            for index, (item, (item_encounter, item_codes, item_day)) in enumerate(unused):
                if item_encounter != encounter or not (item_codes & charge_codes):
                    continue
                if item_day is not None and served is not None and item_day != served:
                    continue
                found = _adjudicate(item, eob, currency)
                before = result.get(charge["id"])
                if before is not None:
                    found = Adjudicated(before.paid + found.paid, before.adjustments + found.adjustments)
                result[charge["id"]] = found
                del unused[index]
                break
    return result


@_reads_resource
def charge_service_date(charge: Resource, zone: tzinfo) -> date | None:
    served = charge.get("occurrenceDateTime") or charge.get("occurrencePeriod", {}).get("start")
    try:
        return parse_date(served, zone) if served else None
    except ValueError:
        return None


@_reads_resource
def charge_code(charge: Resource) -> tuple[str, str]:
    """(code, code system name) of a ChargeItem, preferring CPT, then HCPCS, then revenue codes."""
    found = dict(
        reversed([(CODE_SYSTEMS[system], code) for system, code in codes(charge.get("code")) if system in CODE_SYSTEMS])
    )
    for name in ("CPT", "HCPCS", "REV"):
        if name in found:
            return found[name], name
    raise Unusable(charge, "code (CPT, HCPCS or revenue code)")


def charged_amount(line_item: Mapping[str, Any], charge: Resource, invoice: Resource, currency: str) -> Money:
    """A line's gross charge: its ``base`` price component, else the ChargeItem's ``priceOverride``."""
    for component in line_item.get("priceComponent", []):
        if component.get("type") == "base" and "amount" in component:
            return money(component["amount"], currency, invoice, "lineItem.priceComponent.amount")
    if "priceOverride" in charge:
        return money(charge["priceOverride"], currency, charge, "priceOverride")
    raise Unusable(invoice, "lineItem.priceComponent of type base")


@_reads_resource
def charge_line(
    charge: Resource,
    *,
    visit_id: str,
    charged: Money,
    adjudicated: Adjudicated | None,
    provider: str,
    zone: tzinfo,
) -> ChargeLine:
    served = charge_service_date(charge, zone)
    if served is None:
        raise Unusable(charge, "occurrence date")
    code, code_system = charge_code(charge)
    quantity = charge.get("quantity", {}).get("value", 1)
    paid = adjudicated.paid if adjudicated else Money.zero(charged.currency)
    adjustments = adjudicated.adjustments if adjudicated else ()
    reductions = sum(
        (adjustment.amount for adjustment in adjustments if adjustment.group_code != "PR"), Money.zero(charged.currency)
    )
    return ChargeLine(
        id=str(charge["id"]),
        visit_id=visit_id,
        service_date=served,
        code=code,
        code_system=code_system,
        description=concept_text(charge.get("code")),
        provider=provider,
        quantity=int(quantity),
        charged=charged,
        insurance_paid=paid,
        adjustments=adjustments,
        patient_owes=charged - paid - reductions,
    )


@_reads_resource
def due_date(invoice: Resource, issued_on: date, due_days: int) -> date:
    for extension in invoice.get("extension", []):
        if extension.get("url") == DUE_DATE_EXTENSION and isinstance(extension.get("valueDate"), str):
            return date.fromisoformat(extension["valueDate"])
    return issued_on + timedelta(days=due_days)


# --- Coverage ------------------------------------------------------------------------------------


@_reads_resource
def coverage_rank(resource: Resource) -> CoverageRank | None:
    """Coverage.order 1 is primary and 2 secondary (no order: primary); later orders are not shown."""
    order = resource.get("order", 1)
    return {1: CoverageRank.PRIMARY, 2: CoverageRank.SECONDARY}.get(order)


@_reads_resource
def coverage_class(resource: Resource, kind: str) -> Mapping[str, Any] | None:
    return next((item for item in resource.get("class", []) if (COVERAGE_CLASS, kind) in codes(item.get("type"))), None)


@_reads_resource
def member_id(resource: Resource) -> str:
    for item in resource.get("identifier", []):
        if MEMBER_ID_TYPE in codes(item.get("type")) and item.get("value"):
            return str(item["value"])
    return str(resource.get("subscriberId", ""))


def coverage_resource(change: CoverageChange, *, payer_id_system: str, key_identifier: dict[str, str]) -> Resource:
    """The Coverage a change asks for (without id); a subscriber other than the patient is contained."""
    beneficiary = {"reference": f"Patient/{change.patient_id}"}
    relationship = (
        change.relationship
        if change.relationship in {"self", "spouse", "child", "parent", "common", "injured"}
        else "other"
    )
    resource: Resource = {
        "resourceType": "Coverage",
        "identifier": [
            key_identifier,
            {"type": {"coding": [{"system": MEMBER_ID_TYPE[0], "code": MEMBER_ID_TYPE[1]}]}, "value": change.member_id},
        ],
        "status": "active",
        "subscriberId": change.member_id,
        "beneficiary": beneficiary,
        "relationship": {"coding": [{"system": SUBSCRIBER_RELATIONSHIP, "code": relationship}]},
        "payor": [{"identifier": {"system": payer_id_system, "value": change.payer_id}, "display": change.payer_name}],
        "order": 1 if change.rank is CoverageRank.PRIMARY else 2,
    }
    if change.starts_on is not None:
        resource["period"] = {"start": change.starts_on.isoformat()}
    classes = []
    if change.plan_name:
        plan_type = {"coding": [{"system": COVERAGE_CLASS, "code": "plan"}]}
        classes.append({"type": plan_type, "value": change.plan_name, "name": change.plan_name})
    if change.group_number:
        classes.append(
            {"type": {"coding": [{"system": COVERAGE_CLASS, "code": "group"}]}, "value": change.group_number}
        )
    if classes:
        resource["class"] = classes
    if relationship == "self":
        resource["subscriber"] = beneficiary
    else:
        given, _, family = change.subscriber_name.strip().rpartition(" ")
        subscriber: Resource = {
            "resourceType": "RelatedPerson",
            "id": "subscriber",
            "patient": beneficiary,
            "name": [{"family": family, "given": [given] if given else []}],
        }
        if change.subscriber_birth_date is not None:
            subscriber["birthDate"] = change.subscriber_birth_date.isoformat()
        resource["contained"] = [subscriber]
        resource["subscriber"] = {"reference": "#subscriber"}
    return resource


# --- Scheduling ----------------------------------------------------------------------------------


@_reads_resource
def visit_type(resource: Resource, *, online: bool, default_minutes: int, currency: str) -> VisitType:
    minutes = default_minutes
    typical_charge = None
    for extension in resource.get("extension", []):
        duration = extension.get("valueDuration")
        if extension.get("url") == VISIT_DURATION_EXTENSION and isinstance(duration, dict):
            value = Decimal(duration.get("value", default_minutes))
            minutes = int(value * 60) if duration.get("code") == "h" else int(value)
        if extension.get("url") == TYPICAL_CHARGE_EXTENSION:
            typical_charge = money(extension.get("valueMoney"), currency, resource, "extension:typical-charge")
    service_type = next(
        (
            code
            for concept in resource.get("type", [])
            for system, code in codes(concept)
            if system == SERVICE_TYPE_SYSTEM
        ),
        "30",
    )
    return VisitType(
        id=str(resource["id"]),
        name=str(resource.get("name", "")),
        duration_minutes=minutes,
        bookable_online=online,
        instructions=str(resource.get("extraDetails", "")),
        call_phone=telecom(resource, "phone"),
        typical_charge=typical_charge,
        service_type=service_type,
    )


@_reads_resource
def location(resource: Resource) -> Location:
    return Location(
        id=str(resource["id"]),
        name=str(resource.get("name", "")),
        address=address_text(resource) or "",
        phone=telecom(resource, "phone") or "",
    )


@dataclass(frozen=True, slots=True)
class Actors:
    """Who and where a Schedule (and so each of its Slots) is for."""

    provider_id: str
    location_id: str
    visit_type_id: str


@_reads_resource
def schedule_actors(schedule: Resource) -> Actors:
    actors = schedule.get("actor", [])

    def first(kind: str) -> str:
        return next((found for ref in actors if (found := reference_id(ref, kind)) is not None), "")

    return Actors(first("Practitioner"), first("Location"), first("HealthcareService"))


@_reads_resource
def slot(resource: Resource, actors: Actors) -> Slot:
    try:
        starts, ends = parse_instant(resource.get("start")), parse_instant(resource.get("end"))
    except ValueError:
        raise Unusable(resource, "start and end") from None
    return Slot(
        id=str(resource["id"]),
        starts_at=starts,
        ends_at=ends,
        provider_id=actors.provider_id,
        location_id=actors.location_id,
        visit_type_id=actors.visit_type_id,
    )


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The first instant of ``day`` and of the next day, in the hospital's zone."""
    return datetime.combine(day, time(), tzinfo=zone), datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)


@_reads_resource
def appointment(resource: Resource) -> Appointment:
    def participant(kind: str) -> str:
        for item in resource.get("participant", []):
            found = reference_id(item.get("actor"), kind)
            if found is not None:
                return found
        return ""

    try:
        starts, ends = parse_instant(resource.get("start")), parse_instant(resource.get("end"))
    except ValueError:
        raise Unusable(resource, "start and end") from None
    status = _APPOINTMENT_STATUS.get(str(resource.get("status")))
    if status is None:
        raise Unusable(resource, "status")
    slots = [found for ref in resource.get("slot", []) if (found := reference_id(ref, "Slot")) is not None]
    return Appointment(
        id=str(resource["id"]),
        patient_id=participant("Patient"),
        status=status,
        starts_at=starts,
        ends_at=ends,
        visit_type_id=participant("HealthcareService"),
        provider_id=participant("Practitioner"),
        location_id=participant("Location"),
        slot_id=slots[0] if slots else None,
        instructions=str(resource.get("patientInstruction", "")),
    )
