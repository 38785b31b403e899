"""The sandbox EHR: patients, statements, coverage on file and appointments, from the sandbox file."""

from __future__ import annotations

import secrets
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from carefront_sdk.adapters import AdapterContext
from carefront_sdk.errors import NotFound, Refused
from carefront_sdk.models import (
    Adjustment,
    Appointment,
    AppointmentStatus,
    ChargeLine,
    Coverage,
    CoverageChange,
    CoverageRank,
    Location,
    Money,
    Patient,
    PatientQuery,
    PatientSearch,
    PaymentPosting,
    PostingReceipt,
    Provider,
    ProxyAccess,
    RelatedPerson,
    SchedulingCatalog,
    Slot,
    SlotQuery,
    Statement,
    StatementSummary,
    Visit,
    VisitType,
)

from carefront_sandbox import schedule
from carefront_sandbox.base import SandboxAdapter
from carefront_sandbox.codes import find_payer
from carefront_sandbox.identifiers import format_id, name_key, normalize_code, parse_id

__all__ = ["SandboxEHR", "make_ehr"]

_PATIENT = "id, mrn, given_name, family_name, birth_date, account_number, email, phone, language, address"
_SUMMARY = (
    "id, patient_id, account_number, statement_code, issued_on, due_on, total_charged, insurance_paid, "
    "adjustments, patient_owes, patient_paid, currency"
)
_COVERAGE = (
    "id, patient_id, rank, payer_id, payer_name, plan_name, member_id, group_number, subscriber_name, "
    "subscriber_birth_date, relationship, starts_on, ends_on"
)
_APPOINTMENT = (
    "a.id, a.patient_id, a.status, a.starts_at, a.ends_at, a.visit_type_id, p.code, a.location_id, a.slot_id "
    "FROM appointments a JOIN providers p ON p.id = a.provider_id"
)
_RELATIONSHIPS = frozenset({"self", "spouse", "child", "other"})


def _patient(row: Any) -> Patient:
    return Patient(
        id=format_id("pt", row[0]),
        mrn=row[1],
        given_name=row[2],
        family_name=row[3],
        birth_date=date.fromisoformat(row[4]),
        account_number=row[5],
        email=row[6],
        phone=row[7],
        language=row[8],
        address=row[9],
    )


def _summary(row: Any) -> StatementSummary:
    currency, owes, paid = row[11], row[9], row[10]
    return StatementSummary(
        id=format_id("st", row[0]),
        patient_id=format_id("pt", row[1]),
        account_number=row[2],
        statement_code=row[3],
        issued_on=date.fromisoformat(row[4]),
        due_on=date.fromisoformat(row[5]),
        total_charged=Money(row[6], currency),
        insurance_paid=Money(row[7], currency),
        adjustments=Money(row[8], currency),
        patient_paid=Money(paid, currency),
        balance=Money(owes - paid, currency),
    )


def _adjustments(packed: str, currency: str) -> tuple[Adjustment, ...]:
    """Unpack ``"CO|45|1234|N381;PR|1|500|"`` (see the ``charge_lines`` table)."""
    if not packed:
        return ()
    adjustments = []
    for part in packed.split(";"):
        group, reason, amount, remarks = part.split("|")
        adjustments.append(
            Adjustment(Money(int(amount), currency), group, reason, tuple(filter(None, remarks.split(","))))
        )
    return tuple(adjustments)


def _coverage(row: Any) -> Coverage:
    return Coverage(
        id=format_id("cov", row[0]),
        patient_id=format_id("pt", row[1]),
        rank=CoverageRank(row[2]),
        payer_id=row[3],
        payer_name=row[4],
        plan_name=row[5],
        member_id=row[6],
        group_number=row[7],
        subscriber_name=row[8],
        subscriber_birth_date=date.fromisoformat(row[9]),
        relationship=row[10],
        starts_on=date.fromisoformat(row[11]),
        ends_on=None if row[12] is None else date.fromisoformat(row[12]),
    )


