"""The X12 core: delimiters read from ISA, a tokenizer, and the ISA/GS/ST envelopes, built and checked.

Everything here speaks plain X12 and knows no transaction's meaning. Malformed input raises
:class:`X12Error`, which names the segment and the element where reading stopped; nothing else
escapes the parser, whatever bytes it is given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

__all__ = [
    "DEFAULT_DELIMITERS",
    "Composite",
    "DateRange",
    "Delimiters",
    "Envelope",
    "FunctionalGroup",
    "Interchange",
    "Repeated",
    "Segment",
    "TransactionSet",
    "X12Error",
    "build_interchange",
    "date_range",
    "parse_interchange",
    "tokenize",
]

_ISA_LENGTH = 106
# Where ISA puts an element separator: the ISA is fixed width, so these never move.
_ISA_SEPARATOR_AT = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1)
_SEGMENT_ID = re.compile(r"[A-Z][A-Z0-9]{1,2}")
_NUMERIC = re.compile(r"\d+")
_LINE_BREAKS = "\r\n"


class X12Error(ValueError):
    """Malformed X12: what is wrong, and where (1-based segment and element positions, when known)."""

    def __init__(
        self,
        message: str,
        segment_id: str | None = None,
        segment_position: int | None = None,
        element_position: int | None = None,
    ) -> None:
        where = []
        if segment_id:
            where.append(f"segment {segment_id}")
        if segment_position is not None:
            where.append(f"#{segment_position}")
        if element_position is not None:
            where.append(f"element {element_position}")
        super().__init__(f"{message} ({' '.join(where)})" if where else message)
        self.message = message
        self.segment_id = segment_id
        self.segment_position = segment_position
        self.element_position = element_position


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The four separators an interchange declares in its ISA segment."""

    element: str = "*"
    component: str = ":"
    segment: str = "~"
    repetition: str | None = "^"
    """ISA11 in 00501 and later; None for 00401, which has no repetition separator."""

    def as_set(self) -> set[str]:
        return {self.element, self.component, self.segment} | ({self.repetition} if self.repetition else set())


DEFAULT_DELIMITERS = Delimiters()


@dataclass(frozen=True, slots=True)
class Segment:
    """One segment: its id, its elements (element 1 first), and where it sits in the interchange."""

    id: str
    elements: tuple[str, ...]
    position: int
    """1-based position in the interchange, ISA being 1."""
    delimiters: Delimiters

    def element(self, number: int) -> str:
        """Element ``number`` (1-based, as the guides count), or "" when the segment stops before it."""
        return self.elements[number - 1] if 0 < number <= len(self.elements) else ""

    def components(self, number: int) -> tuple[str, ...]:
        """The components of a composite element; a plain element is one component."""
        return tuple(self.element(number).split(self.delimiters.component))

    def repeats(self, number: int) -> tuple[str, ...]:
        """The repetitions of a repeatable element, empty ones dropped."""
        value = self.element(number)
        if not self.delimiters.repetition:
            return (value,) if value else ()
        return tuple(part for part in value.split(self.delimiters.repetition) if part)

    def error(self, message: str, element: int | None = None) -> X12Error:
        """An :class:`X12Error` located at this segment (and element)."""
        return X12Error(message, self.id, self.position, element)

    def required(self, number: int, what: str) -> str:
        """Element ``number``, or an :class:`X12Error` naming ``what`` is missing."""
        value = self.element(number)
        if not value:
            raise self.error(f"{what} is missing", number)
        return value

    def amount(self, number: int) -> Decimal | None:
        """A numeric element as a Decimal; None when empty."""
        value = self.element(number)
        if not value:
            return None
        try:
            number_value = Decimal(value)
        except InvalidOperation:
            raise self.error(f"{value!r} is not a number", number) from None
        if not number_value.is_finite():
            raise self.error(f"{value!r} is not a finite number", number)
        return number_value

    def cents(self, number: int) -> int | None:
        """A monetary element in integer cents; None when empty. More than cents is an error."""
        value = self.amount(number)
        if value is None:
            return None
        cents = value * 100
        if cents != cents.to_integral_value():
            raise self.error(f"{self.element(number)!r} is not a whole number of cents", number)
        return int(cents)

    def date(self, number: int, value: str | None = None) -> date:
        """A CCYYMMDD date element (or ``value`` found in it, for a range)."""
        text = self.element(number) if value is None else value
        if len(text) != 8 or not text.isdigit():
            raise self.error(f"{text!r} is not a CCYYMMDD date", number)
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            raise self.error(f"{text!r} is not a calendar date", number) from None


