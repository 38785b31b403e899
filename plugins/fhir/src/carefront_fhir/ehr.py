"""The EHR adapter over FHIR R4 REST: patients, proxies, statements, coverage, scheduling, payments.

Idempotency lives on the server: every resource the adapter creates carries an identifier
``idempotency_system|key`` and is created conditionally (``If-None-Exist``), so a repeated call
finds what the first one made. One slot is booked once because the Slot is marked busy with
``If-Match`` on the version that was read free: of two bookings racing for it, the second update
fails with 412 and becomes ``Refused("slot_taken")``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Sequence
from datetime import date, datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from carefront_sdk.adapters import AdapterContext
from carefront_sdk.errors import CarefrontError, NotFound, Refused, Unavailable
from carefront_sdk.models import (
    Appointment,
    ChargeLine,
    Coverage,
    CoverageChange,
    CoverageRank,
    Health,
    Money,
    Patient,
    PatientQuery,
    PatientSearch,
    PaymentPosting,
    PostingReceipt,
    Provider,
    RelatedPerson,
    SchedulingCatalog,
    Slot,
    SlotQuery,
    Statement,
    StatementSummary,
    Visit,
    require_aware,
)

from carefront_fhir import mapping
from carefront_fhir.client import Conflict, FhirClient, Rejected, Resource
from carefront_fhir.config import Settings, read_settings

__all__ = ["FhirEHR"]

log = logging.getLogger(__name__)

SHOWN_INVOICES = ("issued", "balanced")
"""Invoice statuses that are statements; drafts, cancelled and entered-in-error ones are not."""
_ID_CHUNK = 50
"""Ids per ``_id`` search, to keep a request's form body modest."""
_CONFLICT_RETRIES = 3
_SLOT_TAKEN = "Someone has just taken that time. Please choose another."


