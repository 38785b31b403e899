"""The adapter fed malformed answers: whatever the clearinghouse sends back, the portal gets a result
or ``Unavailable`` (the SDK's tier for "the other system could not answer"), and a decoding failure
names the segment, its position and the element; never any other exception.

test_x12_core.py fuzzes the parsers with random and byte-level damage; here the damage keeps the
interchange readable (segments and elements intact, values wrong, segments dropped, repeated or
moved) so the decoders' meaning-level code runs, through the adapter, as in production.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Coroutine
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from carefront_sdk.errors import Unavailable
from carefront_sdk.models import ClaimStatusRequest, Coverage, CoverageRank, EligibilityRequest, Money, Patient
from carefront_sdk.testing import FakeClock, make_adapter_context
from carefront_x12.adapter import X12Clearinghouse
from carefront_x12.core import X12Error, tokenize
from carefront_x12.remittance import parse_remittances
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent / "fixtures"
ANSWERS_271 = sorted((FIXTURES).glob("*271*.x12"))
ANSWERS_277 = sorted((FIXTURES).glob("*277*.x12"))
REMITTANCES = sorted((FIXTURES).glob("*835*.x12"))
# What a decoding failure says: segment, position and element, never the value (it may be PHI).
LOCATED = re.compile(r"^x12: the clearinghouse's 27[17] is unusable at segment \S+ #\S+ element \S+$")
# Values a payer's system gets wrong: empty, too long, not numbers, not dates, odd codes, delimiters of other dialects.
HOSTILE = st.sampled_from(
    ["", " ", "0", "-1", "1E400", "NaN", "Infinity", "99999999999999999999.999", "12.345", "2025-03-03",
     "20250230", "RD8", "D8", "20250101-20241231", "ZZ", "1", "2", "3", "22", "23", "A", "\u00e9", "x" * 90,
     "W100200300", "1467857193", "20131031", "0001", "^", "|"]
)  # fmt: skip
ALEX = Patient("pat-1", "MRN1001", "Alex", "Rivera", date(1985, 4, 12), "ACC1001")
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
CONFIG = {
    "endpoint_url": "https://clearinghouse.invalid/x12",  # never reached: the transport below answers
    "auth": "basic",
    "username": "fuzz",
    "password": "fuzz",
    "token_url": "",
    "client_id": "",
    "client_secret": "",
    "scope": "",
    "submitter_id": "CAREFRONT",
    "receiver_id": "CLEARHOUSE",
    "provider_npi": "1467857193",
    "provider_name": "Riverside Clinic",
    "payer_ids": [],
    "usage": "T",
    "timeout": 1.0,
    "trace_company_id": "",
}


class Answering:
    """A transport whose answer is a damaged interchange, with our own trace echoed where it is asked for."""

    def __init__(self, answer: str) -> None:
        self.answer = answer

    async def exchange(self, payload: str) -> str:
        ours = re.search(r"TRN\*1\*([^*~]+)", payload)
        return self.answer.replace("{trace}", ours.group(1) if ours else "")

    async def health(self) -> object:
        raise AssertionError("not asked")


@st.composite
def damaged(draw: st.DrawFn, samples: list[Path], trace_after: str) -> str:
    """A sample with 1-4 element- or segment-level changes; its delimiters and envelope stay readable."""
    text = draw(st.sampled_from(samples)).read_text().strip()
    segments = tokenize(text)
    delimiters = segments[0].delimiters
    rows = [[segment.id, *segment.elements] for segment in segments]
    for row in rows:  # echo the adapter's trace number, so the answer is read to the end
        if row[0] == "TRN" and len(row) > 2 and row[1] == trace_after:
            row[2] = "{trace}"
    body = list(range(3, len(rows) - 3))  # leave ISA, GS, ST and SE, GE, IEA alone
    for _ in range(draw(st.integers(1, 4))):
        if not body:
            break
        at = draw(st.sampled_from(body))
        if not rows[at]:
            continue
        change = draw(st.sampled_from(["value", "value", "drop", "repeat", "move", "truncate"]))
        if change == "value" and len(rows[at]) > 1:
            element = draw(st.integers(1, len(rows[at]) - 1))
            rows[at][element] = draw(HOSTILE)
        elif change == "truncate":
            rows[at] = rows[at][: draw(st.integers(1, len(rows[at])))]
        elif change == "drop":
            rows[at] = []
        elif change == "repeat":
            rows[at + 1 : at + 1] = [list(rows[at])]
            body = list(range(3, len(rows) - 3))
        else:
            target = draw(st.sampled_from(body))
            rows[at], rows[target] = rows[target], rows[at]
    kept = [row for row in rows if row]
    separator = delimiters.element
    return "".join(separator.join(row) + delimiters.segment for row in kept)


def adapter(answer: str, tmp_path: Path) -> X12Clearinghouse:
    context = make_adapter_context(tmp_path / "x12", config=CONFIG, clock=FakeClock())
    return X12Clearinghouse(context, transport=Answering(answer))


def _result_or_located(answer: Coroutine[Any, Any, object]) -> None:
    """Run the adapter call: a result, or Unavailable whose decoding failure says where it is."""
    try:
        asyncio.run(answer)
    except Unavailable as error:
        detail = error.detail
    else:
        return
    assert "unusable" not in detail or LOCATED.match(detail), detail


FUZZ = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@FUZZ
@given(answer=damaged(ANSWERS_271, trace_after="2"))
def test_a_damaged_271_is_a_result_or_a_located_unavailable(
    answer: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    clearinghouse = adapter(answer, tmp_path_factory.mktemp("x12"))
    request = EligibilityRequest(COVERAGE, ALEX)
    _result_or_located(clearinghouse.check_eligibility(request))


@FUZZ
@given(answer=damaged(ANSWERS_277, trace_after="2"))
def test_a_damaged_277_is_a_result_or_a_located_unavailable(
    answer: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    clearinghouse = adapter(answer, tmp_path_factory.mktemp("x12"))
    request = ClaimStatusRequest(ALEX, COVERAGE, "CLAIM1", date(2024, 6, 1), Money(12_500, "USD"))
    _result_or_located(clearinghouse.claim_status(request))


@FUZZ
@given(remittance=damaged(REMITTANCES, trace_after="1"))
def test_a_damaged_835_is_remittances_or_a_located_x12_error(remittance: str) -> None:
    for lenient in (False, True):
        try:
            parse_remittances(remittance.replace("{trace}", "TRACE1"), check_envelopes=not lenient)
        except X12Error as error:
            located = error.segment_position is not None or bool(error.segment_id)
            message = str(error)
        else:
            continue
        assert located, message


@settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(answer=damaged(ANSWERS_271, trace_after="2"))
def test_the_damage_keeps_interchanges_readable(answer: str) -> None:
    # The strategy above is only useful if it leaves the envelope intact: its output must tokenize.
    assert tokenize(answer.replace("{trace}", "T1"))[0].id == "ISA"


def test_the_fixtures_themselves_decode(tmp_path: Path) -> None:
    # Without damage the 271 is read to the end: the fuzz above starts from answers that work.
    trace = next(r for r in tokenize((FIXTURES / "lfh-271-subscriber.x12").read_text().strip()) if r.id == "TRN")
    answer = (FIXTURES / "lfh-271-subscriber.x12").read_text().replace(trace.element(2), "{trace}")
    result = asyncio.run(adapter(answer, tmp_path).check_eligibility(EligibilityRequest(replace(COVERAGE), ALEX)))
    assert result.payer_name == "PAYER C"  # read from the 271, not taken from the request