@dataclass(frozen=True, slots=True)
class _Clinician:
    key: int
    model: Provider
    day_off: int


@dataclass(frozen=True, slots=True)
class _Catalog:
    model: SchedulingCatalog
    visit_types: dict[str, VisitType]
    clinicians: dict[str, _Clinician]
    """By provider id (the clinician's code)."""
    locations: frozenset[str]


def _load_catalog(db: sqlite3.Connection) -> _Catalog:
    visit_types = [
        VisitType(
            row[0],
            row[1],
            row[2],
            bool(row[3]),
            row[4],
            row[5],
            typical_charge=Money(schedule.FEES[row[0]][0]) if row[0] in schedule.FEES else None,
            service_type=schedule.FEES[row[0]][1] if row[0] in schedule.FEES else "30",
        )
        for row in db.execute(
            "SELECT id, name, duration_minutes, bookable_online, instructions, call_phone FROM visit_types "
            "ORDER BY position"
        )
    ]
    locations = [Location(*row) for row in db.execute("SELECT id, name, address, phone FROM locations ORDER BY id")]
    clinicians = [
        _Clinician(row[0], Provider(row[1], row[2], row[3], tuple(row[4].split(",")), tuple(row[5].split(","))), row[6])
        for row in db.execute(
            "SELECT id, code, name, specialty, location_ids, visit_type_ids, day_off FROM providers "
            "WHERE in_catalog = 1 ORDER BY id"
        )
    ]
    return _Catalog(
        model=SchedulingCatalog(tuple(visit_types), tuple(locations), tuple(c.model for c in clinicians)),
        visit_types={visit_type.id: visit_type for visit_type in visit_types},
        clinicians={clinician.model.id: clinician for clinician in clinicians},
        locations=frozenset(location.id for location in locations),
    )


def _key(prefix: str, what: str, ident: str) -> int:
    key = parse_id(prefix, ident)
    if key is None:
        raise NotFound(what, ident)
    return key


def _require_patient(db: sqlite3.Connection, patient_key: int, patient_id: str) -> None:
    if db.execute("SELECT 1 FROM patients WHERE id = ?", (patient_key,)).fetchone() is None:
        raise NotFound("patient", patient_id)


_Itemized = tuple[tuple[Visit, ...], tuple[ChargeLine, ...]]
_ITEMIZED_CACHED = 512
"""Statements whose visits and lines an EHR adapter keeps in memory (most recently read)."""


def _read_itemized(db: sqlite3.Connection, statement_key: int, currency: str) -> _Itemized:
    visits = tuple(
        Visit(
            id=format_id("vi", visit[0]),
            started_on=date.fromisoformat(visit[1]),
            ended_on=date.fromisoformat(visit[2]) if visit[2] else None,
            kind=visit[3],
            department=visit[4],
            provider=visit[5],
        )
        for visit in db.execute(
            "SELECT v.id, v.started_on, v.ended_on, v.kind, d.name, p.name FROM visits v "
            "JOIN departments d ON d.id = v.department_id JOIN providers p ON p.id = v.provider_id "
            "WHERE v.statement_id = ? ORDER BY v.started_on, v.id",
            (statement_key,),
        )
    )
    lines = tuple(
        ChargeLine(
            id=format_id("ln", line[0]),
            visit_id=format_id("vi", line[1]),
            service_date=date.fromisoformat(line[2]),
            code=line[3],
            code_system=line[4],
            description=line[5],
            provider=line[6],
            quantity=line[7],
            charged=Money(line[8], currency),
            insurance_paid=Money(line[9], currency),
            adjustments=_adjustments(line[11], currency),
            patient_owes=Money(line[10], currency),
        )
        for line in db.execute(
            "SELECT l.id, l.visit_id, l.service_date, c.code, c.code_system, c.description, p.name, "
            "l.quantity, l.charged, l.insurance_paid, l.patient_owes, l.adjustments FROM charge_lines l "
            "JOIN service_codes c ON c.id = l.code_id JOIN providers p ON p.id = l.provider_id "
            "WHERE l.statement_id = ? ORDER BY l.service_date, l.id",
            (statement_key,),
        )
    )
    return visits, lines


