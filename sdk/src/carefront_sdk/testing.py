"""The contract kit: the pytest suites every adapter must pass, in-memory fakes of each port, helpers.

pytest loads this module as the ``carefront`` plugin (the ``pytest11`` entry point of carefront-sdk),
so its fixtures ``adapter_context`` and ``carefront_clock`` exist in every test session once the SDK
is installed. A plugin's test module subclasses a suite and provides two fixtures: the adapter, and a
sample naming data known to exist in the system behind it::

    import pytest
    from carefront_sdk.testing import EHRContract, EHRSample

    class TestMyEHR(EHRContract):
        @pytest.fixture
        def ehr(self, adapter_context):
            return MyEHR(adapter_context)

        @pytest.fixture
        def ehr_sample(self):
            return EHRSample(match=..., patient_id="...", statement_id="...", slot_query=...)

The suites' tests are ``async def`` and marked ``pytest.mark.asyncio``: install pytest-asyncio
next to pytest. Every suite checks the contract of :mod:`carefront_sdk.adapters`, never a vendor's
behaviour; its mutating tests use fresh idempotency keys and undo what they can (bookings are
cancelled, coverages removed), so it may run against a vendor's test environment.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import hmac
import inspect
import itertools
import json
import re
import types
import typing
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any, TypeVar, cast
from zoneinfo import ZoneInfo

import pluggy
import pytest

from carefront_sdk import PROJECT_NAME, hookspecs
from carefront_sdk.adapters import (
    EHR,
    AdapterContext,
    AdapterRegistration,
    AdapterRegistry,
    Clearinghouse,
    Notifier,
    PaymentGateway,
    Port,
)
from carefront_sdk.config import resolve_config
from carefront_sdk.errors import (
    CarefrontError,
    NotFound,
    Refused,
    Unavailable,
    WebhookRejected,
)
from carefront_sdk.models import (
    Adjustment,
    Appointment,
    AppointmentStatus,
    Channel,
    ChargeLine,
    Checkout,
    CheckoutKind,
    CheckoutRequest,
    ClaimStatus,
    ClaimStatusRequest,
    Coverage,
    CoverageChange,
    CoverageRank,
    Delivery,
    EligibilityBenefit,
    EligibilityRejection,
    EligibilityRequest,
    EligibilityResult,
    GatewayPage,
    Health,
    Location,
    Message,
    Money,
    OffSessionCharge,
    Patient,
    PatientQuery,
    PatientSearch,
    Payment,
    PaymentPosting,
    PaymentStatus,
    PostingReceipt,
    Provider,
    ProxyAccess,
    Refund,
    RefundRequest,
    RelatedPerson,
    SavedMethod,
    SaveMethodRequest,
    SchedulingCatalog,
    Slot,
    SlotQuery,
    Statement,
    StatementSummary,
    Visit,
    VisitType,
    WebhookEvent,
    require_aware,
)

__all__ = [
    "ClearinghouseContract",
    "ClearinghouseSample",
    "EHRContract",
    "EHRSample",
    "FakeClearinghouse",
    "FakeClock",
    "FakeEHR",
    "FakeGateway",
    "FakeNotifier",
    "GatewayContract",
    "GatewaySample",
    "NotifierContract",
    "NotifierSample",
    "adapter_from_plugin",
    "check_hookimpls",
    "make_adapter_context",
    "model_problems",
    "statement_problems",
]

T = TypeVar("T")

# --- Clock, context and pytest wiring -------------------------------------------------------------

DEFAULT_START = datetime(2025, 3, 3, 15, 0, tzinfo=UTC)
"""Where a :class:`FakeClock` starts: a Monday afternoon, so seeded slots fall on a weekday."""


class FakeClock:
    """A clock tests move by hand; pass it as ``AdapterContext.clock`` or to a fake."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        require_aware(start, "FakeClock start")
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> datetime:
        """Move the clock forward by ``delta`` and return the new time."""
        self.now += delta
        return self.now

    def set(self, moment: datetime) -> None:
        require_aware(moment, "FakeClock.set")
        self.now = moment


def make_adapter_context(
    data_dir: Path,
    *,
    name: str = "test",
    config: Mapping[str, Any] | None = None,
    clock: Callable[[], datetime] | None = None,
    public_url: str = "https://portal.test",
    time_zone: str = "UTC",
) -> AdapterContext:
    """An :class:`AdapterContext` as the portal would build it, with ``data_dir`` created."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return AdapterContext(
        name=name,
        config=dict(config or {}),
        data_dir=data_dir,
        public_url=public_url,
        time_zone=time_zone,
        clock=clock or FakeClock(),
    )


@pytest.fixture
def carefront_clock() -> FakeClock:
    """A :class:`FakeClock` at :data:`DEFAULT_START`; the ``adapter_context`` fixture uses it."""
    return FakeClock()


@pytest.fixture
def adapter_context(tmp_path: Path, carefront_clock: FakeClock) -> AdapterContext:
    """A context named "test" with empty config, a fresh ``data_dir`` and ``carefront_clock``."""
    return make_adapter_context(tmp_path / "adapter-data", clock=carefront_clock)


def pytest_configure(config: pytest.Config) -> None:
    # Without pytest-asyncio the suites' asyncio mark would be an unknown marker under
    # --strict-markers; register it so the suite can fail with a message that says what to install.
    if not config.pluginmanager.hasplugin("asyncio"):
        config.addinivalue_line("markers", "asyncio: run an async test (needs pytest-asyncio)")


# --- Checking models ------------------------------------------------------------------------------


@functools.cache
def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _type_name(hint: Any) -> str:
    return hint.__name__ if isinstance(hint, type) else str(hint).replace("carefront_sdk.models.", "")


def _problems(value: object, hint: Any, where: str) -> Iterator[str]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return
    if hint is type(None):
        if value is not None:
            yield f"{where} is {value!r}, expected None"
        return
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return
        for option in args:
            if option is not type(None) and not any(_problems(value, option, where)):
                return
        yield f"{where} is {value!r}, expected {_type_name(hint)}"
        return
    if origin is tuple:
        if not isinstance(value, tuple):
            yield f"{where} is a {type(value).__name__}, expected a tuple"
            return
        for index, item in enumerate(value):
            yield from _problems(item, args[0], f"{where}[{index}]")
        return
    if origin in (Sequence, list):
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            yield f"{where} is a {type(value).__name__}, expected a sequence"
            return
        for index, item in enumerate(value):
            yield from _problems(item, args[0], f"{where}[{index}]")
        return
    if origin in (frozenset, set):
        if not isinstance(value, frozenset | set):
            yield f"{where} is a {type(value).__name__}, expected a set"
            return
        for item in value:
            yield from _problems(item, args[0], f"{where} item")
        return
    if origin in (Mapping, dict):
        if not isinstance(value, Mapping):
            yield f"{where} is a {type(value).__name__}, expected a mapping"
            return
        for key, item in value.items():
            yield from _problems(key, args[0], f"{where} key {key!r}")
            yield from _problems(item, args[1], f"{where}[{key!r}]")
        return
    if not isinstance(hint, type):
        return
    if hint is datetime:
        if not isinstance(value, datetime):
            yield f"{where} is {value!r}, expected a datetime"
        elif value.tzinfo is None or value.utcoffset() is None:
            yield f"{where} is naive ({value!r}); every datetime must be time-zone aware"
        return
    if hint is date:
        if not isinstance(value, date) or isinstance(value, datetime):
            yield f"{where} is {value!r}, expected a date (a calendar day, not a datetime)"
        return
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        yield f"{where} is {value!r}, expected an int"
        return
    if not isinstance(value, hint):
        yield f"{where} is a {type(value).__name__} ({value!r}), expected {hint.__name__}"
        return
    if dataclasses.is_dataclass(hint):
        hints = _field_types(hint)
        for model_field in dataclasses.fields(hint):
            yield from _problems(
                getattr(value, model_field.name), hints[model_field.name], f"{where}.{model_field.name}"
            )


def model_problems(value: object, expected: Any, where: str = "value") -> list[str]:
    """What is wrong with ``value`` as an instance of ``expected``, field by field, recursively.

    ``expected`` is a model class or a type such as ``Sequence[Patient]`` or ``Coverage | None``.
    Money must be :class:`Money` of int minor units, datetimes aware, dates plain dates, enum fields
    members of their enum.
    """
    return list(_problems(value, expected, where))


def _expect(value: T, expected: Any, where: str) -> T:
    problems = model_problems(value, expected, where)
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return value


def _sum(amounts: Sequence[Money], currency: str) -> Money:
    return sum(amounts, Money.zero(currency))


def _reductions(line: ChargeLine) -> list[Money]:
    return [adjustment.amount for adjustment in line.adjustments if adjustment.group_code != "PR"]


def statement_problems(statement: Statement) -> list[str]:
    """Where a statement does not add up, as documented on :class:`ChargeLine` and
    :class:`StatementSummary`; empty when it does."""
    summary = statement.summary
    currency = summary.balance.currency
    found: list[str] = []
    amounts = [summary.total_charged, summary.insurance_paid, summary.adjustments, summary.patient_paid]
    for line in statement.lines:
        amounts += [line.charged, line.insurance_paid, line.patient_owes]
        amounts += [adjustment.amount for adjustment in line.adjustments]
    if any(amount.currency != currency for amount in amounts):
        return [f"statement {summary.id} mixes currencies; every amount must be in {currency}"]
    visit_ids = {visit.id for visit in statement.visits}
    for line in statement.lines:
        owes = line.charged - line.insurance_paid - _sum(_reductions(line), currency)
        if owes != line.patient_owes:
            found.append(
                f"line {line.id}: charged {line.charged.amount} - insurance_paid {line.insurance_paid.amount}"
                f" - non-PR adjustments {_sum(_reductions(line), currency).amount} = {owes.amount},"
                f" but patient_owes is {line.patient_owes.amount}"
            )
        if line.visit_id not in visit_ids:
            found.append(f"line {line.id}: visit_id {line.visit_id!r} is not among the statement's visits")
    totals = {
        "total_charged": (summary.total_charged, _sum([line.charged for line in statement.lines], currency)),
        "insurance_paid": (summary.insurance_paid, _sum([line.insurance_paid for line in statement.lines], currency)),
        "adjustments": (
            summary.adjustments,
            _sum([amount for line in statement.lines for amount in _reductions(line)], currency),
        ),
    }
    for name, (given, computed) in totals.items():
        if given != computed:
            found.append(f"summary.{name} is {given.amount}, but the lines add up to {computed.amount}")
    owed = _sum([line.patient_owes for line in statement.lines], currency)
    if owed - summary.patient_paid != summary.balance:
        found.append(
            f"summary.balance is {summary.balance.amount}, but the lines' patient_owes ({owed.amount})"
            f" minus patient_paid ({summary.patient_paid.amount}) is {(owed - summary.patient_paid).amount}"
        )
    return found


# --- Checking plugins -----------------------------------------------------------------------------


def _checked_manager(plugin: object) -> pluggy.PluginManager:
    for name, value in inspect.getmembers(plugin):
        if not name.startswith("carefront_") or not callable(value):
            continue
        if not hasattr(value, f"{PROJECT_NAME}_impl"):
            raise pluggy.PluginValidationError(plugin, f"{name} is not decorated with @hookimpl")
        if inspect.iscoroutinefunction(value):
            raise pluggy.PluginValidationError(
                plugin, f"{name} is async; hooks are plain functions (adapters do the I/O)"
            )
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    manager.register(plugin, name=_plugin_name(plugin))
    manager.check_pending()
    return manager


def _plugin_name(plugin: object) -> str:
    return str(getattr(plugin, "__name__", type(plugin).__name__))


def check_hookimpls(plugin: object) -> None:
    """Check a plugin's hook implementations against the specs; raise ``pluggy.PluginValidationError``.

    ``plugin`` is what the ``carefront`` entry point names (usually the ``hooks`` module). Every
    ``@hookimpl`` must name a hook in :mod:`carefront_sdk.hookspecs` and accept a subset of its
    arguments; a ``carefront_`` function without ``@hookimpl`` is reported (pluggy would silently
    ignore it), and so is an ``async def`` implementation (pluggy never awaits).
    """
    _checked_manager(plugin)


def adapter_from_plugin(plugin: object, port: Port, name: str, context: AdapterContext) -> Any:
    """Build adapter ``name`` for ``port`` the way the portal does: through the plugin's hook.

    Checks the plugin as :func:`check_hookimpls` does, calls its ``carefront_register_<port>`` hook,
    resolves ``context.config`` (written as in ``[adapters.<name>]``, ``$env`` and ``$file``
    references allowed) against the fields the plugin declared, and calls the factory with the
    resolved context.
    """
    registration = _registration(plugin, port, name)
    config = resolve_config(registration.plugin, registration.config, context.config)
    return registration.factory(dataclasses.replace(context, name=name, config=config))


def _registration(plugin: object, port: Port, name: str) -> AdapterRegistration:
    """What the plugin's ``carefront_register_<port>`` hook offers under ``name``."""
    manager = _checked_manager(plugin)
    registry = AdapterRegistry(port=port, plugin=_plugin_name(plugin))
    getattr(manager.hook, f"carefront_register_{port.value}")(registry=registry)
    offers = {registration.name: registration for registration in registry.registrations}
    if name not in offers:
        raise LookupError(f"the plugin registers no {port.value} adapter {name!r} (it offers: {sorted(offers)})")
    return offers[name]


