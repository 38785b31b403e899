"""Supervisors' reports match the rows they are computed from: payments put through the ledger's own
functions, eligibility answers, accounts, payment plans and statements read from the sandbox EHR. The
range of days is the hospital's, both ends included; each CSV has exactly the page's numbers; every
view and export is audited; only supervisors and administrators get in."""

from __future__ import annotations

import csv
import io
import secrets
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from carefront_sdk.models import Money, Payment, PaymentStatus

from portal.audit.tables import AuditEvent
from portal.billing.statements import forget_statements, statements_of
from portal.console.reports import aging, plans
from portal.console.reports.period import Period
from portal.coverage.tables import EligibilityCheck
from portal.payments import attempts, settlement
from portal.plans.tables import PaymentPlan, PlanChange, PlanInstallment
from tests.integration.console_support import as_patient, as_staff, patient_account, staff_account


def _at(day: date, clock_time: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock_time, zone).astimezone(UTC)


async def _paid(amount: int, method: str, payer: str, at: datetime, *, status: PaymentStatus = PaymentStatus.SUCCEEDED):
    """A payment put through the ledger as the pay flow does: the attempt, then the gateway's answer."""
    intent = attempts.Intent(f"pt-report-{secrets.token_hex(3)}", Money(amount), None, attempts.Payer(payer))
    begun = await attempts.begin(intent, f"report-test:{uuid.uuid4()}", now=at - timedelta(minutes=1))
    answer = Payment(
        f"pay_{secrets.token_hex(6)}", status, Money(amount), method=method, method_summary="Visa ending 4242"
    )
    await settlement.settle(begun.attempt, answer, now=at)


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


async def _audited(action: str, subject: str | None, since: date) -> list[dict]:
    rows = await AuditEvent.select().where(AuditEvent.action == action).output(load_json=True).run()
    return [row for row in rows if row["subject"] == subject and row["detail"].get("since") == since.isoformat()]


async def test_payments_by_day_and_method_keep_to_the_hospitals_days(portal, settings, clock, browser):
    zone = ZoneInfo(settings.hospital.time_zone)
    first, last = date(2041, 3, 9), date(2041, 3, 10)  # around the start of daylight saving time in Chicago
    clock.now = _at(last, time(18), zone)
    await _paid(12345, "card", "account", _at(first, time(0, 0, 10), zone))
    await _paid(1001, "ach", "guest", _at(first, time(23, 59, 50), zone))
    await _paid(5000, "card", "pay_link", _at(last, time(12), zone))
    await _paid(2500, "card", "plan", _at(last, time(13), zone))
    await _paid(777, "card", "account", _at(last, time(14), zone), status=PaymentStatus.FAILED)
    await _paid(900, "card", "account", _at(first, time(0), zone) - timedelta(seconds=10))
    await _paid(800, "wallet", "account", _at(last + timedelta(days=1), time(0, 0, 5), zone))
    supervisor = await staff_account(clock.now, role="supervisor")
    query = f"since={first}&until={last}"
    async with browser(portal) as client:
        await as_staff(portal, client, supervisor, clock.now)
        page = await client.get(f"/console/reports?{query}")
        by_day = await client.get(f"/console/reports/export.csv?table=payments-by-day&{query}")
        by_channel = await client.get(f"/console/reports/export.csv?table=payments-by-channel&{query}")
    assert page.status_code == 200
    assert 'role="img"' in page.text
    assert '<title id="chart-payments-by-day-title">' in page.text
    assert "$123.45" in page.text
    assert "$10.01" in page.text
    assert "$75.00" in page.text
    assert "$208.46" in page.text
    assert by_day.headers["content-type"].startswith("text/csv")
    assert "attachment" in by_day.headers["content-disposition"]
    assert _csv(by_day.text) == [
        ["day", "method", "payments", "collected", "collected_currency"],
        ["2041-03-09", "card", "1", "123.45", "USD"],
        ["2041-03-09", "ach", "1", "10.01", "USD"],
        ["2041-03-10", "card", "2", "75.00", "USD"],
    ]
    assert _csv(by_channel.text) == [
        ["channel", "payments", "collected", "collected_currency"],
        ["self_service", "2", "133.46", "USD"],
        ["staff_assisted", "1", "50.00", "USD"],
        ["plan", "1", "25.00", "USD"],
    ]
    assert len(await _audited("report.read", None, first)) == 1
    assert len(await _audited("report.export", "payments-by-day", first)) == 1
    assert len(await _audited("report.export", "payments-by-channel", first)) == 1