@dataclass(frozen=True, slots=True)
class DateRange:
    """A DTP segment: what the date is (DTP01) and the day or days."""

    qualifier: str
    start: date
    end: date | None = None


def date_range(segment: Segment) -> DateRange:
    """Read a DTP segment, in format D8 (one day) or RD8 (a range)."""
    qualifier = segment.required(1, "DTP01 (date qualifier)")
    form = segment.element(2)
    value = segment.required(3, "DTP03 (date)")
    if form == "D8":
        return DateRange(qualifier, segment.date(3))
    if form == "RD8":
        start, separator, end = value.partition("-")
        if not separator:
            raise segment.error(f"{value!r} is not a CCYYMMDD-CCYYMMDD range", 3)
        return DateRange(qualifier, segment.date(3, start), segment.date(3, end))
    raise segment.error(f"date format {form!r} is not D8 or RD8", 2)


@dataclass(frozen=True, slots=True)
class Composite:
    """A composite element to build: its components, joined with the component separator."""

    parts: tuple[str, ...]

    def __init__(self, *parts: str) -> None:
        object.__setattr__(self, "parts", parts)


@dataclass(frozen=True, slots=True)
class Repeated:
    """A repeated element to build: its values, joined with the repetition separator."""

    values: tuple[str, ...]

    def __init__(self, *values: str) -> None:
        object.__setattr__(self, "values", values)


Element = str | Composite | Repeated
SegmentSpec = Sequence[Element]
"""A segment to build: its id, then its elements; trailing empty elements are dropped."""


def _decode(data: str | bytes) -> str:
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise X12Error(f"the payload is not UTF-8 text (byte {error.start + 1})") from None


def _read_delimiters(text: str) -> Delimiters:
    if len(text) < _ISA_LENGTH:
        raise X12Error(f"the ISA segment is {len(text)} characters; it must be {_ISA_LENGTH}", "ISA", 1)
    separator = text[3]
    for index in _ISA_SEPARATOR_AT:
        if text[index] != separator:
            element = _ISA_SEPARATOR_AT.index(index)
            raise X12Error(
                "the ISA segment is not fixed width: an element separator is missing or misplaced",
                "ISA",
                1,
                element,
            )
    component, terminator = text[104], text[105]
    version = text[84:89]
    repetition = text[82] if version >= "00501" else None
    found = [separator, component, terminator] + ([repetition] if repetition else [])
    for character in found:
        if character.isalnum() or character == " ":
            raise X12Error(f"{character!r} cannot be a delimiter", "ISA", 1)
    if len(set(found)) != len(found):
        raise X12Error("the ISA declares the same character for two delimiters", "ISA", 1)
    return Delimiters(element=separator, component=component, segment=terminator, repetition=repetition)


def tokenize(data: str | bytes) -> list[Segment]:
    """Split an interchange into segments, with the delimiters its ISA declares."""
    text = _decode(data).lstrip("\ufeff \t\r\n")
    if not text.startswith("ISA"):
        raise X12Error("an interchange starts with an ISA segment", None, 1)
    delimiters = _read_delimiters(text)
    pieces = text.split(delimiters.segment)
    tail = pieces[-1].strip(_LINE_BREAKS + " \t")
    if tail:
        raise X12Error(
            "the last segment has no segment terminator (truncated?)",
            tail.split(delimiters.element)[0][:3],
            len(pieces),
        )
    segments: list[Segment] = []
    for position, piece in enumerate(pieces[:-1], start=1):
        raw = piece.strip(_LINE_BREAKS)
        if not raw:
            raise X12Error("empty segment", None, position)
        identifier, *elements = raw.split(delimiters.element)
        if not _SEGMENT_ID.fullmatch(identifier):
            raise X12Error(f"{identifier[:10]!r} is not a segment id", identifier[:3] or None, position)
        segments.append(Segment(identifier, tuple(elements), position, delimiters))
    return segments


@dataclass(frozen=True, slots=True)
class TransactionSet:
    """One ST…SE transaction set: the segments between its header and trailer."""

    header: Segment
    segments: tuple[Segment, ...]
    trailer: Segment

    @property
    def code(self) -> str:
        """ST01, e.g. "271"."""
        return self.header.element(1)

    @property
    def control_number(self) -> str:
        return self.header.element(2)

    @property
    def implementation(self) -> str:
        """ST03, the guide's version, e.g. "005010X279A1"."""
        return self.header.element(3)


@dataclass(frozen=True, slots=True)
class FunctionalGroup:
    header: Segment
    transactions: tuple[TransactionSet, ...]
    trailer: Segment

    @property
    def functional_id(self) -> str:
        """GS01, e.g. "HB" for 271s."""
        return self.header.element(1)

    @property
    def version(self) -> str:
        """GS08, e.g. "005010X279A1"."""
        return self.header.element(8)