def _static_dirs(plugin: object) -> dict[str, Path]:
    """The folders the plugin serves under ``/static/plugins/<name>/``, by name."""
    answers = _checked_manager(plugin).hook.carefront_static_dirs()
    return {name: Path(folder) for answer in answers if answer for name, folder in answer}


# --- Contract machinery ---------------------------------------------------------------------------

_TIERS = "carefront_sdk.errors (Refused, NotFound, Unavailable, RedirectRequired, WebhookRejected)"


def _protocol_methods(protocol: type) -> list[str]:
    return [name for name, value in vars(protocol).items() if inspect.iscoroutinefunction(value)]


class _Guarded:
    """Wraps an adapter so any exception outside the SDK's tiers fails the test by name."""

    def __init__(self, adapter: object, port: str, methods: Sequence[str]) -> None:
        self._adapter = adapter
        self._port = port
        self._methods = set(methods)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._adapter, name)
        if name not in self._methods:
            return attribute

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await attribute(*args, **kwargs)
            except CarefrontError:
                raise
            except Exception as error:
                pytest.fail(
                    f"{self._port}.{name} raised {type(error).__name__}: {error}\n"
                    f"An adapter may raise only the tiers of {_TIERS}; translate vendor errors.",
                    pytrace=False,
                )

        return call


def _guard(adapter: T, port: str, protocol: type) -> T:
    return cast(T, _Guarded(adapter, port, _protocol_methods(protocol)))


def _key(label: str) -> str:
    return f"carefront-contract-{label}-{uuid.uuid4().hex}"


def _check_protocol(adapter: object, protocol: type, port: str) -> None:
    missing = [name for name in _protocol_methods(protocol) if not hasattr(adapter, name)]
    assert not missing, f"the {port} adapter lacks {', '.join(missing)}"
    not_async = [
        name for name in _protocol_methods(protocol) if not inspect.iscoroutinefunction(getattr(adapter, name))
    ]
    assert not not_async, f"{port} methods must be `async def`: {', '.join(not_async)}"
    assert isinstance(adapter, protocol), f"the adapter does not satisfy the {port} protocol"


class _Suite:
    """What every contract suite shares: a clear failure when pytest-asyncio is missing."""

    @pytest.fixture(autouse=True)
    def _carefront_needs_pytest_asyncio(self, request: pytest.FixtureRequest) -> None:
        if not request.config.pluginmanager.hasplugin("asyncio"):
            pytest.fail(
                "The Carefront contract suites are async tests: install pytest-asyncio (>=1.0).",
                pytrace=False,
            )


# --- EHR contract ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EHRSample:
    """Data known to exist in the EHR behind the adapter under test."""

    match: PatientQuery
    """A query that matches the patient ``patient_id``."""
    patient_id: str
    statement_id: str
    """One of that patient's statements, with at least one line and a balance above zero."""
    slot_query: SlotQuery
    """A query that finds at least one open slot (the suite books it, then cancels)."""
    new_coverage: CoverageChange | None = None
    """A coverage the EHR will accept for the patient; by default a made-up secondary coverage."""


def _default_coverage(sample: EHRSample) -> CoverageChange:
    return CoverageChange(
        patient_id=sample.patient_id,
        rank=CoverageRank.SECONDARY,
        payer_id="60054",
        payer_name="Aetna",
        plan_name="Open Access Managed Choice",
        member_id="CT0000001",
        group_number="CT-GROUP",
        subscriber_name=f"{sample.match.given_name} {sample.match.family_name}",
        subscriber_birth_date=sample.match.birth_date,
        relationship="self",
        starts_on=date(2025, 1, 1),
    )


_RANK_ORDER = {CoverageRank.PRIMARY: 0, CoverageRank.SECONDARY: 1}