class FhirEHR:
    """An EHR reached over FHIR R4 REST, authorized by SMART Backend Services."""

    def __init__(self, context: AdapterContext) -> None:
        self._settings: Settings = read_settings(context.config)
        self._zone = ZoneInfo(context.time_zone)
        self._clock = context.clock
        self._fhir = FhirClient(self._settings)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._fhir.aclose()

    # --- helpers ---

    def _now(self) -> datetime:
        now = self._clock()
        require_aware(now, "AdapterContext.clock()")
        return now

    def _key_identifier(self, key: str) -> dict[str, str]:
        return {"system": self._settings.idempotency_system, "value": key}

    def _key_condition(self, key: str) -> str:
        return urlencode({"identifier": f"{self._settings.idempotency_system}|{key}"})

    async def _read(self, resource_type: str, resource_id: str, what: str) -> Resource:
        try:
            return await self._fhir.read(resource_type, resource_id)
        except NotFound:
            raise NotFound(what, resource_id) from None

    async def _by_ids(self, resource_type: str, ids: Iterable[str]) -> dict[str, Resource]:
        wanted = sorted(set(ids))
        chunks = [wanted[start : start + _ID_CHUNK] for start in range(0, len(wanted), _ID_CHUNK)]
        found: dict[str, Resource] = {}
        for page in await asyncio.gather(
            *(self._fhir.search(resource_type, [("_id", ",".join(chunk))]) for chunk in chunks)
        ):
            found.update({str(resource["id"]): resource for resource in page})
        return found

    async def _display(self, reference: object, cache: dict[str, str]) -> str:
        """The name a reference shows: its ``display``, else the name of the resource it points at."""
        if not isinstance(reference, dict):
            return ""
        if reference.get("display"):
            return str(reference["display"])
        text = reference.get("reference")
        if not isinstance(text, str) or text.startswith("#") or text.count("/") != 1:
            return ""
        if text not in cache:
            resource_type, resource_id = text.split("/")
            try:
                cache[text] = mapping.full_name(await self._fhir.read(resource_type, resource_id))
            except NotFound:
                cache[text] = ""
        return cache[text]

    # --- health ---

    async def health(self) -> Health:
        """The server's CapabilityStatement answers, and (with SMART) a token can be had."""
        try:
            statement = await self._fhir.capabilities()
            await self._fhir.authorize()
        except CarefrontError as error:
            return Health(ok=False, detail=str(error))
        version = str(statement.get("fhirVersion", "unknown"))
        return Health(ok=version.startswith("4.0"), detail=f"FHIR {version} at {self._settings.base_url}")

    # --- patients and proxies ---

    async def _account_number(self, patient_id: str) -> str:
        accounts = await self._fhir.search("Account", [("subject", f"Patient/{patient_id}"), ("status", "active")])
        numbers = sorted(
            number for account in accounts if (number := mapping.identifier(account, self._settings.account_system))
        )
        return numbers[0] if numbers else ""

    async def _patient(self, resource: Resource) -> Patient:
        number = await self._account_number(str(resource["id"]))
        return mapping.patient(resource, mrn_system=self._settings.mrn_system, account_number=number)

    async def match_patient(self, query: PatientQuery) -> Sequence[Patient]:
        base = [
            ("family", query.family_name.strip()),
            ("given", query.given_name.strip()),
            ("birthdate", query.birth_date.isoformat()),
        ]
        searches: list[Awaitable[list[Resource]]] = []
        if query.mrn:
            searches.append(
                self._fhir.search(
                    "Patient", [*base, ("identifier", f"{self._settings.mrn_system}|{query.mrn.strip()}")]
                )
            )
        subjects: set[str] = set()
        if query.account_number:
            condition = f"{self._settings.account_system}|{query.account_number.strip()}"
            for account in await self._fhir.search("Account", [("identifier", condition)]):
                subjects |= {
                    found for ref in account.get("subject", []) if (found := mapping.reference_id(ref, "Patient"))
                }
        if query.statement_code:
            condition = f"{self._settings.statement_code_system}|{query.statement_code.strip()}"
            for invoice in await self._fhir.search("Invoice", [("identifier", condition)]):
                if (found := mapping.reference_id(invoice.get("subject"), "Patient")) is not None:
                    subjects.add(found)
        for chunk_start in range(0, len(subjects), _ID_CHUNK):
            chunk = sorted(subjects)[chunk_start : chunk_start + _ID_CHUNK]
            searches.append(self._fhir.search("Patient", [*base, ("_id", ",".join(chunk))]))
        candidates = {str(resource["id"]): resource for page in await asyncio.gather(*searches) for resource in page}

        def same(a: str, b: str) -> bool:
            return a.strip().casefold() == b.strip().casefold()

        # FHIR string search matches prefixes; the portal matches whole names and the exact birth date.
        matched = [
            resource
            for resource in candidates.values()
            if resource.get("birthDate") == query.birth_date.isoformat()
            and any(
                same(name.get("family", ""), query.family_name)
                and any(same(given, query.given_name) for given in name.get("given", []))
                for name in resource.get("name", [])
            )
        ]
        return [await self._patient(resource) for resource in sorted(matched, key=lambda resource: str(resource["id"]))]

    async def search_patients(self, query: PatientSearch) -> Sequence[Patient]:
        """A Patient search with the fields FHIR searches directly; an account number or statement code
        first finds the Account's or Invoice's subjects. Names and phones are then compared whole."""
        given, family = query.name_parts
        params: list[tuple[str, str]] = [("_count", str(min(query.limit * 5, 500)))]
        if family:
            params.append(("family", family))
        if given:
            params.append(("given", given))
        if query.birth_date:
            params.append(("birthdate", query.birth_date.isoformat()))
        if query.mrn:
            params.append(("identifier", f"{self._settings.mrn_system}|{query.mrn.strip()}"))
        if query.phone:
            # FHIR matches a phone token as stored; hospitals store E.164, so a US number gets its +1.
            digits = query.phone_digits
            params.append(("phone", f"+1{digits}" if len(digits) == 10 else f"+{digits}"))
        subjects: set[str] | None = None
        if query.account_number:
            condition = f"{self._settings.account_system}|{query.account_number.strip()}"
            subjects = {
                found
                for account in await self._fhir.search("Account", [("identifier", condition)])
                for ref in account.get("subject", [])
                if (found := mapping.reference_id(ref, "Patient"))
            }
        if query.statement_code:
            condition = f"{self._settings.statement_code_system}|{query.statement_code.strip()}"
            invoiced = {
                found
                for invoice in await self._fhir.search("Invoice", [("identifier", condition)])
                if (found := mapping.reference_id(invoice.get("subject"), "Patient")) is not None
            }
            subjects = invoiced if subjects is None else subjects & invoiced
        if subjects is not None:
            if not subjects:
                return []
            params.append(("_id", ",".join(sorted(subjects)[:_ID_CHUNK])))
        candidates = await self._fhir.search("Patient", params)

        def same(a: str, b: str) -> bool:
            return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()

        def named(resource: Resource) -> bool:
            return not family or any(
                same(name.get("family", ""), family)
                and (
                    given is None
                    or same(" ".join(name.get("given", [])), given)
                    or any(same(g, given) for g in name.get("given", []))
                )
                for name in resource.get("name", [])
            )

        def phoned(resource: Resource) -> bool:
            digits = query.phone_digits[-10:]
            return not query.phone or any(
                "".join(ch for ch in str(point.get("value", "")) if ch.isdigit()).endswith(digits)
                for point in resource.get("telecom", [])
                if point.get("system") == "phone"
            )

        matched = [resource for resource in candidates if named(resource) and phoned(resource)]
        patients = [await self._patient(resource) for resource in matched]
        patients.sort(key=lambda patient: (patient.family_name.casefold(), patient.given_name.casefold(), patient.id))
        return patients[: query.limit]

    async def read_patient(self, patient_id: str) -> Patient:
        return await self._patient(await self._read("Patient", patient_id, "patient"))

    async def list_related_persons(self, patient_id: str) -> Sequence[RelatedPerson]:
        _, people = await asyncio.gather(
            self._read("Patient", patient_id, "patient"),
            self._fhir.search("RelatedPerson", [("patient", f"Patient/{patient_id}"), ("active", "true")]),
        )
        proxies = [
            (person, access)
            for person in people
            if (access := mapping.proxy_access(person, self._settings.relationships))
        ]
        # A proxy who is a patient too carries their MRN; one search finds all their patient ids.
        mrns = {mrn for person, _ in proxies if (mrn := mapping.identifier(person, self._settings.mrn_system))}
        patients_by_mrn: dict[str, str] = {}
        if mrns:
            condition = ",".join(f"{self._settings.mrn_system}|{mrn}" for mrn in sorted(mrns))
            for resource in await self._fhir.search("Patient", [("identifier", condition)]):
                if (mrn := mapping.identifier(resource, self._settings.mrn_system)) is not None:
                    patients_by_mrn[mrn] = str(resource["id"])
        return [
            mapping.related_person(
                person,
                patient_id,
                access,
                relationship,
                patients_by_mrn.get(mapping.identifier(person, self._settings.mrn_system) or ""),
            )
            for person, (access, relationship) in proxies
        ]

    # --- statements ---

    async def _eobs(self, patient_id: str) -> list[Resource]:
        return await self._fhir.search(
            "ExplanationOfBenefit", [("patient", f"Patient/{patient_id}"), ("status", "active")]
        )

    async def _statement(self, invoice: Resource, eobs: Sequence[Resource], names: dict[str, str]) -> Statement:
        settings = self._settings
        patient_id = mapping.reference_id(invoice.get("subject"), "Patient")
        if patient_id is None:
            raise mapping.Unusable(invoice, "subject (a Patient)")
        try:
            issued_on = mapping.parse_date(invoice.get("date"), self._zone)
        except ValueError:
            raise mapping.Unusable(invoice, "date") from None
        line_items = sorted(invoice.get("lineItem", []), key=lambda item: item.get("sequence", 0))
        charge_ids = []
        for item in line_items:
            charge_id = mapping.reference_id(item.get("chargeItemReference"), "ChargeItem")
            if charge_id is None:
                raise mapping.Unusable(invoice, "lineItem.chargeItemReference")
            charge_ids.append(charge_id)
        account_id = mapping.reference_id(invoice.get("account"), "Account")
        charges, account, notices = await asyncio.gather(
            self._by_ids("ChargeItem", charge_ids),
            self._fhir.read("Account", account_id) if account_id else _nothing(),
            self._fhir.search("PaymentNotice", [("request", f"Invoice/{invoice['id']}"), ("status", "active")]),
        )
        missing = [charge_id for charge_id in charge_ids if charge_id not in charges]
        if missing:
            raise mapping.Unusable(invoice, "lineItem.chargeItemReference (a ChargeItem is missing)")
        ordered = [charges[charge_id] for charge_id in charge_ids]
        encounter_ids = {
            found for charge in ordered if (found := mapping.reference_id(charge.get("context"), "Encounter"))
        }
        encounters = await self._by_ids("Encounter", encounter_ids)
        adjudicated = mapping.adjudications(ordered, eobs, settings.currency, self._zone)

        visits: dict[str, Visit] = {}
        lines: list[ChargeLine] = []
        for item, charge in zip(line_items, ordered, strict=True):
            provider = ""
            for performer in charge.get("performer", []):
                provider = await self._display(performer.get("actor"), names)
                break
            served = mapping.charge_service_date(charge, self._zone)
            if served is None:
                raise mapping.Unusable(charge, "occurrence date")
            encounter = encounters.get(mapping.reference_id(charge.get("context"), "Encounter") or "")
            visit = await self._visit(encounter, served, provider, names)
            visits.setdefault(visit.id, visit)
            charged = mapping.charged_amount(item, charge, invoice, settings.currency)
            lines.append(
                mapping.charge_line(
                    charge,
                    visit_id=visit.id,
                    charged=charged,
                    adjudicated=adjudicated.get(str(charge["id"])),
                    provider=provider,
                    zone=self._zone,
                )
            )
        currency = lines[0].charged.currency if lines else settings.currency
        paid = sum(
            (mapping.money(notice.get("amount"), currency, notice, "amount") for notice in notices),
            Money.zero(currency),
        )
        total = sum((line.charged for line in lines), Money.zero(currency))
        insurance = sum((line.insurance_paid for line in lines), Money.zero(currency))
        reductions = sum(
            (adjustment.amount for line in lines for adjustment in line.adjustments if adjustment.group_code != "PR"),
            Money.zero(currency),
        )
        owed = sum((line.patient_owes for line in lines), Money.zero(currency))
        if "totalGross" in invoice and mapping.money(invoice["totalGross"], currency, invoice, "totalGross") != total:
            log.warning("fhir: an Invoice's totalGross disagrees with its lines; the statement shows the lines' sum")
        summary = StatementSummary(
            id=str(invoice["id"]),
            patient_id=patient_id,
            account_number=(mapping.identifier(account, settings.account_system) or "") if account else "",
            statement_code=mapping.identifier(invoice, settings.statement_code_system) or "",
            issued_on=issued_on,
            due_on=mapping.due_date(invoice, issued_on, settings.statement_due_days),
            total_charged=total,
            insurance_paid=insurance,
            adjustments=reductions,
            patient_paid=paid,
            balance=owed - paid,
        )
        return Statement(summary=summary, visits=tuple(visits.values()), lines=tuple(lines))

    async def _visit(self, encounter: Resource | None, served: date, provider: str, names: dict[str, str]) -> Visit:
        if encounter is None:
            # Charges outside an encounter are grouped by day of service.
            return Visit(
                id=f"day-{served.isoformat()}", started_on=served, kind="Services", department="", provider=provider
            )
        period = encounter.get("period", {})
        try:
            started = mapping.parse_date(period.get("start"), self._zone) if period.get("start") else served
            ended = mapping.parse_date(period["end"], self._zone) if period.get("end") else None
        except ValueError:
            raise mapping.Unusable(encounter, "period") from None
        kind = next((text for concept in encounter.get("type", []) if (text := mapping.concept_text(concept))), "")
        encounter_class = encounter.get("class", {})
        kind = kind or str(encounter_class.get("display") or encounter_class.get("code") or "Visit")
        department = await self._display(encounter.get("serviceProvider"), names)
        for item in encounter.get("location", []):
            department = department or await self._display(item.get("location"), names)
        who = ""
        for item in encounter.get("participant", []):
            who = who or await self._display(item.get("individual"), names)
        return Visit(
            id=str(encounter["id"]),
            started_on=started,
            kind=kind,
            department=department,
            provider=who or provider,
            ended_on=ended,
        )

    async def _statements(self, invoices: Sequence[Resource], patient_id: str) -> list[Statement]:
        shown = [invoice for invoice in invoices if invoice.get("status") in SHOWN_INVOICES]
        if not shown:
            return []
        eobs = await self._eobs(patient_id)
        names: dict[str, str] = {}
        return list(await asyncio.gather(*(self._statement(invoice, eobs, names) for invoice in shown)))

    async def list_statements(self, patient_id: str) -> Sequence[StatementSummary]:
        _, invoices = await asyncio.gather(
            self._read("Patient", patient_id, "patient"),
            self._fhir.search("Invoice", [("subject", f"Patient/{patient_id}"), ("status", ",".join(SHOWN_INVOICES))]),
        )
        summaries = [statement.summary for statement in await self._statements(invoices, patient_id)]
        return sorted(summaries, key=lambda summary: (summary.issued_on, summary.id), reverse=True)

    async def read_statement(self, statement_id: str) -> Statement:
        invoice = await self._read("Invoice", statement_id, "statement")
        patient_id = mapping.reference_id(invoice.get("subject"), "Patient")
        if invoice.get("status") not in SHOWN_INVOICES or patient_id is None:
            raise NotFound("statement", statement_id)
        (statement,) = await self._statements([invoice], patient_id)
        return statement

    async def find_statement_by_code(self, statement_code: str) -> StatementSummary:
        code = statement_code.strip()
        if not code:
            raise NotFound("statement", statement_code)
        invoices = await self._fhir.search(
            "Invoice",
            [("identifier", f"{self._settings.statement_code_system}|{code}"), ("status", ",".join(SHOWN_INVOICES))],
        )
        for invoice in invoices:
            patient_id = mapping.reference_id(invoice.get("subject"), "Patient")
            if patient_id is not None:
                (statement,) = await self._statements([invoice], patient_id)
                return statement.summary
        raise NotFound("statement", statement_code)

    # --- coverage ---

    async def _coverage(self, resource: Resource, patient: Resource, names: dict[str, str]) -> Coverage | None:
        rank = mapping.coverage_rank(resource)
        if rank is None:
            return None
        payor = (resource.get("payor") or [{}])[0]
        payer_id, payer_name = "", str(payor.get("display", ""))
        if isinstance(payor.get("identifier"), dict):
            payer_id = str(payor["identifier"].get("value", ""))
        elif (organization_id := mapping.reference_id(payor, "Organization")) is not None:
            organization = await self._fhir.read("Organization", organization_id)
            payer_id = mapping.identifier(organization, self._settings.payer_id_system) or next(
                (str(item["value"]) for item in organization.get("identifier", []) if item.get("value")), ""
            )
            payer_name = payer_name or str(organization.get("name", ""))
        subscriber = await self._subscriber(resource, patient)
        plan = mapping.coverage_class(resource, "plan")
        group = mapping.coverage_class(resource, "group")
        relationship = next((code for _, code in mapping.codes(resource.get("relationship"))), "self")
        period = resource.get("period", {})
        try:
            # Coverage without a period start has been on file since it was last written.
            starts_on = mapping.parse_date(
                period.get("start") or resource.get("meta", {}).get("lastUpdated"), self._zone
            )
            ends_on = mapping.parse_date(period["end"], self._zone) if period.get("end") else None
            subscriber_born = date.fromisoformat(subscriber.get("birthDate", ""))
        except ValueError:
            raise mapping.Unusable(resource, "period start or subscriber birth date") from None
        return Coverage(
            id=str(resource["id"]),
            patient_id=str(patient["id"]),
            rank=rank,
            payer_id=payer_id,
            payer_name=payer_name,
            plan_name=str((plan or {}).get("name") or (plan or {}).get("value") or ""),
            member_id=mapping.member_id(resource),
            group_number=str(group["value"]) if group and group.get("value") else None,
            subscriber_name=" ".join(part for part in mapping.person_name(subscriber) if part),
            subscriber_birth_date=subscriber_born,
            relationship=relationship,
            starts_on=starts_on,
            ends_on=ends_on,
        )

    async def _subscriber(self, coverage: Resource, patient: Resource) -> Resource:
        reference = coverage.get("subscriber")
        text = reference.get("reference", "") if isinstance(reference, dict) else ""
        if not text or text == f"Patient/{patient['id']}":
            return patient
        if text.startswith("#"):
            contained = {str(item.get("id")): item for item in coverage.get("contained", [])}
            if isinstance(found := contained.get(text[1:]), dict):
                return found
            raise mapping.Unusable(coverage, "subscriber (the contained resource is missing)")
        for kind in ("Patient", "RelatedPerson"):
            if (found := mapping.reference_id(reference, kind)) is not None:
                return await self._fhir.read(kind, found)
        raise mapping.Unusable(coverage, "subscriber")

    async def _active_coverages(self, patient_id: str) -> list[Resource]:
        return await self._fhir.search("Coverage", [("beneficiary", f"Patient/{patient_id}"), ("status", "active")])

    async def list_coverages(self, patient_id: str) -> Sequence[Coverage]:
        patient, resources = await asyncio.gather(
            self._read("Patient", patient_id, "patient"), self._active_coverages(patient_id)
        )
        names: dict[str, str] = {}
        found = [coverage for resource in resources if (coverage := await self._coverage(resource, patient, names))]
        rank_order = {rank: index for index, rank in enumerate(CoverageRank)}
        return sorted(found, key=lambda coverage: (rank_order[coverage.rank], coverage.starts_on, coverage.id))

    async def _owned_coverage(self, coverage_id: str, patient_id: str) -> Resource:
        resource = await self._read("Coverage", coverage_id, "coverage")
        if mapping.reference_id(resource.get("beneficiary"), "Patient") != patient_id:
            raise NotFound("coverage", coverage_id)
        return resource

    async def _retire_same_rank(self, kept: Resource, patient_id: str) -> None:
        """A patient holds one coverage per rank: one added or moved there retires the others."""
        rank = mapping.coverage_rank(kept)
        for other in await self._active_coverages(patient_id):
            if other["id"] != kept["id"] and mapping.coverage_rank(other) == rank:
                try:
                    await self._fhir.update({**other, "status": "cancelled"})
                except (Conflict, NotFound):
                    # Someone else changed or removed it meanwhile; their change stands.
                    continue

    async def write_coverage(self, change: CoverageChange, idempotency_key: str) -> Coverage | None:
        if change.remove:
            if not change.coverage_id:
                raise Refused("invalid_coverage", "Choose the coverage to remove.")
            try:
                await self._owned_coverage(change.coverage_id, change.patient_id)
            except NotFound:
                # Already removed (by this key's first call, or before): removing is done.
                return None
            await self._fhir.delete("Coverage", change.coverage_id)
            return None
        if change.subscriber_birth_date is None or not (
            change.payer_id and change.member_id and change.subscriber_name
        ):
            raise Refused("invalid_coverage", "Enter the insurer, member ID and the subscriber's name and birth date.")
        patient = await self._read("Patient", change.patient_id, "patient")
        body = mapping.coverage_resource(
            change, payer_id_system=self._settings.payer_id_system, key_identifier=self._key_identifier(idempotency_key)
        )
        try:
            if change.coverage_id:
                existing = await self._owned_coverage(change.coverage_id, change.patient_id)
                body |= {"id": existing["id"], "meta": {"versionId": existing.get("meta", {}).get("versionId")}}
                stored = await self._fhir.update(body)
            else:
                stored = await self._fhir.create(body, if_none_exist=self._key_condition(idempotency_key))
        except Rejected as error:
            log.info("fhir: coverage refused by the EHR (%s)", ",".join(error.issue_codes) or error.status)
            raise Refused(
                "invalid_coverage", "Your insurer's details were not accepted. Check them and try again."
            ) from None
        await self._retire_same_rank(stored, change.patient_id)
        return await self._coverage(stored, patient, {})

    # --- scheduling ---

    async def read_scheduling_catalog(self) -> SchedulingCatalog:
        services, places, roles = await asyncio.gather(
            self._fhir.search("HealthcareService", [("active", "true")]),
            self._fhir.search("Location", [("status", "active")]),
            self._fhir.search("PractitionerRole", [("active", "true")]),
        )
        online = self._settings.online_visit_types
        visit_types = tuple(
            mapping.visit_type(
                service,
                online=not online or str(service["id"]) in online,
                default_minutes=self._settings.default_visit_minutes,
                currency=self._settings.currency,
            )
            for service in sorted(services, key=lambda service: str(service.get("name", "")))
        )
        locations = tuple(
            mapping.location(place) for place in sorted(places, key=lambda place: str(place.get("name", "")))
        )
        known_types = {visit_type.id for visit_type in visit_types}
        known_places = {place.id for place in locations}
        # One provider per Practitioner, gathering the places and visit types of all their roles.
        merged: dict[str, dict[str, Any]] = {}
        names: dict[str, str] = {}
        for role in roles:
            practitioner_id = mapping.reference_id(role.get("practitioner"), "Practitioner")
            if practitioner_id is None:
                continue
            entry = merged.setdefault(
                practitioner_id,
                {
                    "name": await self._display(role.get("practitioner"), names),
                    "specialty": "",
                    "places": [],
                    "types": [],
                },
            )
            entry["specialty"] = entry["specialty"] or next(
                (text for concept in role.get("specialty", []) if (text := mapping.concept_text(concept))), ""
            )
            entry["places"] += [
                found
                for ref in role.get("location", [])
                if (found := mapping.reference_id(ref, "Location")) in known_places
            ]
            entry["types"] += [
                found
                for ref in role.get("healthcareService", [])
                if (found := mapping.reference_id(ref, "HealthcareService")) in known_types
            ]
        providers = tuple(
            Provider(
                id=practitioner_id,
                name=entry["name"],
                specialty=entry["specialty"],
                location_ids=tuple(dict.fromkeys(entry["places"])),
                visit_type_ids=tuple(dict.fromkeys(entry["types"])),
            )
            for practitioner_id, entry in sorted(merged.items(), key=lambda item: item[1]["name"])
        )
        return SchedulingCatalog(visit_types=visit_types, locations=locations, providers=providers)

    async def list_appointments(self, patient_id: str) -> Sequence[Appointment]:
        _, resources = await asyncio.gather(
            self._read("Patient", patient_id, "patient"),
            self._fhir.search("Appointment", [("patient", f"Patient/{patient_id}")]),
        )
        found = [
            mapping.appointment(resource) for resource in resources if resource.get("start") and resource.get("end")
        ]
        return sorted(found, key=lambda appointment: (appointment.starts_at, appointment.id))

    async def find_slots(self, query: SlotQuery) -> Sequence[Slot]:
        actors = [("actor", f"HealthcareService/{query.visit_type_id}"), ("active", "true")]
        if query.provider_id:
            actors.append(("actor", f"Practitioner/{query.provider_id}"))
        if query.location_id:
            actors.append(("actor", f"Location/{query.location_id}"))
        schedules = {str(schedule["id"]): schedule for schedule in await self._fhir.search("Schedule", actors)}
        if not schedules:
            return []
        starts, ends = mapping.day_bounds(query.day, self._zone)
        ids = sorted(schedules)
        pages = await asyncio.gather(
            *(
                self._fhir.search(
                    "Slot",
                    [
                        (
                            "schedule",
                            ",".join(f"Schedule/{schedule_id}" for schedule_id in ids[start : start + _ID_CHUNK]),
                        ),
                        ("status", "free"),
                        ("start", f"ge{starts.isoformat()}"),
                        ("start", f"lt{ends.isoformat()}"),
                        ("_sort", "start"),
                    ],
                )
                for start in range(0, len(ids), _ID_CHUNK)
            )
        )
        found = []
        for resource in (resource for page in pages for resource in page):
            schedule = schedules.get(mapping.reference_id(resource.get("schedule"), "Schedule") or "")
            if schedule is not None and resource.get("status") == "free":
                found.append(mapping.slot(resource, mapping.schedule_actors(schedule)))
        return sorted(found, key=lambda slot: (slot.starts_at, slot.id))

    def _held_by(self, slot: Resource, key: str | None) -> bool:
        held = mapping.identifier(slot, self._settings.idempotency_system)
        return held == key

    async def _hold_slot(self, slot_id: str, key: str) -> Resource:
        """Mark the slot busy under ``key``; ``Refused("slot_taken")`` when it is not free."""
        slot = await self._read("Slot", slot_id, "slot")
        for _ in range(_CONFLICT_RETRIES):
            if self._held_by(slot, key):
                return slot
            if slot.get("status") != "free":
                raise Refused("slot_taken", _SLOT_TAKEN)
            held = {**slot, "status": "busy", "identifier": [*slot.get("identifier", []), self._key_identifier(key)]}
            try:
                return await self._fhir.update(held)
            except Conflict:
                # Someone updated the slot since we read it: most likely a booking that won the race.
                slot = await self._read("Slot", slot_id, "slot")
        raise Refused("slot_taken", _SLOT_TAKEN)

    async def _release_slot(self, slot_id: str, key: str | None) -> None:
        """Free the slot if it is held under ``key``; a slot held by another booking stays as it is."""
        for _ in range(_CONFLICT_RETRIES):
            try:
                slot = await self._fhir.read("Slot", slot_id)
            except NotFound:
                return
            if slot.get("status") != "busy" or not self._held_by(slot, key):
                return
            others = [
                item for item in slot.get("identifier", []) if item.get("system") != self._settings.idempotency_system
            ]
            freed = {key_: value for key_, value in slot.items() if key_ != "identifier"} | {"status": "free"}
            if others:
                freed["identifier"] = others
            try:
                await self._fhir.update(freed)
                return
            except Conflict:
                continue
        raise Unavailable("fhir: the slot kept changing while it was being freed")

    async def book(self, patient_id: str, slot_id: str, idempotency_key: str) -> Appointment:
        key_condition = [("identifier", f"{self._settings.idempotency_system}|{idempotency_key}")]
        booked = await self._fhir.search("Appointment", key_condition)
        if booked:
            return mapping.appointment(booked[0])
        await self._read("Patient", patient_id, "patient")
        slot = await self._hold_slot(slot_id, idempotency_key)
        schedule_id = mapping.reference_id(slot.get("schedule"), "Schedule")
        try:
            if schedule_id is None:
                raise mapping.Unusable(slot, "schedule")
            actors = mapping.schedule_actors(await self._fhir.read("Schedule", schedule_id))
            service = await self._fhir.read("HealthcareService", actors.visit_type_id) if actors.visit_type_id else {}
            participants = [
                {"actor": {"reference": f"Patient/{patient_id}"}, "required": "required", "status": "accepted"}
            ]
            for kind, actor_id in (
                ("Practitioner", actors.provider_id),
                ("Location", actors.location_id),
                ("HealthcareService", actors.visit_type_id),
            ):
                if actor_id:
                    participants.append({"actor": {"reference": f"{kind}/{actor_id}"}, "status": "accepted"})
            body: Resource = {
                "resourceType": "Appointment",
                "identifier": [self._key_identifier(idempotency_key)],
                "status": "booked",
                "start": slot["start"],
                "end": slot["end"],
                "slot": [{"reference": f"Slot/{slot_id}"}],
                "created": self._now().date().isoformat(),
                "participant": participants,
            }
            if service.get("extraDetails"):
                body["patientInstruction"] = service["extraDetails"]
            appointment = await self._fhir.create(body, if_none_exist=self._key_condition(idempotency_key))
        except (Rejected, NotFound, mapping.Unusable):
            # The appointment surely was not made: give the slot back. After a timeout it may have
            # been, so the slot stays held for this key and a retry with the key completes the booking.
            await self._release_slot(slot_id, idempotency_key)
            raise
        log.info("fhir: appointment booked")
        return mapping.appointment(appointment)

    async def cancel(self, appointment_id: str, reason: str, idempotency_key: str) -> Appointment:
        # Cancelling is idempotent by state: a cancelled appointment stays cancelled, whatever the key.
        resource = await self._read("Appointment", appointment_id, "appointment")
        for _ in range(_CONFLICT_RETRIES):
            if resource.get("status") in {"cancelled", "entered-in-error"}:
                break
            cancelled = {**resource, "status": "cancelled", "cancelationReason": {"text": reason}}
            try:
                resource = await self._fhir.update(cancelled)
                break
            except Conflict:
                resource = await self._read("Appointment", appointment_id, "appointment")
        else:
            raise Unavailable("fhir: the appointment kept changing while it was being cancelled")
        key = mapping.identifier(resource, self._settings.idempotency_system)
        for reference in resource.get("slot", []):
            if (slot_id := mapping.reference_id(reference, "Slot")) is not None:
                await self._release_slot(slot_id, key)
        return mapping.appointment(resource)

    # --- payments ---

    async def post_payment(self, posting: PaymentPosting, idempotency_key: str) -> PostingReceipt:
        request: dict[str, str]
        recipient: object
        if posting.statement_id is not None:
            invoice = await self._read("Invoice", posting.statement_id, "statement")
            if mapping.reference_id(invoice.get("subject"), "Patient") != posting.patient_id:
                raise Refused("wrong_statement", "That statement belongs to another patient.")
            currency = next(
                (
                    invoice[name]["currency"]
                    for name in ("totalGross", "totalNet")
                    if invoice.get(name, {}).get("currency")
                ),
                self._settings.currency,
            )
            if currency != posting.amount.currency:
                raise Refused("wrong_currency", f"Payments on this statement are in {currency}.")
            request = {"reference": f"Invoice/{invoice['id']}"}
            recipient = invoice.get("issuer")
            if recipient is None and (account_id := mapping.reference_id(invoice.get("account"), "Account")):
                recipient = (await self._fhir.read("Account", account_id)).get("owner")
        else:
            condition = f"{self._settings.account_system}|{posting.account_number}"
            accounts = await self._fhir.search("Account", [("identifier", condition)])
            if not accounts:
                raise NotFound("account", posting.account_number)
            request = {"reference": f"Account/{accounts[0]['id']}"}
            recipient = accounts[0].get("owner")
        if not isinstance(recipient, dict):
            raise Unavailable("fhir: no Organization to receive the payment (Invoice.issuer or Account.owner)")
        paid_on = posting.paid_at.astimezone(self._zone).date().isoformat()
        amount = mapping.fhir_money(posting.amount)
        key_identifier = self._key_identifier(idempotency_key)
        condition = self._key_condition(idempotency_key)
        reconciliation = await self._fhir.create(
            {
                "resourceType": "PaymentReconciliation",
                "identifier": [key_identifier],
                "status": "active",
                "created": posting.paid_at.isoformat(),
                "paymentDate": paid_on,
                "paymentAmount": amount,
                "paymentIdentifier": {"system": mapping.GATEWAY_REFERENCE_SYSTEM, "value": posting.gateway_reference},
                "outcome": "complete",
                "disposition": f"Patient payment through Carefront ({posting.method})",
                "detail": [
                    {
                        "type": {
                            "coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/payment-type", "code": "payment"}
                            ]
                        },
                        "request": request,
                        "submitter": {"reference": f"Patient/{posting.patient_id}"},
                        "date": paid_on,
                        "amount": amount,
                    }
                ],
            },
            if_none_exist=condition,
        )
        notice = await self._fhir.create(
            {
                "resourceType": "PaymentNotice",
                "identifier": [key_identifier],
                "status": "active",
                "request": request,
                "created": posting.paid_at.isoformat(),
                "payment": {"reference": f"PaymentReconciliation/{reconciliation['id']}"},
                "paymentDate": paid_on,
                "recipient": recipient,
                "amount": amount,
            },
            if_none_exist=condition,
        )
        log.info("fhir: payment posted")
        try:
            posted_at = mapping.parse_instant(notice.get("created"))
        except ValueError:
            raise mapping.Unusable(notice, "created") from None
        return PostingReceipt(reference=str(notice["id"]), posted_at=posted_at)


async def _nothing() -> None:
    """An awaitable of None, for a gather() slot with nothing to fetch."""
    return None
