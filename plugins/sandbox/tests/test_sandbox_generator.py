"""The generated hospital: deterministic, balanced to the cent, scaled by --size, installed atomically."""

from __future__ import annotations

import re
import sqlite3
import threading
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest
from carefront_sandbox import cli, codes
from carefront_sandbox.ehr import SandboxEHR
from carefront_sandbox.generator import PERSONA_STATEMENTS, generate, install_database
from carefront_sandbox.identifiers import STATEMENT_CODE_ALPHABET
from carefront_sandbox.personas import demo_personas
from carefront_sdk.testing import statement_problems

TODAY = date(2025, 3, 3)
ZONE = "America/Chicago"


def _dump(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return list(db.iterdump())


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with closing(sqlite3.connect(path)) as db:
        return db.execute(sql).fetchall()


@pytest.fixture(scope="module")
def hospital(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("generated") / "seed7.sqlite3"
    generate(path, seed=7, size=300, today=TODAY, time_zone=ZONE)
    return path


def test_the_same_seed_gives_the_same_hospital(hospital: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.sqlite3"
    generate(again, seed=7, size=300, today=TODAY, time_zone=ZONE)
    assert _dump(again) == _dump(hospital)


def test_another_seed_gives_another_hospital(hospital: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite3"
    generate(other, seed=8, size=300, today=TODAY, time_zone=ZONE)
    names = "SELECT given_name, family_name, birth_date, mrn FROM patients ORDER BY id"
    assert _rows(other, names) != _rows(hospital, names)
    codes_sql = "SELECT statement_code FROM statements ORDER BY id"
    assert set(_rows(other, codes_sql)).isdisjoint(_rows(hospital, codes_sql))


def test_size_is_the_number_of_patients_and_has_a_minimum(hospital: Path, tmp_path: Path) -> None:
    assert _rows(hospital, "SELECT count(*) FROM patients") == [(300,)]
    with pytest.raises(ValueError, match="at least 50"):
        generate(tmp_path / "tiny.sqlite3", seed=7, size=49, today=TODAY, time_zone=ZONE)


def test_every_line_balances_like_a_remittance(hospital: Path) -> None:
    lines = _rows(hospital, "SELECT id, charged, insurance_paid, patient_owes, adjustments FROM charge_lines")
    assert len(lines) > 10_000
    for line_id, charged, paid, owes, packed in lines:
        parts = [part.split("|") for part in str(packed).split(";") if part]
        contractual = sum(int(amount) for group, _, amount, _ in parts if group != "PR")
        patient = sum(int(amount) for group, _, amount, _ in parts if group == "PR")
        assert owes == charged - paid - contractual, line_id  # type: ignore[operator]
        assert min(charged, paid, owes, contractual) >= 0, line_id  # type: ignore[type-var]
        # What the patient owes is explained by PR adjustments, except on a self-pay line.
        assert patient in (owes, 0), line_id


def test_every_statement_adds_up_to_its_lines_and_payments(hospital: Path) -> None:
    mismatched = _rows(
        hospital,
        """
        SELECT s.id FROM statements s
        JOIN (SELECT statement_id, sum(charged) charged, sum(insurance_paid) paid, sum(patient_owes) owes,
                     sum(charged - insurance_paid - patient_owes) adjusted
              FROM charge_lines GROUP BY statement_id) l ON l.statement_id = s.id
        LEFT JOIN (SELECT statement_id, sum(amount) paid FROM patient_payments GROUP BY statement_id) p
               ON p.statement_id = s.id
        WHERE s.total_charged != l.charged OR s.insurance_paid != l.paid OR s.adjustments != l.adjusted
           OR s.patient_owes != l.owes OR s.patient_paid != coalesce(p.paid, 0)
           OR s.patient_paid > s.patient_owes
        """,
    )
    assert mismatched == []
    assert _rows(
        hospital, "SELECT count(*) FROM statements WHERE id NOT IN (SELECT statement_id FROM charge_lines)"
    ) == [(0,)]


async def test_every_statement_reads_back_balanced(ehr: SandboxEHR) -> None:
    problems = []
    for number in range(1, 60):
        for summary in await ehr.list_statements(f"pt-{number}"):
            problems += statement_problems(await ehr.read_statement(summary.id))
    assert problems == []


async def test_the_long_inpatient_stay_has_over_200_lines(ehr: SandboxEHR) -> None:
    statement = await ehr.read_statement(f"st-{PERSONA_STATEMENTS['inpatient'] + 1}")
    assert len(statement.lines) >= 200
    (stay,) = statement.visits
    assert stay.kind == "Inpatient stay"
    assert stay.ended_on is not None
    assert (stay.ended_on - stay.started_on).days == 16
    assert {line.code_system for line in statement.lines} == {"CPT", "HCPCS", "REV"}
    assert statement.summary.balance.amount > 0


def test_codes_are_real_and_described(hospital: Path) -> None:
    used = _rows(
        hospital, "SELECT DISTINCT c.code, c.code_system FROM charge_lines l JOIN service_codes c ON c.id = l.code_id"
    )
    assert len(used) >= 60
    shapes = {"CPT": r"\d{5}", "HCPCS": r"[A-V]\d{4}", "REV": r"0\d{3}"}
    for code, system in used:
        assert re.fullmatch(shapes[str(system)], str(code)), (code, system)
    reasons = {row[0] for row in _rows(hospital, "SELECT adjustments FROM charge_lines WHERE adjustments != ''")}
    found = {part.split("|")[1] for packed in reasons for part in str(packed).split(";")}
    assert {"1", "2", "3", "45", "96", "97", "204", "27", "253"} <= found


def test_contacts_are_fictional(hospital: Path) -> None:
    for email, phone in _rows(hospital, "SELECT email, phone FROM patients"):
        assert email is None or str(email).endswith("@example.org")
        assert phone is None or re.fullmatch(r"\+1\d{3}55501\d{2}", str(phone))
    for (email,) in _rows(hospital, "SELECT email FROM related_persons"):
        assert email is None or str(email).endswith("@example.org")


def test_statement_codes_are_unique_and_unambiguous(hospital: Path) -> None:
    codes_found = [str(row[0]) for row in _rows(hospital, "SELECT statement_code FROM statements")]
    assert len(set(codes_found)) == len(codes_found)
    assert all(set(code) <= set(STATEMENT_CODE_ALPHABET) and len(code) == 8 for code in codes_found)


def test_minors_have_a_guardian(hospital: Path) -> None:
    unguarded = _rows(
        hospital,
        "SELECT id FROM patients WHERE birth_date > '2008-03-03' AND id NOT IN "
        "(SELECT patient_id FROM related_persons WHERE access = 'guardian')",
    )
    assert unguarded == []
    assert _rows(hospital, "SELECT count(*) FROM patients WHERE birth_date > '2008-03-03'")[0][0] > 20  # type: ignore[operator]


def test_member_ids_fit_their_payers(hospital: Path) -> None:
    for payer_id, payer_name, member_id in _rows(hospital, "SELECT payer_id, payer_name, member_id FROM coverages"):
        payer = codes.find_payer(str(payer_id), str(payer_name))
        assert payer is not None, payer_name
        assert codes.member_id_is_valid(payer, str(member_id)), member_id


def test_personas_are_in_the_file(hospital: Path) -> None:
    for persona in demo_personas(7):
        if persona.patient_id is None:
            assert persona.email.endswith("@staff.example.org")
            continue
        key = int(persona.patient_id.removeprefix("pt-"))
        (mrn,) = _rows(hospital, f"SELECT mrn FROM patients WHERE id = {key}")[0]
        assert mrn == persona.mrn
        owner = _rows(hospital, f"SELECT patient_id FROM statements WHERE statement_code = '{persona.statement_code}'")
        assert owner == [(key,)]


def test_generation_speed_at_size_2000(tmp_path: Path, record_property: pytest.RecordProperty) -> None:
    stats = generate(tmp_path / "speed.sqlite3", seed=1, size=2000, today=TODAY, time_zone=ZONE)
    record_property("rows_per_second", round(stats.rows_per_second))
    print(f"\nsize 2000: {stats.rows:,} rows, {stats.charge_lines:,} charge lines, {stats.rows_per_second:,.0f} rows/s")
    assert stats.patients == 2000
    # About 50 charge lines a patient, so 100,000 patients give about five million.
    assert 40 <= stats.charge_lines / stats.patients <= 60
    assert stats.rows_per_second > 20_000


def test_two_installs_at_once_leave_one_file(tmp_path: Path) -> None:
    path = tmp_path / "race" / "sandbox-7-60.sqlite3"
    results: list[object] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(install_database(path, seed=7, size=60, today=TODAY, time_zone=ZONE))
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(result is not None for result in results) >= 1
    assert [entry.name for entry in path.parent.iterdir()] == [path.name]
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert install_database(path, seed=7, size=60, today=TODAY, time_zone=ZONE) is None


def test_cli_generates_and_reports_rows_per_second(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.sqlite3"
    assert cli.main(["generate", "--seed", "3", "--size", "50", "--out", str(out), "--today", "2025-03-03"]) == 0
    assert "rows/s" in capsys.readouterr().out
    assert _rows(out, "SELECT count(*) FROM patients") == [(50,)]
    with pytest.raises(SystemExit):
        cli.main(["generate", "--seed", "3", "--size", "50", "--out", str(out)])