class SandboxEHR(SandboxAdapter):
    """The EHR port over the sandbox file."""

    def __init__(self, context: AdapterContext) -> None:
        super().__init__(context, "ehr")
        self._catalog: _Catalog | None = None
        # Visits and lines never change once generated (only a statement's payments do), so a
        # statement read again is one small query: a 200-line bill costs what a one-line bill does.
        self._itemized: OrderedDict[int, _Itemized] = OrderedDict()

    async def _scheduling(self) -> _Catalog:
        # The catalog never changes after generation: read it once per adapter.
        if self._catalog is None:
            self._catalog = await self._store.read(_load_catalog)
        return self._catalog

    def _appointment(self, row: Any, catalog: _Catalog) -> Appointment:
        visit_type = catalog.visit_types.get(row[5])
        return Appointment(
            id=format_id("ap", row[0]),
            patient_id=format_id("pt", row[1]),
            status=AppointmentStatus(row[2]),
            starts_at=datetime.fromisoformat(row[3]).astimezone(self._zone),
            ends_at=datetime.fromisoformat(row[4]).astimezone(self._zone),
            visit_type_id=row[5],
            provider_id=row[6],
            location_id=row[7],
            slot_id=None if row[8] is None else row[8],
            instructions=visit_type.instructions if visit_type else "",
        )

    # Patients ---------------------------------------------------------------------------------------

    async def match_patient(self, query: PatientQuery) -> Sequence[Patient]:
        """Patients with this name (any case or spacing) and birth date whose every given identifier fits."""
        await self._pause()
        code = normalize_code(query.statement_code) if query.statement_code else None

        def work(db: sqlite3.Connection) -> list[Patient]:
            rows = db.execute(
                f"SELECT {_PATIENT} FROM patients WHERE birth_date = ? AND name_key = ?",  # noqa: S608
                (query.birth_date.isoformat(), name_key(query.given_name, query.family_name)),
            ).fetchall()
            matches = []
            for row in rows:
                if query.mrn is not None and query.mrn.strip() != row[1]:
                    continue
                if query.account_number is not None and query.account_number.strip() != row[5]:
                    continue
                if (
                    code is not None
                    and not db.execute(
                        "SELECT 1 FROM statements WHERE patient_id = ? AND statement_code = ?", (row[0], code)
                    ).fetchone()
                ):
                    continue
                matches.append(_patient(row))
            return matches

        return await self._store.read(work)

    async def search_patients(self, query: PatientSearch) -> Sequence[Patient]:
        """Patients matching every field given; names compare as ``name_key`` does (no case, no extra spaces)."""
        await self._pause()
        conditions: list[str] = []
        values: list[str | int] = []
        given, family = query.name_parts
        if family:
            family_key = " ".join(family.split()).casefold()
            if given:
                conditions.append("name_key = ?")
                values.append(f"{family_key}|{' '.join(given.split()).casefold()}")
            else:
                conditions.append("substr(name_key, 1, ?) = ?")
                values += [len(family_key) + 1, f"{family_key}|"]
        if query.birth_date:
            conditions.append("birth_date = ?")
            values.append(query.birth_date.isoformat())
        if query.mrn:
            conditions.append("mrn = ?")
            values.append(query.mrn.strip())
        if query.account_number:
            conditions.append("account_number = ?")
            values.append(query.account_number.strip())
        if query.phone:
            conditions.append("substr(phone, -10) = ?")
            values.append(query.phone_digits[-10:])
        if query.statement_code:
            conditions.append("id IN (SELECT patient_id FROM statements WHERE statement_code = ?)")
            values.append(normalize_code(query.statement_code))
        sql = (
            f"SELECT {_PATIENT} FROM patients WHERE {' AND '.join(conditions)} "  # noqa: S608 (fixed fragments; values bound)
            "ORDER BY family_name, given_name, id LIMIT ?"
        )
        rows = await self._store.read(lambda db: db.execute(sql, (*values, query.limit)).fetchall())
        return [_patient(row) for row in rows]

    async def read_patient(self, patient_id: str) -> Patient:
        await self._pause()
        key = _key("pt", "patient", patient_id)
        row = await self._store.read(
            lambda db: db.execute(f"SELECT {_PATIENT} FROM patients WHERE id = ?", (key,)).fetchone()  # noqa: S608
        )
        if row is None:
            raise NotFound("patient", patient_id)
        return _patient(row)

    async def list_related_persons(self, patient_id: str) -> Sequence[RelatedPerson]:
        await self._pause()
        key = _key("pt", "patient", patient_id)

        def work(db: sqlite3.Connection) -> list[RelatedPerson]:
            _require_patient(db, key, patient_id)
            return [
                RelatedPerson(
                    id=format_id("rp", row[0]),
                    patient_id=patient_id,
                    given_name=row[1],
                    family_name=row[2],
                    relationship=row[3],
                    access=ProxyAccess(row[4]),
                    birth_date=date.fromisoformat(row[5]) if row[5] else None,
                    email=row[6],
                    patient_id_of_proxy=format_id("pt", row[7]) if row[7] is not None else None,
                )
                for row in db.execute(
                    "SELECT id, given_name, family_name, relationship, access, birth_date, email, proxy_patient_id "
                    "FROM related_persons WHERE patient_id = ? ORDER BY id",
                    (key,),
                )
            ]

        return await self._store.read(work)

    # Statements -------------------------------------------------------------------------------------

    async def list_statements(self, patient_id: str) -> Sequence[StatementSummary]:
        await self._pause()
        key = _key("pt", "patient", patient_id)

        def work(db: sqlite3.Connection) -> list[StatementSummary]:
            _require_patient(db, key, patient_id)
            rows = db.execute(
                f"SELECT {_SUMMARY} FROM statements WHERE patient_id = ? ORDER BY issued_on DESC, id DESC",  # noqa: S608
                (key,),
            ).fetchall()
            return [_summary(row) for row in rows]

        return await self._store.read(work)

    async def read_statement(self, statement_id: str) -> Statement:
        await self._pause()
        key = _key("st", "statement", statement_id)
        cached = self._itemized.get(key)

        def work(db: sqlite3.Connection) -> tuple[Any, _Itemized]:
            row = db.execute(f"SELECT {_SUMMARY} FROM statements WHERE id = ?", (key,)).fetchone()  # noqa: S608
            if row is None:
                raise NotFound("statement", statement_id)
            return row, cached or _read_itemized(db, key, row[11])

        row, itemized = await self._store.read(work)
        if cached is None:
            self._itemized[key] = itemized
            if len(self._itemized) > _ITEMIZED_CACHED:
                self._itemized.popitem(last=False)
        else:
            self._itemized.move_to_end(key)
        return Statement(_summary(row), *itemized)

    async def find_statement_by_code(self, statement_code: str) -> StatementSummary:
        await self._pause()
        code = normalize_code(statement_code)
        row = await self._store.read(
            lambda db: db.execute(
                f"SELECT {_SUMMARY} FROM statements WHERE statement_code = ?",  # noqa: S608
                (code,),
            ).fetchone()
        )
        if row is None:
            raise NotFound("statement", statement_code)
        return _summary(row)

    # Coverage ---------------------------------------------------------------------------------------

    async def list_coverages(self, patient_id: str) -> Sequence[Coverage]:
        await self._pause()
        key = _key("pt", "patient", patient_id)

        def work(db: sqlite3.Connection) -> list[Coverage]:
            _require_patient(db, key, patient_id)
            rows = db.execute(
                f"SELECT {_COVERAGE} FROM coverages WHERE patient_id = ? AND removed = 0 ORDER BY rank, id",  # noqa: S608
                (key,),
            ).fetchall()
            return [_coverage(row) for row in rows]

        return await self._store.read(work)

    async def write_coverage(self, change: CoverageChange, idempotency_key: str) -> Coverage | None:
        """Add (a coverage already at that rank leaves it), replace in place, or remove a coverage."""
        await self._pause()
        patient_key = _key("pt", "patient", change.patient_id)
        coverage_key = _key("cov", "coverage", change.coverage_id) if change.coverage_id is not None else None
        member_id = "".join(change.member_id.split()).replace("-", "").upper()
        payer_name = " ".join(change.payer_name.split())
        subscriber = " ".join(change.subscriber_name.split())
        if change.remove and coverage_key is None:
            raise Refused("invalid_coverage", "Choose the coverage to remove.")
        if not change.remove and not (payer_name and member_id and subscriber and change.subscriber_birth_date):
            raise Refused(
                "invalid_coverage", "Enter the insurance company, member ID, subscriber name and subscriber birth date."
            )
        if not change.remove and change.relationship not in _RELATIONSHIPS:
            raise Refused(
                "invalid_coverage", "The relationship to the subscriber must be self, spouse, child or other."
            )
        today = self._today().isoformat()

        def work(db: sqlite3.Connection) -> Coverage | None:
            _require_patient(db, patient_key, change.patient_id)
            if (
                coverage_key is not None
                and not db.execute(
                    "SELECT 1 FROM coverages WHERE id = ? AND patient_id = ? AND removed = 0",
                    (coverage_key, patient_key),
                ).fetchone()
            ):
                raise NotFound("coverage", str(change.coverage_id))
            if change.remove:
                db.execute("UPDATE coverages SET removed = 1, ends_on = ? WHERE id = ?", (today, coverage_key))
                return None
            payer = find_payer(change.payer_id, payer_name)
            payer_id = change.payer_id.strip() or (payer.payer_id if payer else "OTHER")
            assert change.subscriber_birth_date is not None  # checked before the transaction
            values = (
                change.rank.value,
                payer_id,
                payer.name if payer else payer_name,
                change.plan_name.strip(),
                member_id,
                (change.group_number or "").strip() or None,
                subscriber,
                change.subscriber_birth_date.isoformat(),
                change.relationship,
                (change.starts_on or self._today()).isoformat(),
            )
            # One coverage per rank: the one there before leaves it.
            db.execute(
                "UPDATE coverages SET removed = 1, ends_on = ? WHERE patient_id = ? AND rank = ? AND removed = 0 "
                "AND id != ?",
                (today, patient_key, change.rank.value, coverage_key or 0),
            )
            if coverage_key is None:
                cursor = db.execute(
                    "INSERT INTO coverages (patient_id, rank, payer_id, payer_name, plan_name, member_id, group_number, "
                    "subscriber_name, subscriber_birth_date, relationship, starts_on) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (patient_key, *values),
                )
                stored_key = int(cursor.lastrowid or 0)
            else:
                db.execute(
                    "UPDATE coverages SET rank = ?, payer_id = ?, payer_name = ?, plan_name = ?, member_id = ?, "
                    "group_number = ?, subscriber_name = ?, subscriber_birth_date = ?, relationship = ?, "
                    "starts_on = ? WHERE id = ?",
                    (*values, coverage_key),
                )
                stored_key = coverage_key
            row = db.execute(f"SELECT {_COVERAGE} FROM coverages WHERE id = ?", (stored_key,)).fetchone()  # noqa: S608
            return _coverage(row)

        result: Coverage | None = await self._store.once(
            "ehr.write_coverage", idempotency_key, change, Coverage | None, work
        )
        return result

    # Scheduling -------------------------------------------------------------------------------------

    async def read_scheduling_catalog(self) -> SchedulingCatalog:
        await self._pause()
        return (await self._scheduling()).model

    async def list_appointments(self, patient_id: str) -> Sequence[Appointment]:
        """Past and upcoming appointments, earliest first."""
        await self._pause()
        key = _key("pt", "patient", patient_id)
        catalog = await self._scheduling()

        def work(db: sqlite3.Connection) -> list[Appointment]:
            _require_patient(db, key, patient_id)
            rows = db.execute(
                f"SELECT {_APPOINTMENT} WHERE a.patient_id = ? ORDER BY a.starts_at, a.id", (key,)
            ).fetchall()
            return [self._appointment(row, catalog) for row in rows]

        return await self._store.read(work)

    async def find_slots(self, query: SlotQuery) -> Sequence[Slot]:
        await self._pause()
        catalog = await self._scheduling()
        visit_type = catalog.visit_types.get(query.visit_type_id)
        if visit_type is None:
            raise NotFound("visit type", query.visit_type_id)
        if query.location_id is not None and query.location_id not in catalog.locations:
            raise NotFound("location", query.location_id)
        if query.provider_id is not None and query.provider_id not in catalog.clinicians:
            raise NotFound("provider", query.provider_id)
        day, today = query.day, self._today()
        if not visit_type.bookable_online or not today <= day < today + timedelta(days=schedule.BOOKING_WINDOW_DAYS):
            return []
        clinicians = [
            clinician
            for clinician in catalog.clinicians.values()
            if visit_type.id in clinician.model.visit_type_ids
            and query.provider_id in (None, clinician.model.id)
            and schedule.works_on(clinician.day_off, day)
            and query.location_id in (None, schedule.location_on(clinician.model.location_ids, day))
        ]
        if not clinicians:
            return []
        # Cell keys start with the ISO day, so the day's cells sort between it and the next day.
        first, after = day.isoformat(), (day + timedelta(days=1)).isoformat()
        marks = ",".join("?" * len(clinicians))
        held = await self._store.read(
            lambda db: set(
                db.execute(
                    f"SELECT provider_id, cell FROM slot_holds WHERE cell >= ? AND cell < ? AND provider_id IN ({marks})",  # noqa: S608
                    (first, after, *(clinician.key for clinician in clinicians)),
                )
            )
        )
        earliest = self._now() + schedule.MINIMUM_NOTICE
        minutes = visit_type.duration_minutes
        slots = []
        for clinician in clinicians:
            location = schedule.location_on(clinician.model.location_ids, day)
            for start in schedule.slot_starts(day, minutes):
                starts_at = start.replace(tzinfo=self._zone)
                if starts_at < earliest:
                    continue
                cells = schedule.cells_of(start, minutes) or []
                if any(
                    (clinician.key, schedule.cell_key(cell)) in held
                    or schedule.is_taken_outside(self._store.seed, clinician.model.id, cell)
                    for cell in cells
                ):
                    continue
                slots.append(
                    Slot(
                        id=schedule.slot_id(clinician.model.id, visit_type.id, start),
                        starts_at=starts_at,
                        ends_at=starts_at + timedelta(minutes=minutes),
                        provider_id=clinician.model.id,
                        location_id=location,
                        visit_type_id=visit_type.id,
                    )
                )
        slots.sort(key=lambda slot: (slot.starts_at, slot.provider_id))
        return slots

    async def book(self, patient_id: str, slot_id: str, idempotency_key: str) -> Appointment:
        """Hold the slot's cells for the patient; ``Refused("slot_taken")`` when someone holds one."""
        await self._pause()
        patient_key = _key("pt", "patient", patient_id)
        parsed = schedule.parse_slot_id(slot_id)
        catalog = await self._scheduling()
        clinician = catalog.clinicians.get(parsed[0]) if parsed else None
        visit_type = catalog.visit_types.get(parsed[1]) if parsed else None
        if (
            parsed is None
            or clinician is None
            or visit_type is None
            or visit_type.id not in clinician.model.visit_type_ids
        ):
            raise NotFound("slot", slot_id)
        if not visit_type.bookable_online:
            raise Refused(
                "not_bookable_online",
                f"{visit_type.name} cannot be booked online. Please call {visit_type.call_phone}.",
            )
        start = parsed[2]
        cells = schedule.cells_of(start, visit_type.duration_minutes)
        if cells is None or not schedule.works_on(clinician.day_off, start.date()):
            raise NotFound("slot", slot_id)
        starts_at = start.replace(tzinfo=self._zone)
        ends_at = starts_at + timedelta(minutes=visit_type.duration_minutes)
        location = schedule.location_on(clinician.model.location_ids, start.date())

        def work(db: sqlite3.Connection) -> Appointment:
            _require_patient(db, patient_key, patient_id)
            last_day = self._today() + timedelta(days=schedule.BOOKING_WINDOW_DAYS)
            if starts_at < self._now() + schedule.MINIMUM_NOTICE or start.date() >= last_day:
                raise Refused("slot_unavailable", "That time can no longer be booked. Please choose another.")
            if any(schedule.is_taken_outside(self._store.seed, clinician.model.id, cell) for cell in cells):
                raise Refused("slot_taken", "That time has just been taken. Please choose another.")
            cursor = db.execute(
                "INSERT INTO appointments (patient_id, status, starts_at, ends_at, visit_type_id, provider_id, "
                "location_id, slot_id) VALUES (?, 'booked', ?, ?, ?, ?, ?, ?)",
                (
                    patient_key,
                    starts_at.astimezone(UTC).isoformat(),
                    ends_at.astimezone(UTC).isoformat(),
                    visit_type.id,
                    clinician.key,
                    location,
                    slot_id,
                ),
            )
            appointment_key = int(cursor.lastrowid or 0)
            try:
                db.executemany(
                    "INSERT INTO slot_holds VALUES (?, ?, ?)",
                    [(clinician.key, schedule.cell_key(cell), appointment_key) for cell in cells],
                )
            except sqlite3.IntegrityError:
                raise Refused("slot_taken", "That time has just been taken. Please choose another.") from None
            return Appointment(
                id=format_id("ap", appointment_key),
                patient_id=patient_id,
                status=AppointmentStatus.BOOKED,
                starts_at=starts_at,
                ends_at=ends_at,
                visit_type_id=visit_type.id,
                provider_id=clinician.model.id,
                location_id=location,
                slot_id=slot_id,
                instructions=visit_type.instructions,
            )

        request = {"patient_id": patient_id, "slot_id": slot_id}
        appointment: Appointment = await self._store.once("ehr.book", idempotency_key, request, Appointment, work)
        return appointment

    async def cancel(self, appointment_id: str, reason: str, idempotency_key: str) -> Appointment:
        """Cancel an upcoming appointment and free its slot; a cancelled or past one is refused."""
        await self._pause()
        key = _key("ap", "appointment", appointment_id)
        catalog = await self._scheduling()

        def work(db: sqlite3.Connection) -> Appointment:
            row = db.execute(f"SELECT {_APPOINTMENT} WHERE a.id = ?", (key,)).fetchone()
            if row is None:
                raise NotFound("appointment", appointment_id)
            if row[2] == AppointmentStatus.CANCELLED:
                raise Refused("already_cancelled", "This appointment was already cancelled.")
            if row[2] != AppointmentStatus.BOOKED or datetime.fromisoformat(row[3]) <= self._now():
                raise Refused("not_cancellable", "This appointment has already taken place.")
            db.execute("UPDATE appointments SET status = 'cancelled', cancel_reason = ? WHERE id = ?", (reason, key))
            db.execute("DELETE FROM slot_holds WHERE appointment_id = ?", (key,))
            return self._appointment((*row[:2], AppointmentStatus.CANCELLED.value, *row[3:]), catalog)

        request = {"appointment_id": appointment_id, "reason": reason}
        appointment: Appointment = await self._store.once("ehr.cancel", idempotency_key, request, Appointment, work)
        return appointment

    # Payments ---------------------------------------------------------------------------------------

    async def post_payment(self, posting: PaymentPosting, idempotency_key: str) -> PostingReceipt:
        """Apply a payment to the given statement, or to the patient's oldest balances first.

        The same gateway payment is posted once, whatever key it arrives with; more than is owed is
        ``Refused("overpayment")``: no balance ever goes below zero.
        """
        await self._pause()
        patient_key = _key("pt", "patient", posting.patient_id)
        statement_key = _key("st", "statement", posting.statement_id) if posting.statement_id is not None else None
        if posting.amount.amount <= 0:
            raise Refused("invalid_amount", "A payment must be more than zero.")

        def work(db: sqlite3.Connection) -> PostingReceipt:
            patient = db.execute("SELECT account_number FROM patients WHERE id = ?", (patient_key,)).fetchone()
            if patient is None:
                raise NotFound("patient", posting.patient_id)
            if posting.account_number.strip() != patient[0]:
                raise Refused("account_mismatch", "The account number does not belong to this patient.")
            posted = db.execute(
                "SELECT reference, posted_at FROM postings WHERE gateway_reference = ?", (posting.gateway_reference,)
            ).fetchone()
            if posted is not None:
                return PostingReceipt(posted[0], datetime.fromisoformat(posted[1]))
            if statement_key is not None:
                statements = db.execute(
                    "SELECT id, patient_owes - patient_paid, currency FROM statements WHERE id = ? AND patient_id = ?",
                    (statement_key, patient_key),
                ).fetchall()
                if not statements:
                    raise NotFound("statement", str(posting.statement_id))
            else:
                statements = db.execute(
                    "SELECT id, patient_owes - patient_paid, currency FROM statements "
                    "WHERE patient_id = ? AND patient_owes > patient_paid ORDER BY issued_on, id",
                    (patient_key,),
                ).fetchall()
            if any(currency != posting.amount.currency for _, _, currency in statements):
                raise Refused("currency_mismatch", "The payment is not in the currency of the bill.")
            if posting.amount.amount > sum(balance for _, balance, _ in statements):
                raise Refused("overpayment", "The payment is more than the balance owed.")
            reference = f"rcpt-{secrets.token_hex(6)}"
            posted_at = self._now()
            paid_at = posting.paid_at.astimezone(UTC).isoformat()
            remaining = posting.amount.amount
            for statement, balance, _ in statements:
                applied = min(balance, remaining)
                if applied <= 0:
                    break
                db.execute(
                    "INSERT INTO patient_payments (statement_id, amount, paid_at, method, posting_reference) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (statement, applied, paid_at, posting.method, reference),
                )
                db.execute("UPDATE statements SET patient_paid = patient_paid + ? WHERE id = ?", (applied, statement))
                remaining -= applied
            db.execute(
                "INSERT INTO postings VALUES (?, ?, ?, ?, ?, ?)",
                (
                    reference,
                    patient_key,
                    posting.gateway_reference,
                    posting.amount.amount,
                    posting.amount.currency,
                    posted_at.isoformat(),
                ),
            )
            return PostingReceipt(reference, posted_at)

        receipt: PostingReceipt = await self._store.once(
            "ehr.post_payment", idempotency_key, posting, PostingReceipt, work
        )
        return receipt


def make_ehr(context: AdapterContext) -> SandboxEHR:
    """The adapter factory registered as the ``sandbox`` EHR."""
    return SandboxEHR(context)
