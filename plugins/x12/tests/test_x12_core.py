"""The X12 core: delimiters from ISA, envelopes built and checked, malformed input named precisely,
and a hypothesis fuzz proving that nothing but X12Error (or a result) ever comes out of the parsers."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from carefront_x12.claim_status import parse_277
from carefront_x12.core import (
    Composite,
    Delimiters,
    Envelope,
    Repeated,
    X12Error,
    build_interchange,
    parse_interchange,
    tokenize,
)
from carefront_x12.eligibility import parse_271
from carefront_x12.remittance import parse_835
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = sorted(path.read_text() for path in FIXTURES.glob("*.x12"))
SUBSCRIBER_271 = (FIXTURES / "lfh-271-subscriber.x12").read_text()
WHEN = datetime(2025, 3, 3, 15, 4, tzinfo=UTC)


def built(delimiters: Delimiters | None = None, sets: int = 1) -> str:
    body = [["BHT", "0022", "13", "REF1", "20250303", "1504"], ["EQ", Repeated("30", "98")]]
    return build_interchange(
        [body] * sets,
        functional_id="HS",
        version="005010X279A1",
        envelope=Envelope("SENDER", "RECEIVER", usage="P"),
        control_number=42,
        when=WHEN,
        delimiters=delimiters or Delimiters(),
    )


def test_delimiters_are_read_from_the_isa_not_assumed() -> None:
    text = built(Delimiters(element="|", component=">", segment="\n", repetition="!"))
    segments = tokenize(text)
    assert segments[0].delimiters == Delimiters(element="|", component=">", segment="\n", repetition="!")
    eq = next(segment for segment in segments if segment.id == "EQ")
    assert eq.repeats(1) == ("30", "98")


def test_the_isa_is_106_characters_and_fixed_width() -> None:
    isa = built().split("~")[0] + "~"
    assert len(isa) == 106
    assert isa[3] == "*"
    assert isa[104] == ":"
    assert isa[105] == "~"
    assert isa[82] == "^"


def test_envelope_round_trip_numbers_and_counts() -> None:
    interchange = parse_interchange(built(sets=3))
    assert interchange.control_number == "000000042"
    assert (interchange.sender_id, interchange.receiver_id, interchange.usage) == ("SENDER", "RECEIVER", "P")
    (group,) = interchange.groups
    assert (group.functional_id, group.version, group.header.element(6), group.trailer.elements) == (
        "HS",
        "005010X279A1",
        "42",
        ("3", "42"),
    )
    assert [tx.control_number for tx in group.transactions] == ["0001", "0002", "0003"]
    assert all(tx.trailer.elements[0] == "4" for tx in group.transactions)
    assert interchange.trailer.elements == ("1", "000000042")


def test_composites_and_a_400_version_without_repetition() -> None:
    text = build_interchange(
        [[["SVC", Composite("HC", "99213", "25"), "100"]]],
        functional_id="HP",
        version="005010X221A1",
        envelope=Envelope("A", "B"),
        control_number=1,
        when=WHEN,
    )
    svc = next(segment for segment in tokenize(text) if segment.id == "SVC")
    assert svc.components(1) == ("HC", "99213", "25")
    old = text.replace("*00501*", "*00401*", 1)
    assert tokenize(old)[0].delimiters.repetition is None


def test_values_that_hold_a_delimiter_are_refused_when_building() -> None:
    with pytest.raises(X12Error, match="contains a delimiter") as caught:
        build_interchange(
            [[["NM1", "IL", "1", "O*BRIEN"]]],
            functional_id="HS",
            version="005010X279A1",
            envelope=Envelope("A", "B"),
            control_number=1,
            when=WHEN,
        )
    assert (caught.value.segment_id, caught.value.element_position) == ("NM1", 3)


@pytest.mark.parametrize(
    ("mutate", "segment_id", "position", "element", "message"),
    [
        (lambda t: t.replace("SE*23*0001", "SE*22*0001"), "SE", 25, 1, "SE01"),
        (lambda t: t.replace("SE*23*0001", "SE*23*0002"), "SE", 25, 2, "does not match ST02"),
        (lambda t: t.replace("GE*1*1", "GE*2*1"), "GE", 26, 1, "GE01"),
        (lambda t: t.replace("GE*1*1", "GE*1*7"), "GE", 26, 2, "does not match GS06"),
        (lambda t: t.replace("IEA*1*000000907", "IEA*1*000000908"), "IEA", 27, 2, "does not match ISA13"),
        (lambda t: t.replace("IEA*1*", "IEA*3*"), "IEA", 27, 1, "IEA01"),
        (lambda t: t.replace("SE*23*0001~\n", ""), "GE", 25, None, "SE expected"),
        (lambda t: t.replace("EB*L~", "E@*L~"), "E@", 18, None, "not a segment id"),
        (lambda t: t.replace("*00501*", "*0501*", 1), "ISA", 1, 12, "fixed width"),
        (lambda t: t[: t.index("GE*1*1")] + "GE*1", "GE", 26, None, "no segment terminator"),
        (lambda t: t.replace("ISA*03*", "ISA*3*", 1), "ISA", 1, 1, "fixed width"),
        (lambda t: t.replace("ISA", "XSA", 1), None, 1, None, "starts with an ISA"),
        (lambda t: t[:90], "ISA", 1, None, "must be 106"),
    ],
)
def test_malformed_input_names_the_segment_and_position(
    mutate: object, segment_id: str | None, position: int, element: int | None, message: str
) -> None:
    assert callable(mutate)
    with pytest.raises(X12Error) as caught:
        parse_interchange(mutate(SUBSCRIBER_271))
    error = caught.value
    assert message in error.message
    assert (error.segment_id, error.segment_position, error.element_position) == (segment_id, position, element)
    assert f"#{position}" in str(error)


def test_lenient_reading_skips_only_the_counts_and_numbers() -> None:
    wrong = SUBSCRIBER_271.replace("SE*23*0001", "SE*99*0042")
    assert parse_interchange(wrong, check_envelopes=False).transactions("271")
    with pytest.raises(X12Error, match="SE expected"):
        parse_interchange(wrong.replace("SE*99*0042~", ""), check_envelopes=False)


def test_bytes_that_are_not_utf8_are_an_x12_error() -> None:
    with pytest.raises(X12Error, match="not UTF-8"):
        parse_interchange(b"ISA\xff\xfe")


# --- Fuzzing: every parser, fed anything, answers a result or an X12Error -------------------------

_PARSERS = (parse_interchange, parse_271, parse_277, parse_835)


def _only_x12_errors(data: str | bytes) -> None:
    # Lenient reading too, so the decoders see bodies whose counts no longer add up.
    for parser in _PARSERS:
        for check in (True, False):
            with contextlib.suppress(X12Error):
                parser(data, check_envelopes=check)


@settings(max_examples=300, deadline=None, database=None)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _only_x12_errors(data)


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(alphabet="ISAGEB*~:^|>0123456789 \n", max_size=300))
def test_fuzz_random_x12ish_text(data: str) -> None:
    _only_x12_errors("ISA" + data)


@settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_truncated_samples(sample: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(sample)))
    _only_x12_errors(sample[:cut])


@settings(max_examples=600, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_mutated_samples(sample: str, data: st.DataObject) -> None:
    text = sample
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=max(len(text) - 1, 0)))
        kind = data.draw(st.sampled_from(["replace", "insert", "delete"]))
        char = data.draw(st.sampled_from(list("*~:^0129AZ.-\n ")))
        if kind == "replace":
            text = text[:at] + char + text[at + 1 :]
        elif kind == "insert":
            text = text[:at] + char + text[at:]
        else:
            text = text[:at] + text[at + 1 :]
    _only_x12_errors(text)


@settings(max_examples=200, deadline=None, database=None)
@given(st.sampled_from(SAMPLES), st.data())
def test_fuzz_shuffled_segments(sample: str, data: st.DataObject) -> None:
    segments = sample.split("~")
    body = segments[1:-1]
    shuffled = data.draw(st.permutations(body))
    _only_x12_errors("~".join([segments[0], *shuffled, segments[-1]]))
