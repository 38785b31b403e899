"""The x12 adapter against a real local payer: the SDK contract, then what each answer turns into."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import pytest
from carefront_sdk.adapters import Port
from carefront_sdk.errors import ConfigError, Refused, Unavailable
from carefront_sdk.models import (
    ClaimStatusRequest,
    Coverage,
    CoverageRank,
    EligibilityBenefit,
    EligibilityRequest,
    Money,
    Patient,
)
from carefront_sdk.testing import (
    ClearinghouseContract,
    ClearinghouseSample,
    FakeClock,
    adapter_from_plugin,
    make_adapter_context,
)
from carefront_x12 import hooks
from carefront_x12.adapter import X12Clearinghouse
from carefront_x12.core import parse_interchange

ALEX = Patient("pat-1", "MRN1001", "Alex", "Rivera", date(1985, 4, 12), "ACC1001")
SAM = Patient("pat-2", "MRN1002", "Sam", "Rivera", date(2015, 9, 1), "ACC1001")
COVERAGE = Coverage(
    id="cov-1",
    patient_id="pat-1",
    rank=CoverageRank.PRIMARY,
    payer_id="60054",
    payer_name="Aetna",
    plan_name="Choice POS II",
    member_id="W100200300",
    group_number="GRP-4410",
    subscriber_name="Alex Rivera",
    subscriber_birth_date=date(1985, 4, 12),
    relationship="self",
    starts_on=date(2024, 1, 1),
)


def build(payer: Any, tmp_path: Any, clock: FakeClock | None = None, **overrides: object) -> X12Clearinghouse:
    context = make_adapter_context(tmp_path / "x12", config=payer.config(**overrides), clock=clock or FakeClock())
    adapter = adapter_from_plugin(hooks, Port.CLEARINGHOUSE, "x12", context)
    assert isinstance(adapter, X12Clearinghouse)
    return adapter


def eligibility(member_id: str = "W100200300", **changes: Any) -> EligibilityRequest:
    return EligibilityRequest(dataclasses.replace(COVERAGE, member_id=member_id, **changes), ALEX)


def contract_sample() -> ClearinghouseSample:
    return ClearinghouseSample(
        eligible=eligibility(),
        unknown_member=eligibility("X000000001"),
        claim=ClaimStatusRequest(ALEX, COVERAGE, "CLM-1001", date(2025, 1, 14), Money(18000)),
    )


class TestX12Clearinghouse(ClearinghouseContract):
    """The SDK's contract suite, over real HTTP and real X12 both ways."""

    @pytest.fixture
    def clearinghouse(self, payer: Any, tmp_path: Any, carefront_clock: FakeClock) -> X12Clearinghouse:
        return build(payer, tmp_path, carefront_clock)

    @pytest.fixture
    def clearinghouse_sample(self) -> ClearinghouseSample:
        return contract_sample()