@dataclass(frozen=True, slots=True)
class Interchange:
    delimiters: Delimiters
    header: Segment
    groups: tuple[FunctionalGroup, ...]
    trailer: Segment

    @property
    def control_number(self) -> str:
        return self.header.element(13)

    @property
    def sender_id(self) -> str:
        return self.header.element(6).strip()

    @property
    def receiver_id(self) -> str:
        return self.header.element(8).strip()

    @property
    def usage(self) -> str:
        """ISA15: T for test data, P for production."""
        return self.header.element(15)

    def transactions(self, code: str) -> list[TransactionSet]:
        """Every transaction set whose ST01 is ``code``, in order."""
        return [tx for group in self.groups for tx in group.transactions if tx.code == code]


def _expect(segment: Segment | None, identifier: str, after: Segment) -> Segment:
    if segment is None:
        raise X12Error(f"the interchange ends where {identifier} is expected (truncated?)", after.id, after.position)
    if segment.id != identifier:
        raise segment.error(f"{identifier} expected here, found {segment.id}")
    return segment


def _check_count(trailer: Segment, element: int, expected: int, what: str) -> None:
    value = trailer.element(element)
    if not _NUMERIC.fullmatch(value) or int(value) != expected:
        raise trailer.error(f"{what} is {value!r}, but there are {expected}", element)


def _check_match(trailer: Segment, element: int, header: Segment, header_element: int) -> None:
    if trailer.element(element) != header.element(header_element):
        raise trailer.error(
            f"control number {trailer.element(element)!r} does not match {header.id}"
            f"{header_element:02d} {header.element(header_element)!r}",
            element,
        )


def parse_interchange(data: str | bytes, *, check_envelopes: bool = True) -> Interchange:
    """Read one interchange: ISA, groups of transaction sets, IEA.

    With ``check_envelopes`` (the default) control numbers must match between each header and its
    trailer, SE01 must count the set's segments, and GE01/IEA01 the sets and groups they close.
    The nesting itself is always checked.
    """
    segments = tokenize(data)
    isa = segments[0]
    if len(isa.elements) != 16:
        raise isa.error(f"ISA has {len(isa.elements)} elements; it must have 16")
    for number, width in enumerate(_ISA_WIDTHS, start=1):
        if len(isa.element(number)) != width:
            raise isa.error(f"ISA{number:02d} must be {width} characters wide", number)
    if not _NUMERIC.fullmatch(isa.element(13)):
        raise isa.error("ISA13 (interchange control number) must be 9 digits", 13)
    groups: list[FunctionalGroup] = []
    index = 1
    while index < len(segments) and segments[index].id == "GS":
        gs = segments[index]
        index += 1
        transactions: list[TransactionSet] = []
        while index < len(segments) and segments[index].id == "ST":
            st = segments[index]
            index += 1
            start = index
            while index < len(segments) and segments[index].id not in {"SE", "ST", "GE", "GS", "IEA", "ISA"}:
                index += 1
            se = _expect(segments[index] if index < len(segments) else None, "SE", segments[index - 1])
            index += 1
            if check_envelopes:
                _check_count(se, 1, index - start + 1, "SE01 (segments in the set)")
                _check_match(se, 2, st, 2)
            transactions.append(TransactionSet(st, tuple(segments[start : index - 1]), se))
        ge = _expect(segments[index] if index < len(segments) else None, "GE", segments[index - 1])
        index += 1
        if check_envelopes:
            _check_count(ge, 1, len(transactions), "GE01 (transaction sets in the group)")
            _check_match(ge, 2, gs, 6)
        groups.append(FunctionalGroup(gs, tuple(transactions), ge))
    iea = _expect(segments[index] if index < len(segments) else None, "IEA", segments[index - 1])
    if index + 1 < len(segments):
        raise segments[index + 1].error("nothing may follow IEA in one interchange")
    if check_envelopes:
        _check_count(iea, 1, len(groups), "IEA01 (functional groups in the interchange)")
        _check_match(iea, 2, isa, 13)
    if not groups:
        raise iea.error("the interchange holds no functional group")
    return Interchange(isa.delimiters, isa, tuple(groups), iea)


# --- Building -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Envelope:
    """Who sends an interchange to whom, and how it is marked."""

    sender_id: str
    receiver_id: str
    usage: str = "T"
    """ISA15: T (test) or P (production)."""
    sender_qualifier: str = "ZZ"
    receiver_qualifier: str = "ZZ"
    application_sender: str | None = None
    """GS02; the sender id when None."""
    application_receiver: str | None = None
    """GS03; the receiver id when None."""


