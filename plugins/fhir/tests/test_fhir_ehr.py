"""The mapping from FHIR resources to the portal's models, method by method, against the seeded
server: what the README's "Mapping" section promises."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from carefront_fhir.ehr import FhirEHR
from carefront_sdk.errors import NotFound, Refused
from carefront_sdk.models import (
    Adjustment,
    CoverageChange,
    CoverageRank,
    Money,
    PaymentPosting,
    ProxyAccess,
    SlotQuery,
)
from carefront_sdk.testing import EHRSample, statement_problems

MakeEHR = Callable[..., FhirEHR]


async def test_statement_lines_come_from_charge_items_and_eob_adjudication(make_ehr: MakeEHR) -> None:
    statement = await make_ehr().read_statement("inv-jan")
    summary = statement.summary
    assert (summary.statement_code, summary.account_number, summary.patient_id) == ("SC7Q4M2", "ACC1001", "pt-1")
    assert (summary.issued_on, summary.due_on) == (date(2025, 2, 1), date(2025, 3, 3))
    assert [line.id for line in statement.lines] == ["ci-jan-visit", "ci-jan-panel"], "in lineItem.sequence order"
    visit, panel = statement.lines
    assert (visit.code, visit.code_system, visit.description) == ("99213", "CPT", "Office visit, established patient")
    assert (visit.service_date, visit.provider, visit.visit_id) == (date(2025, 1, 14), "Dr. Jordan Lee", "enc-jan")
    assert (visit.charged, visit.insurance_paid) == (Money(18000), Money(9000))
    assert visit.adjustments == (Adjustment(Money(4000), "CO", "45"), Adjustment(Money(5000), "PR", "1", ("N130",)))
    assert visit.patient_owes == Money(5000)
    assert panel.adjustments == (Adjustment(Money(1500), "CO", "45"), Adjustment(Money(4500), "PR", "1"))
    assert (summary.total_charged, summary.insurance_paid, summary.adjustments) == (
        Money(24000),
        Money(9000),
        Money(5500),
    )
    assert (summary.patient_paid, summary.balance) == (Money(0), Money(9500))
    (encounter,) = statement.visits
    assert (encounter.kind, encounter.department, encounter.started_on) == (
        "Office visit",
        "Family medicine",
        date(2025, 1, 14),
    )
    assert not statement_problems(statement)


async def test_payments_on_file_and_implied_carcs(make_ehr: MakeEHR) -> None:
    statement = await make_ehr().read_statement("inv-dec")
    (line,) = statement.lines
    assert line.adjustments == (Adjustment(Money(2000), "CO", "45"), Adjustment(Money(2000), "PR", "3"))
    assert (statement.summary.patient_paid, statement.summary.balance) == (Money(2000), Money(0))


async def test_drafts_are_not_statements(make_ehr: MakeEHR) -> None:
    ehr = make_ehr()
    assert [summary.id for summary in await ehr.list_statements("pt-1")] == ["inv-jan", "inv-dec"]
    with pytest.raises(NotFound):
        await ehr.read_statement("inv-draft")
    with pytest.raises(NotFound):
        await ehr.find_statement_by_code("SCDRAFT")
    assert (await ehr.find_statement_by_code(" SC3K9P1 ")).id == "inv-dec"
    assert await ehr.list_statements("pt-2") == []


async def test_match_patient_by_each_identifier_and_whole_names(make_ehr: MakeEHR, seed_data: Any) -> None:
    ehr = make_ehr()
    by_account = seed_data.query("pt-1", account_number="ACC1001")
    assert [patient.id for patient in await ehr.match_patient(by_account)] == ["pt-1"]
    by_code = seed_data.query("pt-1", statement_code="SC7Q4M2")
    assert [patient.id for patient in await ehr.match_patient(by_code)] == ["pt-1"]
    child = seed_data.query("pt-1-child", account_number="ACC1001")
    assert [patient.id for patient in await ehr.match_patient(child)] == ["pt-1-child"]
    prefix = dataclasses.replace(seed_data.query("pt-1", mrn="MRN1001"), family_name=by_account.family_name[:3])
    assert await ehr.match_patient(prefix) == [], "FHIR matches name prefixes; the portal wants the whole name"
    wrong_mrn = seed_data.query("pt-1", mrn="MRN1002")
    assert await ehr.match_patient(wrong_mrn) == []


async def test_read_patient_maps_contact_details_and_language(make_ehr: MakeEHR, seed_data: Any) -> None:
    patient = await make_ehr().read_patient("pt-3")
    name = seed_data.patients["pt-3"]["name"][0]
    assert (patient.given_name, patient.family_name) == (name["given"][0], name["family"])
    assert (patient.mrn, patient.account_number, patient.language) == ("MRN1003", "ACC1003", "es")
    assert patient.phone == "+15555550003"
    assert patient.address == "13 Elm Street, Springfield, IL 62701"


async def test_related_persons_map_relationship_codes_to_access(make_ehr: MakeEHR) -> None:
    ehr = make_ehr()
    (parent,) = await ehr.list_related_persons("pt-1-child")
    assert (parent.access, parent.relationship, parent.patient_id_of_proxy) == (ProxyAccess.GUARDIAN, "parent", "pt-1")
    (billing,) = await ehr.list_related_persons("pt-1")
    assert (billing.access, billing.given_name, billing.family_name) == (ProxyAccess.BILLING, "Dana", "Okafor")
    assert billing.patient_id_of_proxy is None
    narrower = make_ehr(relationship_map=["PRN=caregiver"])
    assert [person.access for person in await narrower.list_related_persons("pt-1-child")] == [ProxyAccess.CAREGIVER]
    assert await narrower.list_related_persons("pt-1") == []


async def test_coverage_payer_subscriber_and_classes(make_ehr: MakeEHR, seed_data: Any) -> None:
    ehr = make_ehr()
    (own,) = await ehr.list_coverages("pt-1")
    assert (own.payer_id, own.payer_name, own.plan_name, own.group_number) == (
        "60054",
        "Aetna",
        "Choice POS II",
        "GRP-4401",
    )
    assert (own.member_id, own.relationship, own.starts_on) == ("W100200301", "self", date(2024, 1, 1))
    (child,) = await ehr.list_coverages("pt-1-child")
    parent = seed_data.patients["pt-1"]
    assert child.subscriber_name == f"{parent['name'][0]['given'][0]} {parent['name'][0]['family']}"
    assert (child.relationship, child.payer_id, child.member_id) == ("child", "60054", "W100200301-02")


async def test_coverage_with_another_subscriber_and_one_per_rank(make_ehr: MakeEHR, server: Any) -> None:
    ehr = make_ehr()
    change = CoverageChange(
        patient_id="pt-1",
        rank=CoverageRank.PRIMARY,
        payer_id="70670",
        payer_name="Blue Cross Blue Shield of Illinois",
        plan_name="PPO Gold",
        member_id="XOF900100",
        group_number="G-77",
        subscriber_name="Robin Fixtureby",
        subscriber_birth_date=date(1978, 6, 1),
        relationship="spouse",
        starts_on=date(2025, 1, 1),
    )
    added = await ehr.write_coverage(change, "spouse-plan")
    assert added is not None
    assert (added.subscriber_name, added.subscriber_birth_date, added.relationship) == (
        "Robin Fixtureby",
        date(1978, 6, 1),
        "spouse",
    )
    assert [coverage.id for coverage in await ehr.list_coverages("pt-1")] == [added.id], (
        "the new primary retires the old"
    )
    assert server.resources("Coverage?_id=cov-1")[0]["status"] == "cancelled"
    replaced = await ehr.write_coverage(
        dataclasses.replace(change, member_id="XOF900101", coverage_id=added.id), "fix-member-id"
    )
    assert replaced is not None
    assert (replaced.id, replaced.member_id) == (added.id, "XOF900101")
    with pytest.raises(Refused) as refusal:
        await ehr.write_coverage(dataclasses.replace(change, member_id=""), "no-member-id")
    assert refusal.value.code == "invalid_coverage"
    with pytest.raises(NotFound):
        await ehr.write_coverage(dataclasses.replace(change, patient_id="pt-2", coverage_id=added.id), "not-yours")


async def test_catalog_durations_online_flags_and_providers(make_ehr: MakeEHR) -> None:
    catalog = await make_ehr().read_scheduling_catalog()
    visit_types = {visit_type.id: visit_type for visit_type in catalog.visit_types}
    assert {ident: visit_type.duration_minutes for ident, visit_type in visit_types.items()} == {
        "hs-follow-up": 20,
        "hs-new": 40,
        "hs-mri": 60,
    }
    assert not visit_types["hs-mri"].bookable_online
    assert visit_types["hs-mri"].call_phone == "+15555550199"
    assert visit_types["hs-follow-up"].bookable_online
    assert visit_types["hs-follow-up"].instructions == "Bring your medication list."
    # The fee schedule and the payer's service type, for the patient's estimate; absent, none and 30.
    assert (visit_types["hs-follow-up"].typical_charge, visit_types["hs-follow-up"].service_type) == (
        Money(15550, "USD"),
        "98",
    )
    assert (visit_types["hs-new"].typical_charge, visit_types["hs-new"].service_type) == (None, "30")
    providers = {provider.id: provider for provider in catalog.providers}
    assert providers["prac-shah"].name == "Dr. Priya Shah", (
        "read from the Practitioner when the reference has no display"
    )
    assert (providers["prac-lee"].location_ids, providers["prac-lee"].visit_type_ids) == (
        ("loc-main",),
        ("hs-follow-up", "hs-new"),
    )
    assert providers["prac-lee"].specialty == "Family Medicine"
    main = next(place for place in catalog.locations if place.id == "loc-main")
    assert (main.address, main.phone) == ("100 Main Street, Springfield, IL 62701", "+15555550100")


async def test_find_slots_keeps_to_the_day_in_the_hospitals_zone(make_ehr: MakeEHR, sample: EHRSample) -> None:
    ehr = make_ehr()
    slots = await ehr.find_slots(sample.slot_query)
    assert [slot.id for slot in slots] == [
        "slot-fu-0900",
        "slot-fu-0930",
        "slot-fu-1000",
        "slot-fu-1030",
        "slot-fu-1100",
    ]
    assert all(slot.starts_at.utcoffset() == timedelta(hours=-6) for slot in slots)
    assert [
        slot.id for slot in await ehr.find_slots(dataclasses.replace(sample.slot_query, provider_id="prac-shah"))
    ] == []
    by_place = await ehr.find_slots(SlotQuery("hs-new", sample.slot_query.day, location_id="loc-north"))
    assert [(slot.id, slot.provider_id) for slot in by_place] == [("slot-new-shah", "prac-shah")]
    assert await ehr.find_slots(SlotQuery("hs-unknown", sample.slot_query.day)) == []


async def test_a_payment_without_a_statement_is_posted_to_the_account(make_ehr: MakeEHR, server: Any) -> None:
    posting = PaymentPosting(
        patient_id="pt-2",
        account_number="ACC1002",
        amount=Money(2500),
        gateway_reference="pi_test_123",
        paid_at=datetime(2025, 3, 3, 15, tzinfo=UTC),
        method="card",
    )
    receipt = await make_ehr().post_payment(posting, "account-payment")
    (notice,) = server.resources(f"PaymentNotice?_id={receipt.reference}")
    assert notice["request"] == {"reference": "Account/acct-2"}
    assert notice["amount"] == {"value": 25, "currency": "USD"}
    (reconciliation,) = server.resources(f"PaymentReconciliation?_id={notice['payment']['reference'].split('/')[1]}")
    assert reconciliation["paymentIdentifier"]["value"] == "pi_test_123"
    with pytest.raises(Refused) as refusal:
        await make_ehr().post_payment(dataclasses.replace(posting, statement_id="inv-jan"), "not-their-statement")
    assert refusal.value.code == "wrong_statement"


async def test_no_phi_in_logs(
    make_ehr: MakeEHR, seed_data: Any, sample: EHRSample, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ehr = make_ehr()
    await ehr.match_patient(sample.match)
    await ehr.read_patient("pt-1")
    await ehr.list_coverages("pt-1")
    await ehr.read_statement("inv-jan")
    slot = (await ehr.find_slots(sample.slot_query))[0]
    await ehr.book("pt-1", slot.id, "log-check")
    patient = seed_data.patients["pt-1"]
    canaries = [
        patient["name"][0]["family"],
        patient["name"][0]["given"][0],
        patient["birthDate"],
        "MRN1001",
        "W100200301",
    ]
    assert caplog.records, "the adapter logs its requests at debug level"
    for canary in canaries:
        assert canary not in caplog.text, f"{canary!r} reached the logs"