class TestX12ClearinghouseOverOAuth2(ClearinghouseContract):
    """The same contract with OAuth 2.0 client credentials instead of basic auth."""

    @pytest.fixture
    def clearinghouse(self, payer: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> X12Clearinghouse:
        monkeypatch.setenv("X12_TEST_CLIENT_SECRET", payer.client_secret)
        return build(
            payer,
            tmp_path,
            auth="oauth2",
            username="",
            password="",
            token_url=payer.token_url,
            client_id=payer.client_id,
            client_secret={"$env": "X12_TEST_CLIENT_SECRET"},
        )

    @pytest.fixture
    def clearinghouse_sample(self) -> ClearinghouseSample:
        return contract_sample()


async def test_active_coverage_is_read_in_the_portals_words(payer: Any, tmp_path: Any) -> None:
    result = await build(payer, tmp_path).check_eligibility(eligibility())
    assert result.active
    assert result.rejection is None
    assert result.plan_name == "CHOICE POS II"
    assert result.payer_name == "AETNA"
    assert set(result.benefits) == {
        EligibilityBenefit("copay", "98", True, amount=Money(2500), period="visit"),
        EligibilityBenefit(
            "deductible", "30", True, amount=Money(150000), remaining=Money(40000), period="calendar_year"
        ),
        EligibilityBenefit("coinsurance", "30", True, percent=20),
        EligibilityBenefit(
            "out_of_pocket", "30", True, amount=Money(600000), remaining=Money(410000), period="calendar_year"
        ),
    }


async def test_the_270_sent_is_well_formed_and_carries_the_request(payer: Any, tmp_path: Any) -> None:
    result = await build(payer, tmp_path).check_eligibility(eligibility())
    (sent,) = payer.received
    interchange = parse_interchange(sent)
    (transaction,) = interchange.transactions("270")
    ids = [segment.id for segment in transaction.segments]
    assert ids == ["BHT", "HL", "NM1", "HL", "NM1", "HL", "TRN", "NM1", "REF", "DMG", "DTP", "EQ"]
    by_id = {segment.id: segment for segment in transaction.segments}
    assert by_id["TRN"].element(2) == result.trace_number
    assert by_id["DTP"].elements == ("291", "D8", "20250303")
    assert payer.form_fields[0]["PayloadType"] == "X12_270_Request_005010X279A1"
    assert payer.form_fields[0]["SenderID"] == "CAREFRONT"
    assert interchange.usage == "T"


async def test_a_dependent_is_asked_about_in_loop_2000d(payer: Any, tmp_path: Any) -> None:
    coverage = dataclasses.replace(COVERAGE, relationship="child", patient_id="pat-2")
    result = await build(payer, tmp_path).check_eligibility(EligibilityRequest(coverage, SAM))
    assert result.active
    (transaction,) = parse_interchange(payer.received[0]).transactions("270")
    levels = [segment.element(3) for segment in transaction.segments if segment.id == "HL"]
    assert levels == ["20", "21", "22", "23"]
    names = [segment.elements[:4] for segment in transaction.segments if segment.id == "NM1"]
    assert ("IL", "1", "", "") in names, "the subscriber is named by member id alone"
    assert ("03", "1", "RIVERA", "SAM") in names
    assert any(segment.id == "INS" and segment.elements == ("N", "19") for segment in transaction.segments)


async def test_a_rejection_says_what_to_fix(payer: Any, tmp_path: Any) -> None:
    result = await build(payer, tmp_path).check_eligibility(eligibility("X000000001"))
    assert not result.active
    assert result.rejection is not None
    assert result.rejection.code == "72"
    assert result.rejection.follow_up == "C"
    assert "member ID" in result.rejection.message
    assert "Correct the details" in result.rejection.message


async def test_inactive_coverage_is_not_active(payer: Any, tmp_path: Any) -> None:
    result = await build(payer, tmp_path).check_eligibility(eligibility("W100200000"))
    assert not result.active
    assert result.rejection is None


@pytest.mark.parametrize(
    ("member_id", "detail"),
    [
        ("SLOW", "did not answer within"),
        ("GARBAGE", "unusable at segment"),
        ("WRONGTRACE", "answers another inquiry"),
        ("BUSY", "HTTP 503"),
    ],
)
async def test_failures_on_the_way_are_unavailable(payer: Any, tmp_path: Any, member_id: str, detail: str) -> None:
    adapter = build(payer, tmp_path, timeout=1.0)
    with pytest.raises(Unavailable) as caught:
        await adapter.check_eligibility(eligibility(member_id))
    assert detail in caught.value.detail
    assert member_id not in caught.value.detail, "the detail is logged: it must not quote the payload"
    if member_id == "BUSY":
        assert caught.value.retry_after == 7


async def test_a_member_id_x12_cannot_carry_is_refused(payer: Any, tmp_path: Any) -> None:
    with pytest.raises(Refused) as caught:
        await build(payer, tmp_path).check_eligibility(eligibility("W1002~00300"))
    assert caught.value.code == "invalid_coverage"
    assert payer.received == []


async def test_wrong_credentials_are_unavailable_not_a_crash(payer: Any, tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("X12_TEST_PASSWORD", "wrong")
    with pytest.raises(Unavailable, match="refused the credentials"):
        await build(payer, tmp_path).check_eligibility(eligibility())


async def test_a_revoked_token_is_renewed_once(payer: Any, tmp_path: Any) -> None:
    adapter = build(
        payer,
        tmp_path,
        auth="oauth2",
        token_url=payer.token_url,
        client_id=payer.client_id,
        client_secret=payer.client_secret,
    )
    await adapter.check_eligibility(eligibility())
    await adapter.check_eligibility(eligibility())
    assert len(payer.tokens) == 1, "the token is reused while it lives"
    payer.revoked.update(payer.tokens)
    assert (await adapter.check_eligibility(eligibility())).active
    assert len(payer.tokens) == 2, "a 401 fetched one new token and the request went through"


async def test_a_plain_x12_answer_is_read_too(payer: Any, tmp_path: Any) -> None:
    payer.answer_raw = True
    assert (await build(payer, tmp_path).check_eligibility(eligibility())).active


async def test_claim_status_paid_and_not_found(payer: Any, tmp_path: Any) -> None:
    adapter = build(payer, tmp_path)
    request = ClaimStatusRequest(ALEX, COVERAGE, "CLM-1001", date(2025, 1, 14), Money(18000))
    (paid,) = await adapter.claim_status(request)
    assert (paid.category_code, paid.status_code, paid.paid) == ("F1", "65", Money(9000))
    assert paid.message == "Finalized: the claim has been paid."
    (unknown,) = await adapter.claim_status(dataclasses.replace(request, claim_id="CLM-9"))
    assert (unknown.category_code, unknown.status_code, unknown.paid) == ("A4", "35", None)
    (transaction,) = parse_interchange(payer.received[0]).transactions("276")
    by_id = {segment.id: segment for segment in transaction.segments}
    assert by_id["AMT"].elements == ("T3", "180.00")
    assert by_id["TRN"].elements == ("1", "CLM-1001")
    assert payer.form_fields[0]["PayloadType"] == "X12_276_Request_005010X212"


async def test_health_reaches_the_endpoint(payer: Any, tmp_path: Any) -> None:
    health = await build(payer, tmp_path).health()
    assert health.ok
    assert "HTTP 405" in health.detail


async def test_health_of_an_endpoint_that_is_gone(payer: Any, tmp_path: Any) -> None:
    adapter = build(payer, tmp_path, endpoint_url="http://127.0.0.1:9/x12")
    assert not (await adapter.health()).ok


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"provider_npi": "1234567890"}, "provider_npi"),
        ({"payer_ids": ["60054"]}, "payer_ids"),
        ({"auth": "oauth2"}, "token_url"),
        ({"username": ""}, "username"),
        ({"endpoint_url": "ftp://payer"}, "endpoint_url"),
    ],
)
def test_bad_configuration_stops_start_up(payer: Any, tmp_path: Any, overrides: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build(payer, tmp_path, **overrides)
    assert caught.value.field == field
