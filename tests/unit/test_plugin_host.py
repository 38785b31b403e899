"""The plugin host: loading, choosing one adapter per port, configuration, and the guard around calls."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest
from carefront_sdk import hookimpl
from carefront_sdk.adapters import Port
from carefront_sdk.config import ConfigField
from carefront_sdk.errors import Refused, Unavailable
from carefront_sdk.testing import FakeClearinghouse, FakeEHR, FakeGateway, FakeNotifier

from portal.plugin_host import CircuitBreaker, PluginError, PluginHost
from portal.settings import Settings

SECRET = "s" * 40
FAKES = {
    Port.EHR: FakeEHR,
    Port.CLEARINGHOUSE: FakeClearinghouse,
    Port.GATEWAY: FakeGateway,
    Port.NOTIFIER: FakeNotifier,
}


def settings(tmp_path, **document) -> Settings:
    return Settings.from_document(document, {"CAREFRONT_SECRET_KEY": SECRET, "CAREFRONT_DATA_DIR": str(tmp_path)})


class Offers:
    """A plugin offering an adapter called ``name`` for each port, built by ``build(port, context)``."""

    def __init__(self, name: str, build=None, config=(), ports=tuple(Port)) -> None:
        self.name, self.config, self.ports = name, config, ports
        self.build = build or (lambda port, context: FAKES[port]())
        self.contexts = []

    def _offer(self, port, registry) -> None:
        if port in self.ports:

            def factory(context, port=port):
                self.contexts.append(context)
                return self.build(port, context)

            registry.add(self.name, factory, config=self.config)

    @hookimpl
    def carefront_register_ehr(self, registry):
        self._offer(Port.EHR, registry)

    @hookimpl
    def carefront_register_clearinghouse(self, registry):
        self._offer(Port.CLEARINGHOUSE, registry)

    @hookimpl
    def carefront_register_gateway(self, registry):
        self._offer(Port.GATEWAY, registry)

    @hookimpl
    def carefront_register_notifier(self, registry):
        self._offer(Port.NOTIFIER, registry)


def test_hook_carefront_register_ehr(tmp_path):
    host = PluginHost.load(settings(tmp_path), plugins=[("alpha", Offers("alpha"))])
    assert host.chosen()[Port.EHR].name == "alpha"
    assert host.chosen()[Port.EHR].plugin == "alpha"


def test_hook_carefront_register_clearinghouse(tmp_path):
    host = PluginHost.load(settings(tmp_path), plugins=[("alpha", Offers("alpha"))])
    assert host.chosen()[Port.CLEARINGHOUSE].name == "alpha"


def test_hook_carefront_register_gateway(tmp_path):
    host = PluginHost.load(settings(tmp_path), plugins=[("alpha", Offers("alpha"))])
    assert host.chosen()[Port.GATEWAY].name == "alpha"


def test_hook_carefront_register_notifier(tmp_path):
    host = PluginHost.load(settings(tmp_path), plugins=[("alpha", Offers("alpha"))])
    assert host.chosen()[Port.NOTIFIER].name == "alpha"


def test_configuration_picks_among_several_adapters(tmp_path):
    plugins = [("alpha", Offers("alpha")), ("beta", Offers("beta"))]
    with pytest.raises(PluginError, match=r"several adapters offered for the ehr port \(alpha, beta\): set ports.ehr"):
        PluginHost.load(settings(tmp_path), plugins=plugins)
    chosen = {port.value: "beta" for port in Port}
    host = PluginHost.load(settings(tmp_path, ports=chosen), plugins=plugins)
    assert {registration.name for registration in host.chosen().values()} == {"beta"}


def test_a_port_without_an_adapter_stops_start_up(tmp_path):
    offers = Offers("alpha", ports=(Port.EHR, Port.CLEARINGHOUSE, Port.NOTIFIER))
    with pytest.raises(PluginError, match="no installed plugin offers an adapter for the gateway port"):
        PluginHost.load(settings(tmp_path), plugins=[("alpha", offers)])


def test_an_unknown_adapter_name_lists_what_is_available(tmp_path):
    with pytest.raises(PluginError, match=r"setting ports.ehr: no adapter named 'epic' \(available: alpha\)"):
        PluginHost.load(settings(tmp_path, ports={"ehr": "epic"}), plugins=[("alpha", Offers("alpha"))])


def test_one_name_offered_by_two_plugins_is_refused(tmp_path):
    plugins = [("alpha", Offers("same")), ("beta", Offers("same"))]
    with pytest.raises(PluginError, match="offered by several plugins: alpha, beta"):
        PluginHost.load(settings(tmp_path), plugins=plugins)


def test_an_unknown_hook_is_refused_at_start_up(tmp_path):
    class Misspelt(Offers):
        @hookimpl
        def carefront_regster_ehr(self, registry):
            """A typo: pluggy alone would ignore it; the host must not."""

    with pytest.raises(PluginError, match="carefront_regster_ehr"):
        PluginHost.load(settings(tmp_path), plugins=[("typo", Misspelt("alpha"))])


def test_a_hook_with_arguments_the_spec_lacks_is_refused(tmp_path):
    class WrongArguments(Offers):
        @hookimpl
        def carefront_nav_items(self, audience, colour):
            return []

    with pytest.raises(PluginError, match="colour"):
        PluginHost.load(settings(tmp_path), plugins=[("wrong", WrongArguments("alpha"))])


def test_an_adapter_lacking_a_method_is_refused(tmp_path):
    class HalfEHR:
        async def health(self):
            raise NotImplementedError

    offers = Offers("alpha", build=lambda port, context: HalfEHR() if port is Port.EHR else FAKES[port]())
    with pytest.raises(PluginError, match="adapter 'alpha' for the ehr port lacks match_patient"):
        PluginHost.load(settings(tmp_path), plugins=[("alpha", offers)])


FIELDS = (
    ConfigField("base_url", str, "where the EHR answers"),
    ConfigField("client_secret", str, "SMART client secret", secret=True),
    ConfigField("page_size", int, "results per page", default=50),
)


def test_adapter_configuration_is_resolved_once_per_name_with_references(tmp_path, monkeypatch):
    monkeypatch.setenv("EHR_SECRET", "hunter2")
    offers = Offers("alpha", config=FIELDS)
    document = {"adapters": {"alpha": {"base_url": "https://ehr.example.org", "client_secret": {"$env": "EHR_SECRET"}}}}
    PluginHost.load(settings(tmp_path, **document), plugins=[("alpha", offers)])
    assert len(offers.contexts) == 4
    context = offers.contexts[0]
    assert dict(context.config) == {"base_url": "https://ehr.example.org", "client_secret": "hunter2", "page_size": 50}
    assert all(other is context for other in offers.contexts)
    assert context.data_dir == tmp_path
    assert context.time_zone == "America/Chicago"
    assert context.clock().tzinfo is not None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"client_secret": "x"}, "plugin 'alpha': setting 'base_url': is required"),
        ({"base_url": "u", "client_secret": "x", "pagesize": 3}, "'pagesize': is not a setting of this adapter"),
        ({"base_url": "u", "client_secret": "x", "page_size": "many"}, "'page_size': expected a whole number"),
        ({"base_url": "u", "client_secret": {"$env": "NOT_SET_ANYWHERE"}}, "NOT_SET_ANYWHERE is not set"),
    ],
)
def test_bad_adapter_configuration_names_the_plugin_and_field(tmp_path, values, message):
    with pytest.raises(PluginError, match=message) as caught:
        PluginHost.load(
            settings(tmp_path, adapters={"alpha": values}), plugins=[("alpha", Offers("alpha", config=FIELDS))]
        )
    assert "[adapters.alpha]" in str(caught.value)


class Troubled(FakeEHR):
    """An EHR whose ``read_patient`` does what ``behaviour`` says."""

    behaviour = "ok"
    calls = 0

    async def read_patient(self, patient_id):
        self.calls += 1
        if self.behaviour == "slow":
            await asyncio.sleep(5)
        if self.behaviour == "vendor":
            raise ConnectionResetError("patient Jane Roe 1970-01-01 MRN 123")
        if self.behaviour == "refuse":
            raise Refused("not_found", "No such patient.")
        if self.behaviour == "unavailable":
            raise Unavailable("EHR returned 503")
        return SimpleNamespace(id=patient_id)


def troubled_host(tmp_path, timeout=0.05) -> tuple[PluginHost, Troubled]:
    ehr = Troubled()
    offers = Offers("alpha", build=lambda port, context: ehr if port is Port.EHR else FAKES[port]())
    document = {"server": {"adapter_timeout_seconds": timeout}}
    return PluginHost.load(settings(tmp_path, **document), plugins=[("alpha", offers)]), ehr


async def test_a_slow_adapter_times_out_as_unavailable(tmp_path):
    host, ehr = troubled_host(tmp_path)
    ehr.behaviour = "slow"
    with pytest.raises(Unavailable, match="timed out"):
        await host.ehr.read_patient("p1")


async def test_a_vendor_exception_becomes_unavailable_and_its_text_is_not_logged(tmp_path, caplog):
    host, ehr = troubled_host(tmp_path)
    ehr.behaviour = "vendor"
    with caplog.at_level(logging.INFO, logger="carefront.plugins"), pytest.raises(Unavailable):
        await host.ehr.read_patient("p1")
    assert "plugin=alpha port=ehr adapter=alpha read_patient: unexpected ConnectionResetError" in caplog.text
    assert "Jane" not in caplog.text
    assert "123" not in caplog.text


async def test_a_refusal_reaches_the_caller_unchanged(tmp_path):
    host, ehr = troubled_host(tmp_path)
    ehr.behaviour = "refuse"
    with pytest.raises(Refused) as caught:
        await host.ehr.read_patient("p1")
    assert caught.value.code == "not_found"


async def test_the_circuit_opens_after_repeated_failures_and_closes_after_a_good_trial(tmp_path):
    host, ehr = troubled_host(tmp_path)
    breaker = host.adapters[Port.EHR].breaker
    now = [0.0]
    breaker.clock = lambda: now[0]
    ehr.behaviour = "unavailable"
    for _ in range(breaker.threshold):
        with pytest.raises(Unavailable, match="503"):
            await host.ehr.read_patient("p1")
    calls = ehr.calls
    with pytest.raises(Unavailable, match="circuit open"):
        await host.ehr.read_patient("p1")
    assert ehr.calls == calls, "an open circuit must not call the adapter"
    now[0] += breaker.cooldown
    ehr.behaviour = "ok"
    assert (await host.ehr.read_patient("p1")).id == "p1"
    assert not breaker.is_open
    assert breaker.failures == 0


def test_a_refusal_does_not_count_against_the_circuit():
    breaker = CircuitBreaker(threshold=2)
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert not breaker.is_open


async def test_health_reports_each_port(tmp_path):
    host, _ = troubled_host(tmp_path)
    health = await host.health()
    assert set(health) == set(Port)
    assert all(state.ok for state in health.values())


def test_installed_plugins_respect_the_allow_list(tmp_path):
    with pytest.raises(PluginError, match="names plugins that are not installed: nonesuch"):
        PluginHost.load(settings(tmp_path, plugins={"allow": ["sandbox", "nonesuch"]}))


def test_a_blocked_plugin_is_not_loaded(tmp_path):
    with pytest.raises(PluginError, match="no installed plugin offers an adapter"):
        PluginHost.load(settings(tmp_path, plugins={"allow": ["sandbox"], "block": ["sandbox"]}))


def test_installed_plugins_are_listed_with_version_and_hooks(tmp_path):
    host = PluginHost.load(settings(tmp_path, plugins={"allow": ["sandbox"]}))
    (sandbox,) = host.plugins
    assert sandbox.name == "sandbox"
    assert sandbox.distribution == "carefront-sandbox"
    assert sandbox.version
    assert "carefront_register_ehr" in sandbox.hooks


class Closing:
    """An adapter that holds a connection: it counts its closes, and the first may fail."""

    fails = False
    closed = 0

    async def aclose(self) -> None:
        self.closed += 1
        if self.fails:
            raise OSError("socket already gone")


class ClosingEHR(Closing, FakeEHR):
    fails = True


class ClosingNotifier(Closing, FakeNotifier):
    pass


async def test_adapters_are_closed_once_at_shutdown_even_if_one_fails(tmp_path, caplog):
    failing, closing = ClosingEHR(), ClosingNotifier()
    built = {Port.EHR: failing, Port.NOTIFIER: closing}
    offers = Offers("alpha", build=lambda port, context: built.get(port) or FAKES[port]())
    host = PluginHost.load(settings(tmp_path), plugins=[("alpha", offers)])
    with caplog.at_level(logging.ERROR, logger="carefront.plugins"):
        await host.aclose()
    assert (failing.closed, closing.closed) == (1, 1)
    assert "plugin=alpha adapter=alpha: aclose failed" in caplog.text