async def test_eligibility_outcomes_count_each_answer_by_aaa_code(portal, settings, clock, browser):
    zone = ZoneInfo(settings.hospital.time_zone)
    day = date(2042, 6, 1)
    clock.now = _at(day, time(20), zone)
    answers = [("active", None)] * 2 + [("inactive", None), ("rejected", "72"), ("rejected", "72"), ("rejected", "42")]
    for index, (outcome, code) in enumerate(answers):
        at = _at(day, time(8, index), zone)
        await EligibilityCheck.insert(
            EligibilityCheck(
                patient_id="pt-7", rank="primary", checked_at=at, outcome=outcome, rejection_code=code, result="{}"
            )
        ).run()
    outside = _at(day, time(0), zone) - timedelta(seconds=1)
    await EligibilityCheck.insert(
        EligibilityCheck(patient_id="pt-7", rank="primary", checked_at=outside, outcome="active", result="{}")
    ).run()
    administrator = await staff_account(clock.now, role="administrator")
    async with browser(portal) as client:
        await as_staff(portal, client, administrator, clock.now)
        page = await client.get(f"/console/reports?since={day}&until={day}")
        exported = await client.get(f"/console/reports/export.csv?table=eligibility&since={day}&until={day}")
    assert page.status_code == 200
    assert "Rejected (reason 72)" in page.text
    assert "The member ID was not recognised." in page.text
    assert _csv(exported.text) == [
        ["outcome", "reject_reason_code", "meaning", "checks"],
        ["active", "", "", "2"],
        ["inactive", "", "", "1"],
        ["rejected", "42", "The insurance company could not answer at that time.", "1"],
        ["rejected", "72", "The member ID was not recognised.", "2"],
    ]


async def test_adoption_counts_sign_ups_by_day_and_paperless_accounts(portal, settings, clock, browser):
    zone = ZoneInfo(settings.hospital.time_zone)
    first, last = date(2043, 11, 1), date(2043, 11, 3)
    clock.now = _at(last, time(12), zone)
    supervisor = await staff_account(clock.now, role="supervisor")
    async with browser(portal) as client:
        await as_staff(portal, client, supervisor, clock.now)
        before = _csv(
            (await client.get(f"/console/reports/export.csv?table=paperless&since={first}&until={last}")).text
        )
        for at, paperless in [
            (_at(first, time(0, 0, 1), zone), True),
            (_at(first, time(23, 59), zone), False),
            (_at(last, time(9), zone), False),
            (_at(first, time(0), zone) - timedelta(seconds=1), False),
        ]:
            await patient_account(f"pt-signup-{secrets.token_hex(4)}", at, paperless=paperless)
        await staff_account(_at(first, time(10), zone))
        sign_ups = await client.get(f"/console/reports/export.csv?table=sign-ups&since={first}&until={last}")
        after = _csv((await client.get(f"/console/reports/export.csv?table=paperless&since={first}&until={last}")).text)
    assert _csv(sign_ups.text) == [["day", "sign_ups"], ["2043-11-01", "2"], ["2043-11-02", "0"], ["2043-11-03", "1"]]
    assert after[0] == ["patient_accounts", "paperless", "paperless_percent"]
    assert int(after[1][0]) - int(before[1][0]) == 4
    assert int(after[1][1]) - int(before[1][1]) == 1


async def _plan(
    status: str, installments: list[tuple[str, int]], *, created: datetime, ended: datetime | None = None
) -> int:
    (plan,) = (
        await PaymentPlan.insert(
            PaymentPlan(
                public_id=uuid.uuid4(),
                creation_key=f"report-test:{uuid.uuid4()}",
                patient_id=f"pt-plan-{secrets.token_hex(4)}",
                account_number="100200300",
                holder_account_id=str(uuid.uuid4()),
                status=status,
                total=sum(amount for _, amount in installments),
                day_of_month=5,
                customer_reference="cf_test",
                agreement_version="1",
                created_at=created,
                ended_at=ended,
            )
        )
        .returning(PaymentPlan.id)
        .run()
    )
    for number, (state, amount) in enumerate(installments):
        await PlanInstallment.insert(
            PlanInstallment(
                public_id=uuid.uuid4(),
                plan=plan["id"],
                due_on=created.date() + timedelta(days=30 * number),
                amount=amount,
                status=state,
            )
        ).run()
    return plan["id"]