def _render(value: Element, delimiters: Delimiters, segment_id: str, position: int) -> str:
    if isinstance(value, Composite):
        parts: Sequence[str] = value.parts
        joiner = delimiters.component
    elif isinstance(value, Repeated):
        if delimiters.repetition is None:
            raise X12Error("this version has no repetition separator", segment_id, None, position)
        parts, joiner = value.values, delimiters.repetition
    else:
        parts, joiner = (value,), ""
    for part in parts:
        if set(part) & delimiters.as_set():
            raise X12Error(f"the value {part!r} contains a delimiter", segment_id, None, position)
    return joiner.join(parts)


def _render_segment(spec: SegmentSpec, delimiters: Delimiters) -> str:
    identifier, *values = spec
    if not isinstance(identifier, str) or not _SEGMENT_ID.fullmatch(identifier):
        raise X12Error(f"{identifier!r} is not a segment id")
    rendered = [_render(value, delimiters, identifier, number) for number, value in enumerate(values, start=1)]
    while rendered and not rendered[-1]:
        rendered.pop()
    return delimiters.element.join([identifier, *rendered]) + delimiters.segment


def _fixed(value: str, width: int, what: str) -> str:
    if len(value) > width:
        raise X12Error(f"{what} {value!r} is longer than {width} characters", "ISA")
    return value.ljust(width)


def build_interchange(
    transaction_sets: Sequence[Sequence[SegmentSpec]],
    *,
    functional_id: str,
    version: str,
    envelope: Envelope,
    control_number: int,
    when: datetime,
    delimiters: Delimiters = DEFAULT_DELIMITERS,
) -> str:
    """One interchange holding one functional group of ``transaction_sets``.

    Each transaction set is given as its segments from the one after ST to the one before SE; ST
    (with ST03 = ``version``) and SE (with its segment count) are added, numbered 0001, 0002, ….
    ``control_number`` (1 to 999999999) numbers the interchange (ISA13/IEA02) and the group (GS06/GE02).
    """
    if not 0 < control_number < 10**9:
        raise X12Error(f"control number {control_number} is not between 1 and 999999999")
    if envelope.usage not in {"T", "P"}:
        raise X12Error(f"usage indicator must be T or P, got {envelope.usage!r}")
    isa = [
        "ISA",
        "00",
        " " * 10,
        "00",
        " " * 10,
        _fixed(envelope.sender_qualifier, 2, "sender qualifier"),
        _fixed(envelope.sender_id, 15, "sender id"),
        _fixed(envelope.receiver_qualifier, 2, "receiver qualifier"),
        _fixed(envelope.receiver_id, 15, "receiver id"),
        when.strftime("%y%m%d"),
        when.strftime("%H%M"),
        delimiters.repetition or "U",
        "00501",
        f"{control_number:09d}",
        "0",
        envelope.usage,
        delimiters.component,
    ]
    # ISA11 and ISA16 are delimiters themselves; every other value must be free of them.
    for number, value in enumerate(isa[1:-1], start=1):
        if number != 11 and set(value) & delimiters.as_set():
            raise X12Error(f"the ISA value {value!r} contains a delimiter", "ISA")
    out = [delimiters.element.join(isa) + delimiters.segment]
    out.append(
        _render_segment(
            [
                "GS",
                functional_id,
                envelope.application_sender or envelope.sender_id,
                envelope.application_receiver or envelope.receiver_id,
                when.strftime("%Y%m%d"),
                when.strftime("%H%M"),
                str(control_number),
                "X",
                version,
            ],
            delimiters,
        )
    )
    for number, body in enumerate(transaction_sets, start=1):
        st_number = f"{number:04d}"
        code = {"HS": "270", "HB": "271", "HR": "276", "HN": "277", "HP": "835"}.get(functional_id)
        if code is None:
            raise X12Error(f"functional identifier {functional_id!r} is not one this plugin builds", "GS")
        # The 835 guide marks ST03 "not used"; the other guides require it.
        st03 = "" if code == "835" else version
        out.append(_render_segment(["ST", code, st_number, st03], delimiters))
        out.extend(_render_segment(spec, delimiters) for spec in body)
        out.append(_render_segment(["SE", str(len(body) + 2), st_number], delimiters))
    out.append(_render_segment(["GE", str(len(transaction_sets)), str(control_number)], delimiters))
    out.append(_render_segment(["IEA", "1", f"{control_number:09d}"], delimiters))
    return "".join(out)