@pytest.mark.asyncio
class EHRContract(_Suite):
    """The contract every EHR adapter passes. Provide fixtures ``ehr`` and ``ehr_sample``."""

    @staticmethod
    def _guarded(ehr: EHR) -> EHR:
        return _guard(ehr, "EHR", EHR)

    @staticmethod
    async def _open_slots(ehr: EHR, sample: EHRSample) -> Sequence[Slot]:
        slots = _expect(await ehr.find_slots(sample.slot_query), Sequence[Slot], "EHR.find_slots()")
        if not slots:
            pytest.fail("ehr_sample.slot_query finds no open slot; the sample must name a day with open slots")
        return slots

    async def test_implements_the_protocol(self, ehr: EHR) -> None:
        _check_protocol(ehr, EHR, "EHR")

    async def test_health_returns_health(self, ehr: EHR) -> None:
        _expect(await self._guarded(ehr).health(), Health, "EHR.health()")

    async def test_match_patient_finds_the_sample_patient(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        patients = _expect(
            await self._guarded(ehr).match_patient(ehr_sample.match), Sequence[Patient], "EHR.match_patient()"
        )
        assert ehr_sample.patient_id in [patient.id for patient in patients], (
            f"match_patient({ehr_sample.match}) did not return patient {ehr_sample.patient_id!r}"
        )

    async def test_match_patient_needs_the_birth_date_to_agree(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        wrong = dataclasses.replace(ehr_sample.match, birth_date=date(1900, 1, 1))
        patients = _expect(await self._guarded(ehr).match_patient(wrong), Sequence[Patient], "EHR.match_patient()")
        assert ehr_sample.patient_id not in [patient.id for patient in patients], (
            "match_patient matched the sample patient with a wrong birth date"
        )

    async def test_read_patient(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        patient = _expect(await self._guarded(ehr).read_patient(ehr_sample.patient_id), Patient, "EHR.read_patient()")
        assert patient.id == ehr_sample.patient_id
        assert patient.birth_date == ehr_sample.match.birth_date

    async def test_search_patients_by_each_field(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        patient = await guarded.read_patient(ehr_sample.patient_id)
        statement = await guarded.read_statement(ehr_sample.statement_id)
        searches = {
            "name and birth date": PatientSearch(
                name=f"{patient.given_name} {patient.family_name}", birth_date=patient.birth_date
            ),
            "family name": PatientSearch(name=patient.family_name.upper(), limit=500),
            "mrn": PatientSearch(mrn=patient.mrn),
            "account number": PatientSearch(account_number=patient.account_number, limit=500),
            "statement code": PatientSearch(statement_code=statement.summary.statement_code),
        }
        if patient.phone:
            searches["phone"] = PatientSearch(phone=patient.phone, limit=500)
        for what, query in searches.items():
            found = _expect(await guarded.search_patients(query), Sequence[Patient], "EHR.search_patients()")
            assert ehr_sample.patient_id in [each.id for each in found], f"search_patients by {what} missed the patient"
            assert len(found) <= query.limit, f"search_patients by {what} returned more than query.limit"

    async def test_search_patients_needs_every_field_to_agree(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        patient = await guarded.read_patient(ehr_sample.patient_id)
        wrong = PatientSearch(mrn=patient.mrn, birth_date=date(1900, 1, 1))
        found = _expect(await guarded.search_patients(wrong), Sequence[Patient], "EHR.search_patients()")
        assert ehr_sample.patient_id not in [each.id for each in found], "a wrong birth date still found the patient"
        nobody = PatientSearch(mrn=f"no-such-mrn-{uuid.uuid4().hex[:8]}")
        assert list(await guarded.search_patients(nobody)) == []

    async def test_unknown_ids_raise_not_found(self, ehr: EHR) -> None:
        guarded = self._guarded(ehr)
        unknown = f"carefront-contract-unknown-{uuid.uuid4().hex}"
        with pytest.raises(NotFound):
            await guarded.read_patient(unknown)
        with pytest.raises(NotFound):
            await guarded.read_statement(unknown)
        with pytest.raises(NotFound):
            await guarded.find_statement_by_code(unknown)
        with pytest.raises(NotFound):
            await guarded.cancel(unknown, "contract test", _key("cancel-unknown"))

    async def test_booking_an_unknown_slot_raises_not_found(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        unknown = f"carefront-contract-unknown-{uuid.uuid4().hex}"
        with pytest.raises(NotFound):
            await self._guarded(ehr).book(ehr_sample.patient_id, unknown, _key("book-unknown"))

    async def test_related_persons_belong_to_the_patient(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        people = _expect(
            await self._guarded(ehr).list_related_persons(ehr_sample.patient_id),
            Sequence[RelatedPerson],
            "EHR.list_related_persons()",
        )
        assert all(person.patient_id == ehr_sample.patient_id for person in people)

    async def test_statements_are_newest_first(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        summaries = _expect(
            await self._guarded(ehr).list_statements(ehr_sample.patient_id),
            Sequence[StatementSummary],
            "EHR.list_statements()",
        )
        assert ehr_sample.statement_id in [summary.id for summary in summaries], (
            f"list_statements did not include the sample statement {ehr_sample.statement_id!r}"
        )
        issued = [summary.issued_on for summary in summaries]
        assert issued == sorted(issued, reverse=True), f"statements must be newest first, got {issued}"
        assert all(summary.patient_id == ehr_sample.patient_id for summary in summaries)

    async def test_statement_lines_add_up(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        statement = _expect(
            await self._guarded(ehr).read_statement(ehr_sample.statement_id), Statement, "EHR.read_statement()"
        )
        assert statement.summary.id == ehr_sample.statement_id
        assert statement.summary.patient_id == ehr_sample.patient_id
        assert statement.lines, "the sample statement must have at least one line"
        problems = statement_problems(statement)
        assert not problems, "the statement does not add up:\n" + "\n".join(problems)

    async def test_listed_summary_agrees_with_the_statement(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        statement = await guarded.read_statement(ehr_sample.statement_id)
        listed = {summary.id: summary for summary in await guarded.list_statements(ehr_sample.patient_id)}
        assert listed[ehr_sample.statement_id] == statement.summary

    async def test_find_statement_by_code(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        statement = await guarded.read_statement(ehr_sample.statement_id)
        found = _expect(
            await guarded.find_statement_by_code(statement.summary.statement_code),
            StatementSummary,
            "EHR.find_statement_by_code()",
        )
        assert found.id == ehr_sample.statement_id

    async def test_coverages_are_primary_first(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        coverages = _expect(
            await self._guarded(ehr).list_coverages(ehr_sample.patient_id), Sequence[Coverage], "EHR.list_coverages()"
        )
        ranks = [_RANK_ORDER[coverage.rank] for coverage in coverages]
        assert ranks == sorted(ranks), "coverages must be listed primary first"
        assert all(coverage.patient_id == ehr_sample.patient_id for coverage in coverages)

    async def test_write_coverage_is_idempotent(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        change = ehr_sample.new_coverage or _default_coverage(ehr_sample)
        add_key = _key("coverage-add")
        added = _expect(await guarded.write_coverage(change, add_key), Coverage | None, "EHR.write_coverage()")
        assert added is not None, "adding a coverage returns the stored coverage, not None"
        again = await guarded.write_coverage(change, add_key)
        assert again == added, "write_coverage with the same key must return the first call's coverage"
        assert (added.patient_id, added.rank, added.member_id) == (change.patient_id, change.rank, change.member_id)
        on_file = [coverage.id for coverage in await guarded.list_coverages(ehr_sample.patient_id)]
        assert on_file.count(added.id) == 1, f"the added coverage is listed {on_file.count(added.id)} times"

        removal = CoverageChange(patient_id=ehr_sample.patient_id, rank=added.rank, coverage_id=added.id, remove=True)
        remove_key = _key("coverage-remove")
        assert await guarded.write_coverage(removal, remove_key) is None, "removing a coverage returns None"
        assert await guarded.write_coverage(removal, remove_key) is None, "a repeated removal returns None again"
        on_file = [coverage.id for coverage in await guarded.list_coverages(ehr_sample.patient_id)]
        assert added.id not in on_file, "the removed coverage is still listed"

    async def test_scheduling_catalog_is_consistent(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        catalog = _expect(
            await self._guarded(ehr).read_scheduling_catalog(), SchedulingCatalog, "EHR.read_scheduling_catalog()"
        )
        visit_types = {visit_type.id for visit_type in catalog.visit_types}
        locations = {location.id for location in catalog.locations}
        assert ehr_sample.slot_query.visit_type_id in visit_types, "the sample's visit type is not in the catalog"
        for provider in catalog.providers:
            assert set(provider.location_ids) <= locations, f"provider {provider.id} names an unknown location"
            assert set(provider.visit_type_ids) <= visit_types, f"provider {provider.id} names an unknown visit type"

    async def test_find_slots_match_the_query_earliest_first(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        query = ehr_sample.slot_query
        slots = await self._open_slots(self._guarded(ehr), ehr_sample)
        starts = [slot.starts_at for slot in slots]
        assert starts == sorted(starts), "slots must be earliest first"
        for slot in slots:
            assert slot.visit_type_id == query.visit_type_id
            assert slot.starts_at < slot.ends_at, f"slot {slot.id} ends before it starts"
            assert query.location_id in (None, slot.location_id)
            assert query.provider_id in (None, slot.provider_id)

    async def test_book_is_idempotent(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        slot = (await self._open_slots(guarded, ehr_sample))[0]
        key = _key("book")
        booked = _expect(await guarded.book(ehr_sample.patient_id, slot.id, key), Appointment, "EHR.book()")
        try:
            again = await guarded.book(ehr_sample.patient_id, slot.id, key)
            assert again == booked, "book with the same key must return the first call's appointment"
            assert booked.status is AppointmentStatus.BOOKED
            assert (booked.patient_id, booked.starts_at, booked.ends_at) == (
                ehr_sample.patient_id,
                slot.starts_at,
                slot.ends_at,
            )
            listed = _expect(
                await guarded.list_appointments(ehr_sample.patient_id),
                Sequence[Appointment],
                "EHR.list_appointments()",
            )
            assert [appointment.id for appointment in listed].count(booked.id) == 1, "booked once, listed once"
            starts = [appointment.starts_at for appointment in listed]
            assert starts == sorted(starts), "appointments must be soonest first"
            still_open = [open_slot.id for open_slot in await guarded.find_slots(ehr_sample.slot_query)]
            assert slot.id not in still_open, "a booked slot is still offered as open"
        finally:
            await guarded.cancel(booked.id, "contract test clean-up", _key("cancel"))

    async def test_a_slot_cannot_be_booked_twice(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        slot = (await self._open_slots(guarded, ehr_sample))[0]
        booked = await guarded.book(ehr_sample.patient_id, slot.id, _key("book"))
        try:
            with pytest.raises(Refused) as refusal:
                await guarded.book(ehr_sample.patient_id, slot.id, _key("book-again"))
            assert refusal.value.code == "slot_taken", f"expected code 'slot_taken', got {refusal.value.code!r}"
        finally:
            await guarded.cancel(booked.id, "contract test clean-up", _key("cancel"))

    async def test_concurrent_bookings_of_one_slot_let_one_win(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        slot = (await self._open_slots(guarded, ehr_sample))[0]
        outcomes = await asyncio.gather(
            *(guarded.book(ehr_sample.patient_id, slot.id, _key(f"race-{n}")) for n in range(2)),
            return_exceptions=True,
        )
        won = [outcome for outcome in outcomes if isinstance(outcome, Appointment)]
        lost = [outcome for outcome in outcomes if isinstance(outcome, Refused) and outcome.code == "slot_taken"]
        try:
            assert (len(won), len(lost)) == (1, 1), f"two bookings of one slot at once gave {outcomes!r}"
        finally:
            for appointment in won:
                await guarded.cancel(appointment.id, "contract test clean-up", _key("cancel"))

    async def test_cancel_is_idempotent_and_frees_the_slot(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        slot = (await self._open_slots(guarded, ehr_sample))[0]
        booked = await guarded.book(ehr_sample.patient_id, slot.id, _key("book"))
        key = _key("cancel")
        cancelled = _expect(await guarded.cancel(booked.id, "contract test", key), Appointment, "EHR.cancel()")
        assert await guarded.cancel(booked.id, "contract test", key) == cancelled
        assert cancelled.id == booked.id
        assert cancelled.status is AppointmentStatus.CANCELLED
        listed = {appointment.id: appointment for appointment in await guarded.list_appointments(ehr_sample.patient_id)}
        if booked.id in listed:
            assert listed[booked.id].status is AppointmentStatus.CANCELLED
        reopened = [open_slot.id for open_slot in await guarded.find_slots(ehr_sample.slot_query)]
        assert slot.id in reopened, "cancelling must free the slot"

    async def test_post_payment_is_idempotent_and_applied_once(self, ehr: EHR, ehr_sample: EHRSample) -> None:
        guarded = self._guarded(ehr)
        patient = await guarded.read_patient(ehr_sample.patient_id)
        before = (await guarded.read_statement(ehr_sample.statement_id)).summary
        assert before.balance.amount > 0, "the sample statement must have a balance above zero"
        amount = Money(min(100, before.balance.amount), before.balance.currency)
        posting = PaymentPosting(
            patient_id=patient.id,
            account_number=before.account_number,
            amount=amount,
            gateway_reference=f"contract-{uuid.uuid4().hex}",
            paid_at=datetime.now(UTC),
            method="card",
            statement_id=ehr_sample.statement_id,
        )
        key = _key("post")
        receipt = _expect(await guarded.post_payment(posting, key), PostingReceipt, "EHR.post_payment()")
        assert await guarded.post_payment(posting, key) == receipt, "same key must return the first receipt"
        _expect(receipt.posted_at, datetime, "PostingReceipt.posted_at")
        after = (await guarded.read_statement(ehr_sample.statement_id)).summary
        # An EHR may post later (batch); if the balance moved, it moved by the amount exactly once.
        assert after.balance in (before.balance, before.balance - amount), (
            f"balance went from {before.balance.amount} to {after.balance.amount} after posting {amount.amount} twice"
            " with one key"
        )


# --- Clearinghouse contract -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClearinghouseSample:
    """Requests the payer behind the adapter under test knows how to answer."""

    eligible: EligibilityRequest
    """A coverage the payer reports as active."""
    unknown_member: EligibilityRequest
    """A coverage whose member id the payer does not know: answered with a rejection, not raised."""
    claim: ClaimStatusRequest
    """A claim the payer has a status for."""


@pytest.mark.asyncio
class ClearinghouseContract(_Suite):
    """The contract every clearinghouse adapter passes. Provide ``clearinghouse`` and ``clearinghouse_sample``."""

    @staticmethod
    def _guarded(clearinghouse: Clearinghouse) -> Clearinghouse:
        return _guard(clearinghouse, "Clearinghouse", Clearinghouse)

    async def test_implements_the_protocol(self, clearinghouse: Clearinghouse) -> None:
        _check_protocol(clearinghouse, Clearinghouse, "Clearinghouse")

    async def test_health_returns_health(self, clearinghouse: Clearinghouse) -> None:
        _expect(await self._guarded(clearinghouse).health(), Health, "Clearinghouse.health()")

    async def test_eligible_coverage_is_active(
        self, clearinghouse: Clearinghouse, clearinghouse_sample: ClearinghouseSample
    ) -> None:
        result = _expect(
            await self._guarded(clearinghouse).check_eligibility(clearinghouse_sample.eligible),
            EligibilityResult,
            "Clearinghouse.check_eligibility()",
        )
        assert result.active, f"the sample's eligible coverage came back inactive: {result}"
        assert result.rejection is None

    async def test_unknown_member_is_answered_with_a_rejection(
        self, clearinghouse: Clearinghouse, clearinghouse_sample: ClearinghouseSample
    ) -> None:
        result = _expect(
            await self._guarded(clearinghouse).check_eligibility(clearinghouse_sample.unknown_member),
            EligibilityResult,
            "Clearinghouse.check_eligibility()",
        )
        assert not result.active, "an unknown member must not be reported active"
        assert result.rejection is not None, "an unknown member is answered with EligibilityResult.rejection"

    async def test_claim_status(self, clearinghouse: Clearinghouse, clearinghouse_sample: ClearinghouseSample) -> None:
        statuses = _expect(
            await self._guarded(clearinghouse).claim_status(clearinghouse_sample.claim),
            Sequence[ClaimStatus],
            "Clearinghouse.claim_status()",
        )
        assert statuses, "the sample claim has a status with the payer"


# --- Gateway contract -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GatewaySample:
    """Things that exist at the gateway behind the adapter under test (its test mode)."""

    customer_reference: str
    saved_method: str
    """A saved method of that customer that the gateway charges successfully."""
    declining_method: str
    """A saved method of that customer whose charges the gateway declines."""
    webhook_body: bytes
    """A notification body exactly as the gateway sends it."""
    sign: Callable[[bytes], Mapping[str, str]]
    """The headers that make a body verify now, as the gateway would sign it."""
    currency: str = "USD"
    plugin: object | None = None
    """The plugin (its hooks module) that registers the adapter, with ``adapter_name``: the suite then
    checks the :class:`~carefront_sdk.models.GatewayPage` it declares. Needed when checkouts are
    ``kind="element"``: without a page nothing mounts the element."""
    adapter_name: str | None = None
    """The name the plugin registers the adapter under (``registry.add(name, ...)``)."""


@pytest.mark.asyncio
class GatewayContract(_Suite):
    """The contract every payment gateway adapter passes. Provide ``gateway`` and ``gateway_sample``."""

    @staticmethod
    def _guarded(gateway: PaymentGateway) -> PaymentGateway:
        return _guard(gateway, "PaymentGateway", PaymentGateway)

    @staticmethod
    def _checkout_request(sample: GatewaySample) -> CheckoutRequest:
        return CheckoutRequest(
            amount=Money(2500, sample.currency),
            description="Contract test payment",
            customer_reference=sample.customer_reference,
            return_url="https://portal.test/payments/return",
            cancel_url="https://portal.test/payments/cancel",
        )

    async def _charge(self, gateway: PaymentGateway, sample: GatewaySample, key: str) -> Payment:
        charge = OffSessionCharge(
            method_reference=sample.saved_method,
            customer_reference=sample.customer_reference,
            amount=Money(2500, sample.currency),
            description="Contract test installment",
        )
        return _expect(await gateway.charge_saved_method(charge, key), Payment, "PaymentGateway.charge_saved_method()")

    async def test_implements_the_protocol(self, gateway: PaymentGateway) -> None:
        _check_protocol(gateway, PaymentGateway, "PaymentGateway")

    async def test_health_returns_health(self, gateway: PaymentGateway) -> None:
        _expect(await self._guarded(gateway).health(), Health, "PaymentGateway.health()")

    async def test_start_checkout_is_idempotent(self, gateway: PaymentGateway, gateway_sample: GatewaySample) -> None:
        guarded = self._guarded(gateway)
        request = self._checkout_request(gateway_sample)
        key = _key("checkout")
        checkout = _expect(await guarded.start_checkout(request, key), Checkout, "PaymentGateway.start_checkout()")
        assert await guarded.start_checkout(request, key) == checkout, "same key must return the first checkout"
        if checkout.kind is CheckoutKind.REDIRECT:
            assert checkout.url, "a redirect checkout needs a url"
        else:
            assert checkout.client_secret, "an element checkout needs a client_secret"

    async def test_a_new_checkout_reads_back_as_pending(
        self, gateway: PaymentGateway, gateway_sample: GatewaySample
    ) -> None:
        guarded = self._guarded(gateway)
        request = self._checkout_request(gateway_sample)
        checkout = await guarded.start_checkout(request, _key("checkout"))
        payment = _expect(await guarded.read_payment(checkout.reference), Payment, "PaymentGateway.read_payment()")
        assert payment.amount == request.amount
        assert payment.status in (PaymentStatus.PENDING, PaymentStatus.REQUIRES_ACTION), payment.status

    async def test_start_saving_method_is_idempotent(
        self, gateway: PaymentGateway, gateway_sample: GatewaySample
    ) -> None:
        guarded = self._guarded(gateway)
        request = SaveMethodRequest(
            customer_reference=gateway_sample.customer_reference,
            return_url="https://portal.test/autopay/return",
            cancel_url="https://portal.test/autopay/cancel",
        )
        key = _key("save-method")
        checkout = _expect(
            await guarded.start_saving_method(request, key), Checkout, "PaymentGateway.start_saving_method()"
        )
        assert await guarded.start_saving_method(request, key) == checkout

    async def test_read_saved_method(self, gateway: PaymentGateway, gateway_sample: GatewaySample) -> None:
        method = _expect(
            await self._guarded(gateway).read_saved_method(gateway_sample.saved_method),
            SavedMethod,
            "PaymentGateway.read_saved_method()",
        )
        assert method.reference == gateway_sample.saved_method
        assert method.customer_reference == gateway_sample.customer_reference

    async def test_charge_saved_method_is_idempotent(
        self, gateway: PaymentGateway, gateway_sample: GatewaySample
    ) -> None:
        guarded = self._guarded(gateway)
        key = _key("charge")
        payment = await self._charge(guarded, gateway_sample, key)
        assert await self._charge(guarded, gateway_sample, key) == payment, "same key must return the first payment"
        assert payment.status is PaymentStatus.SUCCEEDED, payment
        assert payment.amount == Money(2500, gateway_sample.currency)
        read = await guarded.read_payment(payment.reference)
        assert (read.reference, read.amount, read.status) == (payment.reference, payment.amount, payment.status)

    async def test_a_declined_charge_is_refused(self, gateway: PaymentGateway, gateway_sample: GatewaySample) -> None:
        charge = OffSessionCharge(
            method_reference=gateway_sample.declining_method,
            customer_reference=gateway_sample.customer_reference,
            amount=Money(2500, gateway_sample.currency),
            description="Contract test installment",
        )
        with pytest.raises(Refused) as refusal:
            await self._guarded(gateway).charge_saved_method(charge, _key("decline"))
        assert not isinstance(refusal.value, NotFound), "the declining method must exist; it is the charge that fails"

    async def test_refund_is_idempotent_and_never_exceeds_the_payment(
        self, gateway: PaymentGateway, gateway_sample: GatewaySample
    ) -> None:
        guarded = self._guarded(gateway)
        payment = await self._charge(guarded, gateway_sample, _key("charge"))
        request = RefundRequest(payment_reference=payment.reference, amount=payment.amount, reason="contract test")
        key = _key("refund")
        refund = _expect(await guarded.refund(request, key), Refund, "PaymentGateway.refund()")
        assert await guarded.refund(request, key) == refund, "same key must return the first refund"
        assert (refund.payment_reference, refund.amount) == (payment.reference, payment.amount)
        # Had the repeated call refunded again, the payment would be over-refunded by now.
        one_more = RefundRequest(payment.reference, Money(1, payment.amount.currency), "contract test")
        with pytest.raises(Refused):
            await guarded.refund(one_more, _key("refund-more"))

    async def test_unknown_references_raise_not_found(
        self, gateway: PaymentGateway, gateway_sample: GatewaySample
    ) -> None:
        guarded = self._guarded(gateway)
        unknown = f"carefront_contract_unknown_{uuid.uuid4().hex}"
        with pytest.raises(NotFound):
            await guarded.read_payment(unknown)
        with pytest.raises(NotFound):
            await guarded.read_saved_method(unknown)
        with pytest.raises(NotFound):
            await guarded.refund(RefundRequest(unknown, Money(100, gateway_sample.currency), "test"), _key("refund"))
        charge = OffSessionCharge(unknown, gateway_sample.customer_reference, Money(100, gateway_sample.currency), "")
        with pytest.raises(NotFound):
            await guarded.charge_saved_method(charge, _key("charge"))

    async def test_parse_webhook_accepts_a_signed_body(
        self, gateway: PaymentGateway, gateway_sample: GatewaySample
    ) -> None:
        body = gateway_sample.webhook_body
        event = await self._guarded(gateway).parse_webhook(body, gateway_sample.sign(body))
        _expect(event, WebhookEvent, "PaymentGateway.parse_webhook()")

    async def test_parse_webhook_rejects_a_tampered_body(
        self, gateway: PaymentGateway, gateway_sample: GatewaySample
    ) -> None:
        guarded = self._guarded(gateway)
        body = gateway_sample.webhook_body
        headers = gateway_sample.sign(body)
        with pytest.raises(WebhookRejected):
            await guarded.parse_webhook(body + b" ", headers)
        with pytest.raises(WebhookRejected):
            await guarded.parse_webhook(body.replace(b"0", b"1", 1) if b"0" in body else b"{}", headers)
        with pytest.raises(WebhookRejected):
            await guarded.parse_webhook(body, {})

    async def test_an_element_checkout_declares_a_page_that_mounts_it(
        self, gateway: PaymentGateway, gateway_sample: GatewaySample
    ) -> None:
        checkout = await self._guarded(gateway).start_checkout(self._checkout_request(gateway_sample), _key("page"))
        page = self._declared_page(gateway_sample)
        if checkout.kind is CheckoutKind.ELEMENT:
            assert page is not None, (
                "an element checkout needs a GatewayPage: registry.add(name, factory, page=GatewayPage(...)),"
                " and GatewaySample(plugin=<hooks module>, adapter_name=<name>) so the suite can check it"
            )
            assert page.scripts, "the GatewayPage of an element checkout must list the scripts that mount it"

    async def test_the_declared_page_loads_only_what_it_allows_and_serves(self, gateway_sample: GatewaySample) -> None:
        page = self._declared_page(gateway_sample)
        if page is None:
            pytest.skip("no GatewayPage declared (or GatewaySample names no plugin)")
        served = _static_dirs(gateway_sample.plugin)
        allowed = set(page.csp.get("script-src", ()))
        for script in page.scripts:
            if script.startswith("https://"):
                origin = "https://" + script.removeprefix("https://").split("/", 1)[0]
                assert origin in allowed, f"{script} is loaded, but {origin} is not in the page's script-src"
                continue
            _, name, file = script.split("/", 2)  # plugins/<name>/<file>, as GatewayPage checked
            assert name in served, f"{script}: the plugin serves no static folder {name!r} (carefront_static_dirs)"
            assert (served[name] / file).is_file(), f"{script}: no file {file!r} in {served[name]}"

    @staticmethod
    def _declared_page(sample: GatewaySample) -> GatewayPage | None:
        if sample.plugin is None or sample.adapter_name is None:
            return None
        return _registration(sample.plugin, Port.GATEWAY, sample.adapter_name).page


# --- Notifier contract ----------------------------------------------------------------------------


def _invalid_addresses() -> dict[Channel, str]:
    return {Channel.EMAIL: "not-an-address", Channel.SMS: "not-a-number"}


@dataclass(frozen=True, slots=True)
class NotifierSample:
    """Addresses for the notifier under test (its provider's test mode)."""

    addresses: Mapping[Channel, str]
    """For each channel the notifier has, an address the provider accepts."""
    invalid_addresses: Mapping[Channel, str] = field(default_factory=_invalid_addresses)
    """For each channel, an address the provider will never accept."""


@pytest.mark.asyncio
class NotifierContract(_Suite):
    """The contract every notifier passes. Provide fixtures ``notifier`` and ``notifier_sample``."""

    @staticmethod
    def _guarded(notifier: Notifier) -> Notifier:
        return _guard(notifier, "Notifier", Notifier)

    @staticmethod
    def _message(channel: Channel, to: str) -> Message:
        return Message(
            channel=channel,
            to=to,
            subject="Carefront contract test" if channel is Channel.EMAIL else "",
            text="This is a test message from the Carefront contract suite.",
        )

    async def test_implements_the_protocol(self, notifier: Notifier) -> None:
        _check_protocol(notifier, Notifier, "Notifier")
        _expect(notifier.channels, frozenset[Channel], "Notifier.channels")
        assert notifier.channels, "a notifier delivers at least one channel"

    async def test_health_returns_health(self, notifier: Notifier) -> None:
        _expect(await self._guarded(notifier).health(), Health, "Notifier.health()")

    async def test_send_is_idempotent(self, notifier: Notifier, notifier_sample: NotifierSample) -> None:
        guarded = self._guarded(notifier)
        for channel in sorted(notifier.channels):
            if channel not in notifier_sample.addresses:
                pytest.fail(f"notifier_sample.addresses has no {channel.value} address", pytrace=False)
            message = self._message(channel, notifier_sample.addresses[channel])
            key = _key(f"send-{channel.value}")
            delivery = _expect(await guarded.send(message, key), Delivery, "Notifier.send()")
            assert await guarded.send(message, key) == delivery, "same key must return the first delivery"

    async def test_an_invalid_address_is_refused(self, notifier: Notifier, notifier_sample: NotifierSample) -> None:
        guarded = self._guarded(notifier)
        for channel in sorted(notifier.channels):
            message = self._message(channel, notifier_sample.invalid_addresses[channel])
            with pytest.raises(Refused):
                await guarded.send(message, _key(f"invalid-{channel.value}"))


# --- Fakes ----------------------------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _zone(name: str) -> tzinfo:
    # UTC needs no tz database, which Windows lacks unless the tzdata package is installed.
    return UTC if name == "UTC" else ZoneInfo(name)


@dataclass(frozen=True, slots=True)
class _Raised:
    error: Refused


class _Fake:
    """State every fake shares: a clock, a switch to play dead, and remembered outcomes per key.

    Set ``down`` to True and every method raises ``Unavailable``, as a vendor that is down would.
    """

    def __init__(self, clock: Callable[[], datetime] | None) -> None:
        self.clock = clock or _utc_now
        self.down = False
        self._outcomes: dict[tuple[str, str], object] = {}
        self._counter = itertools.count(1)
        self._seeded = False

    def _check_up(self) -> None:
        if self.down:
            raise Unavailable(f"{type(self).__name__} is down (fake.down is True)")

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter)}"

    def _once(self, operation: str, key: str, action: Callable[[], T]) -> T:
        """Run ``action`` once per (operation, key): later calls get its result or its refusal again."""
        self._check_up()
        slot = (operation, key)
        if slot in self._outcomes:
            outcome = self._outcomes[slot]
            if isinstance(outcome, _Raised):
                raise outcome.error
            return cast(T, outcome)
        try:
            result = action()
        except Refused as error:
            self._outcomes[slot] = _Raised(error)
            raise
        self._outcomes[slot] = result
        return result

    def _require_seeded(self) -> None:
        if not self._seeded:
            raise RuntimeError(f"sample describes the data of {type(self).__name__}.seeded(); this fake is empty")


_ALEX = Patient(
    id="pat-1",
    mrn="MRN1001",
    given_name="Alex",
    family_name="Rivera",
    birth_date=date(1985, 4, 12),
    account_number="ACC1001",
    email="alex.rivera@example.org",
    phone="+15555550101",
    address="12 Elm Street, Springfield, IL 62701",
)
_SAM = Patient(
    id="pat-2",
    mrn="MRN1002",
    given_name="Sam",
    family_name="Rivera",
    birth_date=date(2015, 9, 1),
    account_number="ACC1001",
    address="12 Elm Street, Springfield, IL 62701",
)
_ALEX_COVERAGE = Coverage(
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


def _usd(cents: int) -> Money:
    return Money(cents)


def _line(
    line_id: str,
    visit_id: str,
    day: date,
    code: str,
    description: str,
    charged: int,
    paid: int,
    *adjustments: Adjustment,
) -> ChargeLine:
    reductions = sum(adjustment.amount.amount for adjustment in adjustments if adjustment.group_code != "PR")
    return ChargeLine(
        id=line_id,
        visit_id=visit_id,
        service_date=day,
        code=code,
        code_system="CPT",
        description=description,
        provider="Dr. Jordan Lee",
        quantity=1,
        charged=_usd(charged),
        insurance_paid=_usd(paid),
        adjustments=adjustments,
        patient_owes=_usd(charged - paid - reductions),
    )


def _statement(
    statement_id: str, code: str, issued_on: date, visits: tuple[Visit, ...], lines: tuple[ChargeLine, ...], paid: int
) -> Statement:
    owed = sum(line.patient_owes.amount for line in lines)
    return Statement(
        summary=StatementSummary(
            id=statement_id,
            patient_id="pat-1",
            account_number="ACC1001",
            statement_code=code,
            issued_on=issued_on,
            due_on=issued_on + timedelta(days=30),
            total_charged=_usd(sum(line.charged.amount for line in lines)),
            insurance_paid=_usd(sum(line.insurance_paid.amount for line in lines)),
            adjustments=_usd(sum(amount.amount for line in lines for amount in _reductions(line))),
            patient_paid=_usd(paid),
            balance=_usd(owed - paid),
        ),
        visits=visits,
        lines=lines,
    )


def _seed_statements() -> list[Statement]:
    december_visit = Visit("visit-1", date(2024, 12, 10), "Office visit", "Family medicine", "Dr. Jordan Lee")
    january_visit = Visit("visit-2", date(2025, 1, 14), "Office visit", "Family medicine", "Dr. Jordan Lee")
    older = _statement(
        "stmt-1",
        "SC3K9P1",
        date(2025, 1, 2),
        (december_visit,),
        (
            _line(
                "line-1",
                "visit-1",
                december_visit.started_on,
                "99214",
                "Office visit, established patient",
                12000,
                8000,
                Adjustment(_usd(2000), "CO", "45"),
                Adjustment(_usd(2000), "PR", "3"),
            ),
        ),
        paid=2000,
    )
    newer = _statement(
        "stmt-2",
        "SC7Q4M2",
        date(2025, 2, 1),
        (january_visit,),
        (
            _line(
                "line-2",
                "visit-2",
                january_visit.started_on,
                "99213",
                "Office visit, established patient",
                18000,
                9000,
                Adjustment(_usd(4000), "CO", "45"),
                Adjustment(_usd(5000), "PR", "1", ("N130",)),
            ),
            _line(
                "line-3",
                "visit-2",
                january_visit.started_on,
                "80053",
                "Comprehensive metabolic panel",
                6000,
                0,
                Adjustment(_usd(1500), "CO", "45"),
                Adjustment(_usd(4500), "PR", "1"),
            ),
        ),
        paid=0,
    )
    return [older, newer]


class FakeEHR(_Fake):
    """An in-memory EHR that keeps the whole contract: matching, statements, coverage, booking, postings.

    ``FakeEHR.seeded()`` holds a small hospital that ``fake.sample`` describes: Alex Rivera (pat-1)
    with two statements (stmt-2 has a balance of $95.00), an Aetna primary coverage, and his son Sam
    (pat-2) for whom Alex is guardian; one clinic, one provider, and open follow-up slots two days
    after the clock's today. Or start empty and ``add_*`` what a test needs. A patient holds at most
    one coverage per rank: adding a second primary replaces the first.
    """

    def __init__(self, *, clock: Callable[[], datetime] | None = None, time_zone: str = "UTC") -> None:
        super().__init__(clock)
        self.time_zone = time_zone
        self.patients: dict[str, Patient] = {}
        self.related_persons: list[RelatedPerson] = []
        self.statements: dict[str, Statement] = {}
        self.coverages: dict[str, Coverage] = {}
        self.catalog = SchedulingCatalog((), (), ())
        self.slots: dict[str, Slot] = {}
        self.appointments: dict[str, Appointment] = {}
        self.postings: list[PaymentPosting] = []
        """Every payment posted, once per idempotency key."""
        self._slot_day: date | None = None

    @classmethod
    def seeded(cls, *, clock: Callable[[], datetime] | None = None, time_zone: str = "UTC") -> FakeEHR:
        ehr = cls(clock=clock, time_zone=time_zone)
        ehr.add_patient(_ALEX)
        ehr.add_patient(_SAM)
        ehr.add_related_person(
            RelatedPerson(
                id="rp-1",
                patient_id="pat-2",
                given_name="Alex",
                family_name="Rivera",
                relationship="parent",
                access=ProxyAccess.GUARDIAN,
                birth_date=_ALEX.birth_date,
                email=_ALEX.email,
                patient_id_of_proxy="pat-1",
            )
        )
        for statement in _seed_statements():
            ehr.add_statement(statement)
        ehr.add_coverage(_ALEX_COVERAGE)
        ehr.catalog = SchedulingCatalog(
            visit_types=(
                VisitType("vt-follow-up", "Follow-up visit", 20, True, "Bring your medication list."),
                VisitType("vt-new", "New patient visit", 40, True, "Arrive 15 minutes early."),
                VisitType("vt-mri", "MRI", 60, False, call_phone="+15555550199"),
            ),
            locations=(Location("loc-main", "Main Street Clinic", "100 Main Street, Springfield", "+15555550100"),),
            providers=(
                Provider("prov-lee", "Dr. Jordan Lee", "Family medicine", ("loc-main",), ("vt-follow-up", "vt-new")),
            ),
        )
        zone = _zone(time_zone)
        day = ehr.clock().astimezone(zone).date() + timedelta(days=2)
        for hour, minute in ((9, 0), (9, 30), (10, 0), (10, 30)):
            starts = datetime.combine(day, time(hour, minute), tzinfo=zone)
            ehr.add_slot(
                Slot(
                    f"slot-{day:%Y%m%d}-{hour:02}{minute:02}",
                    starts,
                    starts + timedelta(minutes=20),
                    "prov-lee",
                    "loc-main",
                    "vt-follow-up",
                )
            )
        ehr._slot_day = day
        ehr._seeded = True
        return ehr

    @property
    def sample(self) -> EHRSample:
        """The :class:`EHRSample` for the data of :meth:`seeded`."""
        self._require_seeded()
        assert self._slot_day is not None
        return EHRSample(
            match=PatientQuery("Alex", "Rivera", _ALEX.birth_date, mrn=_ALEX.mrn),
            patient_id="pat-1",
            statement_id="stmt-2",
            slot_query=SlotQuery("vt-follow-up", self._slot_day),
        )

    # Seeding, for tests.

    def add_patient(self, patient: Patient) -> Patient:
        self.patients[patient.id] = patient
        return patient

    def add_related_person(self, person: RelatedPerson) -> RelatedPerson:
        self.related_persons.append(person)
        return person

    def add_statement(self, statement: Statement) -> Statement:
        """Add a statement; refused with ValueError unless it adds up (see :func:`statement_problems`)."""
        problems = statement_problems(statement)
        if problems:
            raise ValueError("statement does not add up: " + "; ".join(problems))
        self.statements[statement.summary.id] = statement
        return statement

    def add_coverage(self, coverage: Coverage) -> Coverage:
        self.coverages[coverage.id] = coverage
        return coverage

    def add_slot(self, slot: Slot) -> Slot:
        self.slots[slot.id] = slot
        return slot

    # The EHR protocol.

    def _patient(self, patient_id: str) -> Patient:
        self._check_up()
        if patient_id not in self.patients:
            raise NotFound("patient", patient_id)
        return self.patients[patient_id]

    async def health(self) -> Health:
        return Health(ok=not self.down, detail="in-memory fake EHR")

    async def match_patient(self, query: PatientQuery) -> Sequence[Patient]:
        self._check_up()

        def same(a: str, b: str) -> bool:
            return a.strip().casefold() == b.strip().casefold()

        codes = {s.summary.statement_code: s.summary.patient_id for s in self.statements.values()}
        return [
            patient
            for patient in self.patients.values()
            if same(patient.given_name, query.given_name)
            and same(patient.family_name, query.family_name)
            and patient.birth_date == query.birth_date
            and (
                (query.mrn is not None and same(query.mrn, patient.mrn))
                or (query.account_number is not None and same(query.account_number, patient.account_number))
                or (query.statement_code is not None and codes.get(query.statement_code.strip().upper()) == patient.id)
            )
        ]

    async def search_patients(self, query: PatientSearch) -> Sequence[Patient]:
        self._check_up()
        given, family = query.name_parts
        codes = {s.summary.statement_code: s.summary.patient_id for s in self.statements.values()}

        def same(a: str, b: str) -> bool:
            return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()

        def fits(patient: Patient) -> bool:
            return (
                (not family or same(patient.family_name, family))
                and (given is None or same(patient.given_name, given))
                and (query.birth_date is None or patient.birth_date == query.birth_date)
                and (query.mrn is None or same(query.mrn, patient.mrn))
                and (query.account_number is None or same(query.account_number, patient.account_number))
                and (not query.phone or "".join(filter(str.isdigit, patient.phone or "")).endswith(query.phone_digits))
                and (query.statement_code is None or codes.get(query.statement_code.strip().upper()) == patient.id)
            )

        found = sorted(filter(fits, self.patients.values()), key=lambda p: (p.family_name, p.given_name, p.id))
        return found[: query.limit]

    async def read_patient(self, patient_id: str) -> Patient:
        return self._patient(patient_id)

    async def list_related_persons(self, patient_id: str) -> Sequence[RelatedPerson]:
        self._patient(patient_id)
        return [person for person in self.related_persons if person.patient_id == patient_id]

    async def list_statements(self, patient_id: str) -> Sequence[StatementSummary]:
        self._patient(patient_id)
        summaries = [s.summary for s in self.statements.values() if s.summary.patient_id == patient_id]
        return sorted(summaries, key=lambda summary: summary.issued_on, reverse=True)

    async def read_statement(self, statement_id: str) -> Statement:
        self._check_up()
        if statement_id not in self.statements:
            raise NotFound("statement", statement_id)
        return self.statements[statement_id]

    async def find_statement_by_code(self, statement_code: str) -> StatementSummary:
        self._check_up()
        wanted = statement_code.strip().upper()
        for statement in self.statements.values():
            if statement.summary.statement_code == wanted:
                return statement.summary
        raise NotFound("statement", statement_code)

    async def list_coverages(self, patient_id: str) -> Sequence[Coverage]:
        self._patient(patient_id)
        mine = [coverage for coverage in self.coverages.values() if coverage.patient_id == patient_id]
        return sorted(mine, key=lambda coverage: _RANK_ORDER[coverage.rank])

    async def write_coverage(self, change: CoverageChange, idempotency_key: str) -> Coverage | None:
        return self._once("write_coverage", idempotency_key, lambda: self._write_coverage(change))

    def _write_coverage(self, change: CoverageChange) -> Coverage | None:
        self._patient(change.patient_id)
        if change.coverage_id is not None and change.coverage_id not in self.coverages:
            raise NotFound("coverage", change.coverage_id)
        if change.remove:
            if change.coverage_id is None:
                raise Refused("invalid_coverage", "Choose the coverage to remove.")
            del self.coverages[change.coverage_id]
            return None
        born = change.subscriber_birth_date
        if born is None or not (change.payer_id and change.member_id and change.subscriber_name):
            raise Refused("invalid_coverage", "Enter the insurer, member ID and the subscriber's name and birth date.")
        for held in list(self.coverages.values()):
            if held.patient_id == change.patient_id and held.rank == change.rank and held.id != change.coverage_id:
                del self.coverages[held.id]
        coverage = Coverage(
            id=change.coverage_id or self._new_id("cov-"),
            patient_id=change.patient_id,
            rank=change.rank,
            payer_id=change.payer_id,
            payer_name=change.payer_name,
            plan_name=change.plan_name,
            member_id=change.member_id,
            group_number=change.group_number,
            subscriber_name=change.subscriber_name,
            subscriber_birth_date=born,
            relationship=change.relationship,
            starts_on=change.starts_on or self.clock().date(),
        )
        self.coverages[coverage.id] = coverage
        return coverage

    async def read_scheduling_catalog(self) -> SchedulingCatalog:
        self._check_up()
        return self.catalog

    async def list_appointments(self, patient_id: str) -> Sequence[Appointment]:
        self._patient(patient_id)
        mine = [appointment for appointment in self.appointments.values() if appointment.patient_id == patient_id]
        return sorted(mine, key=lambda appointment: appointment.starts_at)

    def _taken(self) -> set[str]:
        return {
            appointment.slot_id
            for appointment in self.appointments.values()
            if appointment.slot_id and appointment.status is AppointmentStatus.BOOKED
        }

    async def find_slots(self, query: SlotQuery) -> Sequence[Slot]:
        self._check_up()
        zone, taken = _zone(self.time_zone), self._taken()
        found = [
            slot
            for slot in self.slots.values()
            if slot.id not in taken
            and slot.visit_type_id == query.visit_type_id
            and slot.starts_at.astimezone(zone).date() == query.day
            and query.location_id in (None, slot.location_id)
            and query.provider_id in (None, slot.provider_id)
        ]
        return sorted(found, key=lambda slot: slot.starts_at)

    async def book(self, patient_id: str, slot_id: str, idempotency_key: str) -> Appointment:
        return self._once("book", idempotency_key, lambda: self._book(patient_id, slot_id))

    def _book(self, patient_id: str, slot_id: str) -> Appointment:
        self._patient(patient_id)
        if slot_id not in self.slots:
            raise NotFound("slot", slot_id)
        if slot_id in self._taken():
            raise Refused("slot_taken", "Someone has just taken that time. Please choose another.")
        slot = self.slots[slot_id]
        instructions = {visit_type.id: visit_type.instructions for visit_type in self.catalog.visit_types}
        appointment = Appointment(
            id=self._new_id("appt-"),
            patient_id=patient_id,
            status=AppointmentStatus.BOOKED,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            visit_type_id=slot.visit_type_id,
            provider_id=slot.provider_id,
            location_id=slot.location_id,
            slot_id=slot.id,
            instructions=instructions.get(slot.visit_type_id, ""),
        )
        self.appointments[appointment.id] = appointment
        return appointment

    async def cancel(self, appointment_id: str, reason: str, idempotency_key: str) -> Appointment:
        return self._once("cancel", idempotency_key, lambda: self._cancel(appointment_id))

    def _cancel(self, appointment_id: str) -> Appointment:
        if appointment_id not in self.appointments:
            raise NotFound("appointment", appointment_id)
        cancelled = dataclasses.replace(self.appointments[appointment_id], status=AppointmentStatus.CANCELLED)
        self.appointments[appointment_id] = cancelled
        return cancelled

    async def post_payment(self, posting: PaymentPosting, idempotency_key: str) -> PostingReceipt:
        return self._once("post_payment", idempotency_key, lambda: self._post(posting))

    def _post(self, posting: PaymentPosting) -> PostingReceipt:
        self._patient(posting.patient_id)
        if posting.statement_id is not None:
            if posting.statement_id not in self.statements:
                raise NotFound("statement", posting.statement_id)
            statement = self.statements[posting.statement_id]
            summary = statement.summary
            if summary.patient_id != posting.patient_id:
                raise Refused("wrong_statement", "That statement belongs to another patient.")
            if summary.balance.currency != posting.amount.currency:
                raise Refused("wrong_currency", f"Payments on this statement are in {summary.balance.currency}.")
            paid = dataclasses.replace(
                summary, patient_paid=summary.patient_paid + posting.amount, balance=summary.balance - posting.amount
            )
            self.statements[summary.id] = dataclasses.replace(statement, summary=paid)
        self.postings.append(posting)
        return PostingReceipt(reference=self._new_id("posting-"), posted_at=self.clock())


class FakeClearinghouse(_Fake):
    """An in-memory clearinghouse: payers know members (active or not) and claims.

    ``FakeClearinghouse.seeded()`` knows Alex Rivera's Aetna member id W100200300 as active with a
    $25 office copay, and claim CLM-1001 as finalized and paid; any other member id is rejected with
    AAA reason 72 and any other claim answers category A4 (not found), as payers do.
    """

    def __init__(self, *, clock: Callable[[], datetime] | None = None) -> None:
        super().__init__(clock)
        self.members: dict[str, EligibilityResult] = {}
        self.claims: dict[str, list[ClaimStatus]] = {}
        self.requests: list[EligibilityRequest] = []
        """Every eligibility request received, in order."""

    @classmethod
    def seeded(cls, *, clock: Callable[[], datetime] | None = None) -> FakeClearinghouse:
        clearinghouse = cls(clock=clock)
        clearinghouse.add_member(
            _ALEX_COVERAGE.member_id,
            payer_name=_ALEX_COVERAGE.payer_name,
            plan_name=_ALEX_COVERAGE.plan_name,
            benefits=(
                EligibilityBenefit("copay", "98", True, amount=_usd(2500), period="visit"),
                EligibilityBenefit(
                    "deductible", "30", True, amount=_usd(150000), remaining=_usd(40000), period="calendar_year"
                ),
                EligibilityBenefit("coinsurance", "30", True, percent=20),
                EligibilityBenefit(
                    "out_of_pocket", "30", True, amount=_usd(600000), remaining=_usd(410000), period="calendar_year"
                ),
            ),
        )
        clearinghouse.add_claim_status(
            ClaimStatus(
                "CLM-1001", "F1", "65", "Finalized: the claim has been paid.", clearinghouse.clock(), paid=_usd(9000)
            )
        )
        clearinghouse._seeded = True
        return clearinghouse

    @property
    def sample(self) -> ClearinghouseSample:
        """The :class:`ClearinghouseSample` for the data of :meth:`seeded`."""
        self._require_seeded()
        unknown = dataclasses.replace(_ALEX_COVERAGE, member_id="X000000000")
        return ClearinghouseSample(
            eligible=EligibilityRequest(coverage=_ALEX_COVERAGE, patient=_ALEX),
            unknown_member=EligibilityRequest(coverage=unknown, patient=_ALEX),
            claim=ClaimStatusRequest(_ALEX, _ALEX_COVERAGE, "CLM-1001", date(2025, 1, 14), _usd(18000)),
        )

    def add_member(
        self,
        member_id: str,
        *,
        active: bool = True,
        payer_name: str = "Test Payer",
        plan_name: str | None = None,
        benefits: tuple[EligibilityBenefit, ...] = (),
    ) -> None:
        self.members[member_id] = EligibilityResult(
            active=active, checked_at=self.clock(), payer_name=payer_name, plan_name=plan_name, benefits=benefits
        )

    def add_claim_status(self, status: ClaimStatus) -> None:
        self.claims.setdefault(status.claim_id, []).append(status)

    async def health(self) -> Health:
        return Health(ok=not self.down, detail="in-memory fake clearinghouse")

    async def check_eligibility(self, request: EligibilityRequest) -> EligibilityResult:
        self._check_up()
        self.requests.append(request)
        trace = self._new_id("TRN")
        known = self.members.get(request.coverage.member_id)
        if known is None:
            return EligibilityResult(
                active=False,
                checked_at=self.clock(),
                payer_name=request.coverage.payer_name,
                rejection=EligibilityRejection("72", "Invalid/Missing Subscriber/Insured ID", "C"),
                trace_number=trace,
            )
        return dataclasses.replace(known, checked_at=self.clock(), trace_number=trace)

    async def claim_status(self, request: ClaimStatusRequest) -> Sequence[ClaimStatus]:
        self._check_up()
        if request.claim_id in self.claims:
            return list(self.claims[request.claim_id])
        return [ClaimStatus(request.claim_id, "A4", "35", "The payer has no record of this claim.", self.clock())]


_SIGNATURE_HEADER = "fake-signature"
_SIGNATURE_TOLERANCE = timedelta(minutes=5)


class FakeGateway(_Fake):
    """An in-memory payment gateway in the manner of a hosted checkout, with signed webhooks.

    ``FakeGateway.seeded()`` has customer cus_1 with two saved cards: pm_visa (charges succeed) and
    pm_declines (charges are declined). A test plays the patient with :meth:`complete_checkout` and
    :meth:`complete_saving_method`, and plays the gateway's notification with :meth:`event_body` and
    :meth:`sign` (header ``Fake-Signature: t=<unix time>,v1=<HMAC-SHA256 hex of "t." + body>``,
    accepted for five minutes by the fake's clock).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        signing_key: bytes = b"fake-gateway-signing-key",
        hosted_url: str = "https://gateway.test",
    ) -> None:
        super().__init__(clock)
        self.signing_key = signing_key
        self.hosted_url = hosted_url
        self.checkouts: dict[str, CheckoutRequest | SaveMethodRequest] = {}
        """What each checkout (payment or saving a method) was started for, by reference."""
        self.payments: dict[str, Payment] = {}
        self.saved_methods: dict[str, SavedMethod] = {}
        self.declining_methods: set[str] = set()
        self.refunds: dict[str, Refund] = {}
        self._checkout_payments: dict[str, str] = {}

    @classmethod
    def seeded(cls, *, clock: Callable[[], datetime] | None = None) -> FakeGateway:
        gateway = cls(clock=clock)
        gateway.add_saved_method(SavedMethod("pm_visa", "cus_1", "Visa ending 4242", "12/2030"))
        gateway.add_saved_method(SavedMethod("pm_declines", "cus_1", "Visa ending 0002", "12/2030"), declines=True)
        gateway._seeded = True
        return gateway

    @property
    def sample(self) -> GatewaySample:
        """The :class:`GatewaySample` for the data of :meth:`seeded`."""
        self._require_seeded()
        paid = Payment("pay_0", PaymentStatus.SUCCEEDED, _usd(2500), "card", "Visa ending 4242")
        return GatewaySample(
            customer_reference="cus_1",
            saved_method="pm_visa",
            declining_method="pm_declines",
            webhook_body=self.event_body("payment.succeeded", payment=paid),
            sign=self.sign,
        )

    # Playing the patient and the gateway, for tests.

    def add_saved_method(self, method: SavedMethod, *, declines: bool = False) -> SavedMethod:
        self.saved_methods[method.reference] = method
        if declines:
            self.declining_methods.add(method.reference)
        return method

    def complete_checkout(self, reference: str, *, succeed: bool = True, summary: str = "Visa ending 4242") -> Payment:
        """The patient finishes (or fails) the hosted page of checkout ``reference``."""
        request = self.checkouts[reference]
        assert isinstance(request, CheckoutRequest), f"{reference} saves a method; use complete_saving_method"
        saved = None
        if succeed and request.save_method:
            saved = self.add_saved_method(SavedMethod(self._new_id("pm_"), request.customer_reference, summary))
        payment = dataclasses.replace(
            self.payments[self._checkout_payments[reference]],
            status=PaymentStatus.SUCCEEDED if succeed else PaymentStatus.FAILED,
            method="card",
            method_summary=summary,
            failure_message=None if succeed else "Your card was declined.",
            saved_method_reference=saved.reference if saved else None,
        )
        self.payments[payment.reference] = payment
        return payment

    def complete_saving_method(self, reference: str, *, summary: str = "Visa ending 4242") -> SavedMethod:
        """The patient finishes the hosted page of saving-method checkout ``reference``."""
        request = self.checkouts[reference]
        return self.add_saved_method(SavedMethod(self._new_id("pm_"), request.customer_reference, summary))

    def event_body(
        self, kind: str, *, payment: Payment | None = None, saved_method: SavedMethod | None = None
    ) -> bytes:
        """A notification body as this gateway sends it."""

        def plain(model: Payment | SavedMethod | None) -> dict[str, Any] | None:
            if model is None:
                return None
            return dataclasses.asdict(model)

        event = {
            "id": self._new_id("evt_"),
            "type": kind,
            "created": self.clock().isoformat(),
            "payment": plain(payment),
            "saved_method": plain(saved_method),
        }
        return json.dumps(event).encode()

    def sign(self, body: bytes) -> dict[str, str]:
        """The headers that make ``body`` verify now."""
        timestamp = int(self.clock().timestamp())
        digest = hmac.new(self.signing_key, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        return {"Fake-Signature": f"t={timestamp},v1={digest}"}

    # The PaymentGateway protocol.

    async def health(self) -> Health:
        return Health(ok=not self.down, detail="in-memory fake gateway")

    async def start_checkout(self, request: CheckoutRequest, idempotency_key: str) -> Checkout:
        return self._once("start_checkout", idempotency_key, lambda: self._start_checkout(request))

    def _start_checkout(self, request: CheckoutRequest) -> Checkout:
        if request.amount.amount <= 0:
            raise Refused("invalid_amount", "Enter an amount above zero.")
        reference = self._new_id("cs_")
        checkout = Checkout(reference, CheckoutKind.REDIRECT, url=f"{self.hosted_url}/checkout/{reference}")
        payment = Payment(self._new_id("pay_"), PaymentStatus.PENDING, request.amount, checkout_reference=reference)
        self.checkouts[reference] = request
        self.payments[payment.reference] = payment
        self._checkout_payments[reference] = payment.reference
        return checkout

    async def read_payment(self, reference: str) -> Payment:
        self._check_up()
        reference = self._checkout_payments.get(reference, reference)
        if reference not in self.payments:
            raise NotFound("payment", reference)
        return self.payments[reference]

    async def start_saving_method(self, request: SaveMethodRequest, idempotency_key: str) -> Checkout:
        return self._once("start_saving_method", idempotency_key, lambda: self._start_saving(request))

    def _start_saving(self, request: SaveMethodRequest) -> Checkout:
        reference = self._new_id("ss_")
        checkout = Checkout(reference, CheckoutKind.REDIRECT, url=f"{self.hosted_url}/setup/{reference}")
        self.checkouts[reference] = request
        return checkout

    async def read_saved_method(self, reference: str) -> SavedMethod:
        self._check_up()
        if reference not in self.saved_methods:
            raise NotFound("saved payment method", reference)
        return self.saved_methods[reference]

    async def charge_saved_method(self, charge: OffSessionCharge, idempotency_key: str) -> Payment:
        return self._once("charge_saved_method", idempotency_key, lambda: self._charge(charge))

    def _charge(self, charge: OffSessionCharge) -> Payment:
        method = self.saved_methods.get(charge.method_reference)
        if method is None:
            raise NotFound("saved payment method", charge.method_reference)
        if method.customer_reference != charge.customer_reference:
            raise Refused("method_not_owned", "That payment method belongs to someone else.")
        if charge.amount.amount <= 0:
            raise Refused("invalid_amount", "Enter an amount above zero.")
        if method.reference in self.declining_methods:
            raise Refused("card_declined", "Your card was declined.")
        payment = Payment(
            reference=self._new_id("pay_"),
            status=PaymentStatus.SUCCEEDED,
            amount=charge.amount,
            method="card",
            method_summary=method.summary,
            saved_method_reference=method.reference,
        )
        self.payments[payment.reference] = payment
        return payment

    async def refund(self, request: RefundRequest, idempotency_key: str) -> Refund:
        return self._once("refund", idempotency_key, lambda: self._refund(request))

    def _refund(self, request: RefundRequest) -> Refund:
        payment = self.payments.get(request.payment_reference)
        if payment is None:
            raise NotFound("payment", request.payment_reference)
        if payment.status is not PaymentStatus.SUCCEEDED:
            raise Refused("not_refundable", "Only a completed payment can be refunded.")
        refunded = _sum(
            [r.amount for r in self.refunds.values() if r.payment_reference == payment.reference],
            payment.amount.currency,
        )
        if request.amount.amount <= 0 or refunded + request.amount > payment.amount:
            raise Refused("refund_exceeds_payment", "The refund is more than what is left of the payment.")
        refund = Refund(self._new_id("re_"), payment.reference, request.amount, PaymentStatus.SUCCEEDED)
        self.refunds[refund.reference] = refund
        return refund

    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        self._check_up()
        lowered = {name.lower(): value for name, value in headers.items()}
        fields = dict(part.split("=", 1) for part in lowered.get(_SIGNATURE_HEADER, "").split(",") if "=" in part)
        if not fields.get("t", "").isdigit() or "v1" not in fields:
            raise WebhookRejected("missing or malformed Fake-Signature header")
        expected = hmac.new(self.signing_key, f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields["v1"]):
            raise WebhookRejected("signature does not match the body")
        signed_at = datetime.fromtimestamp(int(fields["t"]), UTC)
        if abs(self.clock() - signed_at) > _SIGNATURE_TOLERANCE:
            raise WebhookRejected("signature is too old or from the future")
        try:
            event = json.loads(body)
            payment, method = event["payment"], event["saved_method"]
            return WebhookEvent(
                id=event["id"],
                kind=event["type"],
                created_at=datetime.fromisoformat(event["created"]),
                payment=Payment(
                    **{**payment, "status": PaymentStatus(payment["status"]), "amount": Money(**payment["amount"])}
                )
                if payment
                else None,
                saved_method=SavedMethod(**method) if method else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise WebhookRejected(f"malformed body: {error}") from None


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")


class FakeNotifier(_Fake):
    """An in-memory notifier: ``outbox`` holds every message sent, once per idempotency key.

    Addresses must look real (an email address; an E.164 phone number for SMS); those in
    ``bounced`` are refused as a provider refuses a suppressed address.
    """

    def __init__(
        self, *, clock: Callable[[], datetime] | None = None, channels: frozenset[Channel] = frozenset(Channel)
    ) -> None:
        super().__init__(clock)
        self.channels = channels
        self.outbox: list[Message] = []
        self.bounced: set[str] = set()

    @classmethod
    def seeded(cls, *, clock: Callable[[], datetime] | None = None) -> FakeNotifier:
        notifier = cls(clock=clock)
        notifier._seeded = True
        return notifier

    @property
    def sample(self) -> NotifierSample:
        """A :class:`NotifierSample` with Alex Rivera's email address and phone number."""
        self._require_seeded()
        addresses = {Channel.EMAIL: "alex.rivera@example.org", Channel.SMS: "+15555550101"}
        return NotifierSample({channel: to for channel, to in addresses.items() if channel in self.channels})

    def sent_to(self, address: str) -> list[Message]:
        """The messages sent to ``address``, oldest first."""
        return [message for message in self.outbox if message.to == address]

    async def health(self) -> Health:
        return Health(ok=not self.down, detail="in-memory fake notifier")

    async def send(self, message: Message, idempotency_key: str) -> Delivery:
        return self._once("send", idempotency_key, lambda: self._send(message))

    def _send(self, message: Message) -> Delivery:
        if message.channel not in self.channels:
            raise Refused("channel_unsupported", f"This notifier cannot send {message.channel.value}.")
        pattern = _EMAIL if message.channel is Channel.EMAIL else _E164
        if not pattern.match(message.to) or message.to in self.bounced:
            raise Refused("invalid_address", f"{message.to} cannot receive messages.")
        self.outbox.append(message)
        return Delivery(reference=self._new_id("msg-"), accepted_at=self.clock())
