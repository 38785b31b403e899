"""The SDK's contract suites, run against the four sandbox adapters."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from datetime import date

import pytest
from carefront_sandbox.base import DEMO_WEBHOOK_SECRET
from carefront_sandbox.ehr import SandboxEHR
from carefront_sandbox.gateway import SandboxGateway, sign_webhook
from carefront_sandbox.notifier import SandboxNotifier
from carefront_sandbox.personas import demo_personas
from carefront_sdk.models import (
    Channel,
    ClaimStatusRequest,
    EligibilityRequest,
    Money,
    PatientQuery,
    SlotQuery,
)
from carefront_sdk.testing import (
    ClearinghouseContract,
    ClearinghouseSample,
    EHRContract,
    EHRSample,
    FakeClock,
    GatewayContract,
    GatewaySample,
    NotifierContract,
    NotifierSample,
)


class TestSandboxEHR(EHRContract):
    @pytest.fixture
    def ehr_sample(self) -> EHRSample:
        balance = demo_personas(7)[0]
        assert balance.birth_date is not None
        return EHRSample(
            match=PatientQuery(balance.given_name, balance.family_name, balance.birth_date, mrn=balance.mrn),
            patient_id="pt-1",
            statement_id="st-2",
            slot_query=SlotQuery("vt-follow-up", date(2025, 3, 4)),
        )


class TestSandboxClearinghouse(ClearinghouseContract):
    @pytest.fixture
    async def clearinghouse_sample(self, ehr: SandboxEHR) -> ClearinghouseSample:
        patient = await ehr.read_patient("pt-1")
        (coverage,) = await ehr.list_coverages("pt-1")
        unknown = dataclasses.replace(coverage, member_id="NOT-A-MEMBER")
        return ClearinghouseSample(
            eligible=EligibilityRequest(coverage, patient),
            unknown_member=EligibilityRequest(unknown, patient),
            claim=ClaimStatusRequest(patient, coverage, "CLM-1", date(2025, 1, 6), Money(19_000)),
        )


class TestSandboxGateway(GatewayContract):
    @pytest.fixture
    async def gateway_sample(
        self, gateway: SandboxGateway, clock: FakeClock, save_card: Callable[[str, str], Awaitable[str]]
    ) -> GatewaySample:
        saved, declining = [await save_card("cus_contract", number) for number in ("4242", "0341")]
        with closing(sqlite3.connect(gateway._store.path)) as db:
            (body,) = db.execute("SELECT body FROM webhook_events ORDER BY created_at LIMIT 1").fetchone()
        return GatewaySample(
            customer_reference="cus_contract",
            saved_method=saved,
            declining_method=declining,
            webhook_body=body.encode(),
            sign=lambda payload: {
                "Sandbox-Signature": sign_webhook(payload, DEMO_WEBHOOK_SECRET, int(clock().timestamp()))
            },
        )


class TestSandboxNotifier(NotifierContract):
    @pytest.fixture
    def notifier_sample(self, notifier: SandboxNotifier) -> NotifierSample:
        return NotifierSample({Channel.EMAIL: "pat@example.org", Channel.SMS: "+13125550123"})
