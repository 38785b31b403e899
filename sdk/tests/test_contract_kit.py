"""The contract suites fail adapters that break the contract, and the kit's helpers work."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pluggy
import pytest
from carefront_sdk import hookimpl
from carefront_sdk.adapters import EHR, AdapterContext, AdapterRegistry, Port
from carefront_sdk.config import ConfigField
from carefront_sdk.errors import ConfigError
from carefront_sdk.models import (
    Checkout,
    CheckoutKind,
    CheckoutRequest,
    Delivery,
    GatewayPage,
    Message,
    Money,
    Patient,
    Statement,
    StatementSummary,
    WebhookEvent,
)
from carefront_sdk.testing import (
    EHRContract,
    FakeClock,
    FakeEHR,
    FakeGateway,
    FakeNotifier,
    GatewayContract,
    GatewaySample,
    NotifierContract,
    adapter_from_plugin,
    check_hookimpls,
    make_adapter_context,
    model_problems,
)

Failed = pytest.fail.Exception


class DoubleBookingEHR(FakeEHR):
    def _taken(self) -> set[str]:
        return set()


class LeakyEHR(FakeEHR):
    async def read_patient(self, patient_id: str) -> Patient:
        return self.patients[patient_id]  # a KeyError escapes for an unknown id


class OldestFirstEHR(FakeEHR):
    async def list_statements(self, patient_id: str) -> Sequence[StatementSummary]:
        return list(reversed(await super().list_statements(patient_id)))


class MiscountingEHR(FakeEHR):
    async def read_statement(self, statement_id: str) -> Statement:
        statement = await super().read_statement(statement_id)
        summary = dataclasses.replace(statement.summary, balance=statement.summary.balance + Money(1))
        return dataclasses.replace(statement, summary=summary)


class FloatBirthdayEHR(FakeEHR):
    async def read_patient(self, patient_id: str) -> Patient:
        patient = await super().read_patient(patient_id)
        return dataclasses.replace(patient, birth_date=datetime(1985, 4, 12))  # type: ignore[arg-type]


class TrustingGateway(FakeGateway):
    async def parse_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookEvent:
        return WebhookEvent("evt", "other", self.clock())


class ForgetfulNotifier(FakeNotifier):
    async def send(self, message: Message, idempotency_key: str) -> Delivery:
        return await super().send(message, f"{idempotency_key}-{len(self.outbox)}")


class NaiveNotifier(FakeNotifier):
    async def send(self, message: Message, idempotency_key: str) -> Delivery:
        delivery = await super().send(message, idempotency_key)
        return dataclasses.replace(delivery, accepted_at=delivery.accepted_at.replace(tzinfo=None))


async def test_a_double_booking_ehr_fails() -> None:
    ehr = DoubleBookingEHR.seeded()
    with pytest.raises(Failed, match="DID NOT RAISE"):
        await EHRContract().test_a_slot_cannot_be_booked_twice(ehr, ehr.sample)


async def test_an_ehr_leaking_a_vendor_exception_fails_by_name() -> None:
    with pytest.raises(Failed, match=r"EHR\.read_patient raised KeyError"):
        await EHRContract().test_unknown_ids_raise_not_found(LeakyEHR.seeded())


async def test_statements_oldest_first_fail() -> None:
    ehr = OldestFirstEHR.seeded()
    with pytest.raises(AssertionError, match="newest first"):
        await EHRContract().test_statements_are_newest_first(ehr, ehr.sample)


async def test_a_statement_that_does_not_add_up_fails() -> None:
    ehr = MiscountingEHR.seeded()
    with pytest.raises(AssertionError, match=r"summary\.balance is 9501"):
        await EHRContract().test_statement_lines_add_up(ehr, ehr.sample)


async def test_a_datetime_where_a_date_belongs_fails() -> None:
    ehr = FloatBirthdayEHR.seeded()
    with pytest.raises(Failed, match=r"birth_date is .* expected a date"):
        await EHRContract().test_read_patient(ehr, ehr.sample)


async def test_a_gateway_trusting_any_webhook_fails() -> None:
    gateway = TrustingGateway.seeded()
    with pytest.raises(Failed, match="DID NOT RAISE"):
        await GatewayContract().test_parse_webhook_rejects_a_tampered_body(gateway, gateway.sample)


async def test_a_notifier_sending_twice_under_one_key_fails() -> None:
    notifier = ForgetfulNotifier.seeded()
    with pytest.raises(AssertionError, match="same key"):
        await NotifierContract().test_send_is_idempotent(notifier, notifier.sample)


async def test_a_naive_datetime_fails() -> None:
    notifier = NaiveNotifier.seeded()
    with pytest.raises(Failed, match=r"Delivery\(\)\.accepted_at is naive|accepted_at is naive"):
        await NotifierContract().test_send_is_idempotent(notifier, notifier.sample)


async def test_a_missing_method_fails_the_protocol_check() -> None:
    class NoHealth:
        async def match_patient(self, query: object) -> list[Patient]:
            return []

    with pytest.raises(AssertionError, match="lacks health"):
        await EHRContract().test_implements_the_protocol(NoHealth())  # type: ignore[arg-type]


def test_model_problems_reads_fields_sequences_and_unions() -> None:
    aware = datetime(2025, 1, 1, tzinfo=UTC)
    wrong: Any = 12.5
    assert model_problems([Delivery("d-1", aware)], Sequence[Delivery]) == []
    assert model_problems(Delivery(wrong, aware), Delivery, "d") == ["d.reference is a float (12.5), expected str"]
    assert model_problems(None, Money | None) == []
    assert model_problems(wrong, Money | None, "x") == ["x is 12.5, expected Money | None"]
    assert model_problems(datetime(2025, 1, 1), datetime, "t") == [
        "t is naive (datetime.datetime(2025, 1, 1, 0, 0)); every datetime must be time-zone aware"
    ]


# --- Plugins --------------------------------------------------------------------------------------


def _plugin(**hooks: Any) -> types.ModuleType:
    module = types.ModuleType("example_plugin")
    for name, function in hooks.items():
        setattr(module, name, function)
    return module


def test_check_hookimpls_accepts_a_subset_of_arguments() -> None:
    @hookimpl
    def carefront_nav_items(audience: str) -> None:
        return None

    check_hookimpls(_plugin(carefront_nav_items=carefront_nav_items))


def test_check_hookimpls_refuses_an_unknown_hook() -> None:
    @hookimpl
    def carefront_register_pharmacy(registry: AdapterRegistry) -> None:
        return None

    with pytest.raises(pluggy.PluginValidationError, match="unknown hook 'carefront_register_pharmacy'"):
        check_hookimpls(_plugin(carefront_register_pharmacy=carefront_register_pharmacy))


def test_check_hookimpls_refuses_an_argument_the_spec_lacks() -> None:
    @hookimpl
    def carefront_nav_items(audience: str, patient: object) -> None:
        return None

    with pytest.raises(pluggy.PluginValidationError, match="patient"):
        check_hookimpls(_plugin(carefront_nav_items=carefront_nav_items))


def test_check_hookimpls_refuses_a_forgotten_decorator() -> None:
    def carefront_register_ehr(registry: AdapterRegistry) -> None:
        return None

    with pytest.raises(pluggy.PluginValidationError, match="not decorated with @hookimpl"):
        check_hookimpls(_plugin(carefront_register_ehr=carefront_register_ehr))


def test_check_hookimpls_refuses_an_async_hook() -> None:
    @hookimpl
    async def carefront_register_ehr(registry: AdapterRegistry) -> None:
        return None

    with pytest.raises(pluggy.PluginValidationError, match="is async"):
        check_hookimpls(_plugin(carefront_register_ehr=carefront_register_ehr))


class _RegistersAFakeEHR:
    @hookimpl
    def carefront_register_ehr(self, registry: AdapterRegistry) -> None:
        def build(context: AdapterContext) -> FakeEHR:
            ehr = FakeEHR.seeded(clock=context.clock)
            ehr.time_zone = context.config["time_zone"]
            ehr.catalog = dataclasses.replace(ehr.catalog, visit_types=ehr.catalog.visit_types[: context.config["n"]])
            return ehr

        registry.add(
            "fake",
            build,
            config=[
                ConfigField("time_zone", str, "where the clinic is"),
                ConfigField("n", int, "how many visit types", default=1),
            ],
        )


def test_adapter_from_plugin_resolves_config_and_builds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINIC_ZONE", "America/Denver")
    context = make_adapter_context(tmp_path, config={"time_zone": {"$env": "CLINIC_ZONE"}})
    ehr = adapter_from_plugin(_RegistersAFakeEHR(), Port.EHR, "fake", context)
    assert isinstance(ehr, EHR)
    assert ehr.time_zone == "America/Denver"
    assert len(ehr.catalog.visit_types) == 1


def test_adapter_from_plugin_names_what_is_wrong(tmp_path: Path) -> None:
    plugin = _RegistersAFakeEHR()
    with pytest.raises(ConfigError, match="'time_zone': is required"):
        adapter_from_plugin(plugin, Port.EHR, "fake", make_adapter_context(tmp_path))
    with pytest.raises(LookupError, match=r"no ehr adapter 'epic' \(it offers: \['fake'\]\)"):
        adapter_from_plugin(plugin, Port.EHR, "epic", make_adapter_context(tmp_path))


# --- Context and clock ----------------------------------------------------------------------------


def test_adapter_context_fixture(adapter_context: AdapterContext, carefront_clock: FakeClock) -> None:
    assert adapter_context.data_dir.is_dir()
    assert adapter_context.clock is carefront_clock
    before = adapter_context.clock()
    carefront_clock.advance(timedelta(days=1))
    assert adapter_context.clock() - before == timedelta(days=1)


def test_a_clock_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        FakeClock(datetime(2025, 1, 1))


# --- A gateway's declared page ---------------------------------------------------------------------


class ElementGateway(FakeGateway):
    """Checkouts on the gateway's own element, as Stripe's Payment Element."""

    async def start_checkout(self, request: CheckoutRequest, idempotency_key: str) -> Checkout:
        hosted = await super().start_checkout(request, idempotency_key)
        return Checkout(hosted.reference, CheckoutKind.ELEMENT, client_secret=f"{hosted.reference}_secret")


def _gateway_plugin(page: GatewayPage | None, static: Path | None = None) -> types.ModuleType:
    @hookimpl
    def carefront_register_gateway(registry: AdapterRegistry) -> None:
        registry.add("acmepay", lambda context: ElementGateway.seeded(), page=page)

    @hookimpl
    def carefront_static_dirs() -> list[tuple[str, Path]]:
        return [("acmepay", static)] if static else []

    return _plugin(carefront_register_gateway=carefront_register_gateway, carefront_static_dirs=carefront_static_dirs)


def _sample(gateway: FakeGateway, plugin: types.ModuleType | None) -> GatewaySample:
    return dataclasses.replace(gateway.sample, plugin=plugin, adapter_name="acmepay" if plugin else None)


@pytest.fixture
def acmepay_static(tmp_path: Path) -> Path:
    (tmp_path / "mount.js").write_text("// mounts the element\n")
    return tmp_path


ACMEPAY_CSP = {"script-src": ("https://js.acmepay.example",)}


async def test_an_element_gateway_with_its_page_declared_and_served_passes(acmepay_static: Path) -> None:
    page = GatewayPage(csp=ACMEPAY_CSP, scripts=("https://js.acmepay.example/v2/", "plugins/acmepay/mount.js"))
    gateway = ElementGateway.seeded()
    sample = _sample(gateway, _gateway_plugin(page, acmepay_static))
    await GatewayContract().test_an_element_checkout_declares_a_page_that_mounts_it(gateway, sample)
    await GatewayContract().test_the_declared_page_loads_only_what_it_allows_and_serves(sample)


async def test_an_element_gateway_without_a_page_fails() -> None:
    gateway = ElementGateway.seeded()
    for sample in (_sample(gateway, None), _sample(gateway, _gateway_plugin(None))):
        with pytest.raises(AssertionError, match="an element checkout needs a GatewayPage"):
            await GatewayContract().test_an_element_checkout_declares_a_page_that_mounts_it(gateway, sample)


async def test_an_element_gateway_whose_page_loads_no_script_fails() -> None:
    gateway = ElementGateway.seeded()
    sample = _sample(gateway, _gateway_plugin(GatewayPage(csp=ACMEPAY_CSP)))
    with pytest.raises(AssertionError, match="must list the scripts"):
        await GatewayContract().test_an_element_checkout_declares_a_page_that_mounts_it(gateway, sample)


async def test_a_hosted_checkout_needs_no_page() -> None:
    gateway = FakeGateway.seeded()
    await GatewayContract().test_an_element_checkout_declares_a_page_that_mounts_it(gateway, gateway.sample)


async def test_a_page_loading_a_script_from_an_origin_it_does_not_allow_fails(acmepay_static: Path) -> None:
    page = GatewayPage(csp=ACMEPAY_CSP, scripts=("https://cdn.elsewhere.example/acmepay.js",))
    sample = _sample(ElementGateway.seeded(), _gateway_plugin(page, acmepay_static))
    with pytest.raises(AssertionError, match=r"https://cdn\.elsewhere\.example is not in the page's script-src"):
        await GatewayContract().test_the_declared_page_loads_only_what_it_allows_and_serves(sample)


@pytest.mark.parametrize(
    ("script", "served", "message"),
    [
        ("plugins/acmepay/mount.js", False, "serves no static folder 'acmepay'"),
        ("plugins/other/mount.js", True, "serves no static folder 'other'"),
        ("plugins/acmepay/missing.js", True, "no file 'missing.js'"),
    ],
)
async def test_a_page_script_the_plugin_does_not_serve_fails(
    acmepay_static: Path, script: str, served: bool, message: str
) -> None:
    page = GatewayPage(csp=ACMEPAY_CSP, scripts=(script,))
    sample = _sample(ElementGateway.seeded(), _gateway_plugin(page, acmepay_static if served else None))
    with pytest.raises(AssertionError, match=message):
        await GatewayContract().test_the_declared_page_loads_only_what_it_allows_and_serves(sample)