async def test_plans_by_standing_and_delinquency(settings, clock):
    zone = ZoneInfo(settings.hospital.time_zone)
    day = date(2044, 2, 10)
    clock.now = _at(day, time(12), zone)
    period = Period(day, day, zone)

    def numbers(report):
        return {row[0].code: (row[1], row[2], row[3].amount) for row in report.tables[0].figures.rows}

    before = numbers(await plans.report(period))
    created = _at(day, time(9), zone)
    await _plan("active", [("paid", 5000), ("scheduled", 5000), ("scheduled", 4999)], created=created)
    behind = await _plan("active", [("paid", 3000), ("missed", 3000), ("scheduled", 3000)], created=created)
    await _plan("paused", [("scheduled", 2500), ("scheduled", 2500)], created=created)
    await _plan("defaulted", [("missed", 1000), ("missed", 1000), ("cancelled", 1000)], created=created, ended=created)
    await _plan("defaulted", [("missed", 1000)], created=created, ended=created - timedelta(days=1))
    await PlanChange.insert(
        PlanChange(plan=behind, change="installment_missed", actor="system", occurred_at=created, detail="{}")
    ).run()
    report = await plans.report(period)
    after = numbers(report)
    moved = {code: tuple(a - b for a, b in zip(after[code], before[code], strict=True)) for code in after}
    assert moved == {
        "current": (1, 0, 9999),
        "behind": (1, 1, 6000),
        "paused": (1, 0, 5000),
        "defaulted": (1, 2, 3000),
    }
    assert report.facts["set_up"] >= 5
    assert report.facts["missed_in_period"] == 1


async def test_aging_buckets_the_balances_the_portal_has_read(portal, clock):
    host = portal.state["plugin_host"]
    for number in range(10, 45):
        patient_id = f"pt-{number}"
        listed = await host.ehr.list_statements(patient_id)
        if any(summary.balance.amount > 0 for summary in listed):
            break
    await forget_statements(patient_id, *(summary.id for summary in listed))
    today = date(2045, 1, 1)
    clock.now = datetime.combine(today, time(18), UTC)

    def buckets(report):
        return {row[0].code: (row[1], row[2].amount) for row in report.tables[0].figures.rows}

    before = buckets(aging.report(await aging.newest_copies(), today))
    await statements_of(host, patient_id, now=clock.now)
    after = buckets(aging.report(await aging.newest_copies(), today))
    expected = {code: [0, 0] for code, _, _ in aging.BUCKETS}
    for summary in listed:
        if summary.balance.amount > 0:
            expected[aging.bucket_of(summary.issued_on, today)][0] += 1
            expected[aging.bucket_of(summary.issued_on, today)][1] += summary.balance.amount
    assert {code: [after[code][0] - before[code][0], after[code][1] - before[code][1]] for code in after} == expected
    assert any(count for count, _ in expected.values())


def test_aging_buckets_count_days_since_the_statement_date():
    today = date(2030, 6, 30)
    assert [
        aging.bucket_of(today - timedelta(days=days), today) for days in (0, 30, 31, 60, 61, 90, 91, 120, 121, 900)
    ] == [
        "0-30",
        "0-30",
        "31-60",
        "31-60",
        "61-90",
        "61-90",
        "91-120",
        "91-120",
        "121+",
        "121+",
    ]


async def test_the_range_defaults_to_the_last_30_days_and_bad_days_are_refused(portal, settings, clock, browser):
    zone = ZoneInfo(settings.hospital.time_zone)
    supervisor = await staff_account(clock.now, role="supervisor")
    today = clock.now.astimezone(zone).date()
    async with browser(portal) as client:
        await as_staff(portal, client, supervisor, clock.now)
        default = await client.get("/console/reports")
        backwards = await client.get(f"/console/reports?since={today}&until={today - timedelta(days=1)}")
        unreadable = await client.get("/console/reports?since=yesterday")
        bad_export = await client.get("/console/reports/export.csv?table=aging&since=yesterday")
        unknown = await client.get("/console/reports/export.csv?table=everything")
    assert default.status_code == 200
    assert f'value="{today - timedelta(days=29)}"' in default.text
    assert f'value="{today}"' in default.text
    assert backwards.status_code == 422
    assert "The first day must not be after the last day." in backwards.text
    assert 'aria-invalid="true"' in backwards.text
    assert unreadable.status_code == 422
    assert 'value="yesterday"' in unreadable.text
    assert bad_export.status_code == 400
    assert unknown.status_code == 404


async def test_only_supervisors_and_administrators_see_reports(portal, clock, browser):
    representative = await staff_account(clock.now)
    patient = await patient_account("pt-46", clock.now)
    async with browser(portal) as client:
        await as_staff(portal, client, representative, clock.now)
        assert (await client.get("/console/reports")).status_code == 403
        assert (await client.get("/console/reports/export.csv?table=aging")).status_code == 403
    async with browser(portal) as client:
        await as_patient(portal, client, patient, clock.now)
        assert (await client.get("/console/reports")).status_code == 403
    async with browser(portal) as client:
        assert (await client.get("/console/reports")).status_code in {302, 303, 401}
