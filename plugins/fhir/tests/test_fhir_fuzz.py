"""FHIR resources as a server might really send them — elements missing, of the wrong JSON type, or
with values that do not parse — fed to the functions that turn resources into the SDK's models.
Each answers a model or ``Unavailable`` naming the resource type and element (the SDK's tier for
"the other system's answer is unusable"); never any other exception.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import UTC
from decimal import Decimal
from typing import Any

from carefront_fhir import mapping
from carefront_sdk.errors import Unavailable
from carefront_sdk.models import ProxyAccess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MRN = "urn:oid:2.16.840.1.113883.3.9999.1"
PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "identifier": [{"system": MRN, "value": "MRN1"}],
    "name": [{"use": "official", "family": "Rivera", "given": ["Alex"], "prefix": ["Mx"]}],
    "birthDate": "1985-04-12",
    "telecom": [{"system": "email", "value": "alex@example.org"}, {"system": "phone", "value": "555", "use": "mobile"}],
    "address": [{"use": "home", "line": ["1 Main St"], "city": "Springfield", "state": "IL", "postalCode": "62701"}],
    "communication": [{"language": {"coding": [{"code": "es-US"}]}, "preferred": True}],
}
RELATED = {
    "resourceType": "RelatedPerson",
    "id": "r1",
    "relationship": [{"coding": [{"code": "MTH", "display": "Mother"}], "text": "mother"}],
    "name": [{"family": "Rivera", "given": ["Dana"]}],
    "birthDate": "1960-01-01",
}
COVERAGE = {
    "resourceType": "Coverage",
    "id": "c1",
    "order": 1,
    "subscriberId": "W100",
    "identifier": [{"type": {"coding": [{"code": "MB"}]}, "value": "W100"}],
    "class": [{"type": {"coding": [{"code": "group"}]}, "value": "G1", "name": "Choice"}],
}
SERVICE = {
    "resourceType": "HealthcareService",
    "id": "hs1",
    "name": "Follow-up visit",
    "type": [{"coding": [{"code": "follow-up"}], "text": "Follow-up"}],
    "extension": [{"url": "duration", "valueDuration": {"value": 30, "unit": "min"}}],
}
LOCATION = {
    "resourceType": "Location",
    "id": "l1",
    "name": "Riverside Clinic",
    "address": {"line": ["1 River Rd"], "city": "Springfield"},
    "telecom": [{"system": "phone", "value": "555-0100"}],
}
SCHEDULE = {
    "resourceType": "Schedule",
    "id": "s1",
    "actor": [
        {"reference": "PractitionerRole/pr1"},
        {"reference": "Location/l1"},
        {"reference": "HealthcareService/hs1"},
    ],
}
SLOT = {
    "resourceType": "Slot",
    "id": "sl1",
    "schedule": {"reference": "Schedule/s1"},
    "status": "free",
    "start": "2025-03-05T09:00:00-06:00",
    "end": "2025-03-05T09:30:00-06:00",
}
APPOINTMENT = {
    "resourceType": "Appointment",
    "id": "a1",
    "status": "booked",
    "start": "2025-03-05T09:00:00-06:00",
    "end": "2025-03-05T09:30:00-06:00",
    "slot": [{"reference": "Slot/sl1"}],
    "participant": [{"actor": {"reference": "Patient/p1"}}, {"actor": {"reference": "Location/l1"}}],
}
CHARGE = {
    "resourceType": "ChargeItem",
    "id": "ch1",
    "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "99213", "display": "Office visit"}]},
    "occurrenceDateTime": "2025-01-14T10:00:00-06:00",
    "context": {"reference": "Encounter/e1"},
}

# What a resource is turned into, and by which function.
READERS: dict[str, tuple[dict[str, Any], Callable[[dict[str, Any]], object]]] = {
    "patient": (PATIENT, lambda r: mapping.patient(r, mrn_system=MRN, account_number="A1")),
    "related person": (
        RELATED,
        lambda r: (
            found := mapping.proxy_access(r, {"MTH": ProxyAccess.CAREGIVER}),
            found and mapping.related_person(r, "p1", found[0], found[1], None),
        ),
    ),
    "coverage": (
        COVERAGE,
        lambda r: (mapping.coverage_rank(r), mapping.member_id(r), mapping.coverage_class(r, "group")),
    ),
    "visit type": (SERVICE, lambda r: mapping.visit_type(r, online=True, default_minutes=20, currency="USD")),
    "location": (LOCATION, mapping.location),
    "slot": (SLOT, lambda r: mapping.slot(r, mapping.schedule_actors(SCHEDULE))),
    "schedule": (SCHEDULE, mapping.schedule_actors),
    "appointment": (APPOINTMENT, mapping.appointment),
    "charge": (CHARGE, lambda r: (mapping.charge_code(r), mapping.charge_service_date(r, UTC))),
}

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.decimals(allow_nan=False, allow_infinity=False, places=4).map(Decimal)
    | st.sampled_from(["", "x", "2025-02-30", "2025-03-05T09:00:00", "2025-03-05T25:00:00Z", "Slot/", "/", "??"])
    | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a resource where a value could be wrong."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@st.composite
def damaged(draw: st.DrawFn, resource: dict[str, Any]) -> dict[str, Any]:
    """The resource with 1-3 elements replaced by any JSON value or removed."""
    changed = copy.deepcopy(resource)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(changed)
        if not paths:
            break
        *parents, last = draw(st.sampled_from(paths))
        holder: Any = changed
        for step in parents:
            holder = holder[step]
        if draw(st.booleans()) and isinstance(holder, dict):
            del holder[last]
        else:
            holder[last] = draw(JSON_VALUES)
    return changed


FUZZ = settings(max_examples=150, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def _read(kind: str, resource: dict[str, Any]) -> None:
    try:
        READERS[kind][1](resource)
    except Unavailable as error:
        detail = error.detail
    else:
        return
    kind_named = resource.get("resourceType")
    named = kind_named if isinstance(kind_named, str) and kind_named.isalpha() else "resource"
    assert detail.startswith(f"fhir: {named} "), detail


@FUZZ
@given(data=st.data())
def test_damaged_resources_are_models_or_unavailable(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(READERS)))
    _read(kind, data.draw(damaged(READERS[kind][0]), label=kind))


def test_the_undamaged_resources_are_read() -> None:
    # The fuzz starts from resources that work, so each damage is what makes a difference.
    for _kind, (resource, read) in READERS.items():
        assert read(copy.deepcopy(resource))
