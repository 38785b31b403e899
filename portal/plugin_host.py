"""The plugin host: the one seam between the portal and installed plugins.

It is the only caller of ``pm.hook``. It loads plugins from the ``carefront`` entry-point group
(honouring the allow- and block-lists), builds the adapter chosen for each port, and hands the rest
of the portal typed adapters wrapped in a guard that applies a timeout and a circuit breaker, turns
anything a plugin raises into the SDK's error tiers, and names the plugin in every log line.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import pluggy
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
from carefront_sdk.config import ConfigField, resolve_config
from carefront_sdk.errors import ConfigError, RedirectRequired, Refused, Unavailable, WebhookRejected
from carefront_sdk.models import DashboardCard, DemoPersona, GatewayPage, Health, NavItem

from portal.settings import Settings

log = logging.getLogger("carefront.plugins")

REGISTRATION_HOOKS = {
    Port.EHR: "carefront_register_ehr",
    Port.CLEARINGHOUSE: "carefront_register_clearinghouse",
    Port.GATEWAY: "carefront_register_gateway",
    Port.NOTIFIER: "carefront_register_notifier",
}
PORT_PROTOCOLS: dict[Port, type] = {
    Port.EHR: EHR,
    Port.CLEARINGHOUSE: Clearinghouse,
    Port.GATEWAY: PaymentGateway,
    Port.NOTIFIER: Notifier,
}
# Tiers a plugin may raise on purpose; anything else is a plugin or vendor failure.
_EXPECTED = (Refused, RedirectRequired, WebhookRejected)


class PluginError(Exception):
    """A plugin cannot be loaded or configured; start-up stops with this message."""


@dataclass(frozen=True, slots=True)
class PluginInfo:
    name: str
    version: str
    distribution: str
    hooks: tuple[str, ...]


@dataclass
class CircuitBreaker:
    """Stops calling an adapter that keeps failing, so patients get a fast answer instead of a hang.

    After ``threshold`` consecutive unavailable answers the circuit opens for ``cooldown`` seconds;
    then one trial call is let through, and its outcome closes or re-opens the circuit.
    """

    threshold: int = 5
    cooldown: float = 30.0
    failures: int = 0
    opened_at: float | None = None
    clock: Callable[[], float] = time.monotonic

    @property
    def is_open(self) -> bool:
        # Past the cooldown the circuit is half-open: a trial call goes through.
        return self.opened_at is not None and self.clock() - self.opened_at < self.cooldown

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self) -> None:
        self.failures += 1
        if self.failures >= self.threshold:
            self.opened_at = self.clock()


class GuardedAdapter:
    """Wraps every ``async`` method of an adapter with a timeout, the breaker and error translation."""

    def __init__(self, adapter: Any, registration: AdapterRegistration, timeout: float) -> None:
        self._adapter = adapter
        self.registration = registration
        self._timeout = timeout
        self.breaker = CircuitBreaker()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._adapter, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute
        return self._guard(name, attribute)

    def _guard(self, method: str, call: Callable[..., Any]) -> Callable[..., Any]:
        registration = self.registration
        where = f"plugin={registration.plugin} port={registration.port} adapter={registration.name}"

        @functools.wraps(call)
        async def guarded(*args: Any, **kwargs: Any) -> Any:
            if self.breaker.is_open:
                log.warning("%s %s: circuit open, not called", where, method)
                raise Unavailable(f"{registration.port} adapter {registration.name!r} is failing; circuit open")
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self._timeout):
                    result = await call(*args, **kwargs)
            except _EXPECTED:
                self.breaker.record_success()
                log.info("%s %s: refused in %.0f ms", where, method, (time.perf_counter() - started) * 1000)
                raise
            except Unavailable as error:
                self.breaker.record_failure()
                log.warning("%s %s: unavailable: %s", where, method, error.detail)
                raise
            except TimeoutError:
                self.breaker.record_failure()
                log.warning("%s %s: no answer within %.1f s", where, method, self._timeout)
                raise Unavailable(f"{registration.port} adapter {registration.name!r} timed out") from None
            except Exception as error:
                # Vendor exceptions never reach a controller: log the type only (it may carry PHI).
                self.breaker.record_failure()
                log.error("%s %s: unexpected %s", where, method, type(error).__name__)
                raise Unavailable(f"{registration.port} adapter {registration.name!r} failed") from error
            self.breaker.record_success()
            log.debug("%s %s: ok in %.0f ms", where, method, (time.perf_counter() - started) * 1000)
            return result

        return guarded


def _manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


@dataclass
class PluginHost:
    """What the portal knows of its plugins. Build it with :meth:`load`."""

    settings: Settings
    pm: pluggy.PluginManager
    plugins: tuple[PluginInfo, ...]
    registrations: tuple[AdapterRegistration, ...]
    adapters: dict[Port, GuardedAdapter] = field(default_factory=dict)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    @classmethod
    def load(
        cls,
        settings: Settings,
        *,
        plugins: Sequence[tuple[str, ModuleType | object]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> PluginHost:
        """Load plugins and build the chosen adapters, or raise :class:`PluginError`.

        ``plugins`` given explicitly (as tests do) replaces entry-point loading entirely.
        """
        pm = _manager()
        infos = _register_explicit(pm, plugins) if plugins is not None else _register_entry_points(pm, settings)
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as error:
            raise PluginError(f"plugin {error.plugin!r} implements an unknown hook: {error}") from None
        host = cls(settings, pm, infos, _collect_registrations(pm), clock=clock or (lambda: datetime.now(UTC)))
        host._build_adapters()
        return host

    # --- adapters --------------------------------------------------------------------------------

    def _build_adapters(self) -> None:
        contexts: dict[str, AdapterContext] = {}
        for port in Port:
            registration = self._choose(port)
            if registration.name not in contexts:
                contexts[registration.name] = AdapterContext(
                    name=registration.name,
                    config=self._config_for(registration.name),
                    data_dir=self.settings.data_dir,
                    public_url=self.settings.public_url,
                    time_zone=self.settings.hospital.time_zone,
                    clock=self.clock,
                )
            try:
                adapter = registration.factory(contexts[registration.name])
            except ConfigError as error:
                raise PluginError(str(error)) from None
            missing = _missing_methods(adapter, PORT_PROTOCOLS[port])
            if missing:
                raise PluginError(
                    f"plugin {registration.plugin!r}: adapter {registration.name!r} for the {port} port "
                    f"lacks {', '.join(missing)}"
                )
            self.adapters[port] = GuardedAdapter(adapter, registration, self.settings.adapter_timeout_seconds)

    def _choose(self, port: Port) -> AdapterRegistration:
        offered = [r for r in self.registrations if r.port == port]
        names = sorted({r.name for r in offered})
        wanted = self.settings.ports.get(port)
        if wanted is not None:
            chosen = [r for r in offered if r.name == wanted]
            if not chosen:
                available = ", ".join(names) or "none: install a plugin that offers one"
                raise PluginError(f"setting ports.{port}: no adapter named {wanted!r} (available: {available})")
        elif len(names) == 1:
            chosen = offered
        elif not names:
            raise PluginError(
                f"no installed plugin offers an adapter for the {port} port; install one "
                "(carefront-sandbox offers all four for a demo)"
            )
        else:
            raise PluginError(f"several adapters offered for the {port} port ({', '.join(names)}): set ports.{port}")
        if len(chosen) > 1:
            owners = ", ".join(sorted(r.plugin for r in chosen))
            raise PluginError(
                f"adapter name {chosen[0].name!r} for the {port} port is offered by several plugins: {owners}"
            )
        return chosen[0]

    def _config_for(self, name: str) -> dict[str, Any]:
        # Adapters offered under one name share one [adapters.<name>] section: check against all their fields.
        siblings = [r for r in self.registrations if r.name == name]
        fields: dict[str, ConfigField] = {}
        for registration in siblings:
            for spec in registration.config:
                fields.setdefault(spec.name, spec)
        try:
            return resolve_config(siblings[0].plugin, list(fields.values()), self.settings.adapters.get(name, {}))
        except ConfigError as error:
            raise PluginError(f"{error} (in [adapters.{name}])") from None

    async def aclose(self) -> None:
        """Let each adapter close its connections and files (its optional ``aclose()``), once, at shutdown."""
        closed: set[int] = set()
        for guarded in self.adapters.values():
            adapter = guarded._adapter
            close = getattr(adapter, "aclose", None)
            if close is None or id(adapter) in closed:
                continue
            closed.add(id(adapter))
            try:
                await close()
            except Exception:  # one adapter failing to close must not keep the others open
                log.exception(
                    "plugin=%s adapter=%s: aclose failed", guarded.registration.plugin, guarded.registration.name
                )

    @property
    def ehr(self) -> EHR:
        return cast(EHR, self.adapters[Port.EHR])

    @property
    def clearinghouse(self) -> Clearinghouse:
        return cast(Clearinghouse, self.adapters[Port.CLEARINGHOUSE])

    @property
    def gateway(self) -> PaymentGateway:
        return cast(PaymentGateway, self.adapters[Port.GATEWAY])

    def gateway_page(self) -> GatewayPage:
        """What the chosen gateway's payment page must allow and load (nothing, for most)."""
        return self.adapters[Port.GATEWAY].registration.page or GatewayPage()

    @property
    def notifier(self) -> Notifier:
        return cast(Notifier, self.adapters[Port.NOTIFIER])

    def chosen(self) -> dict[Port, AdapterRegistration]:
        """The registration behind each port's adapter."""
        return {port: guarded.registration for port, guarded in self.adapters.items()}

    async def health(self) -> dict[Port, Health]:
        """Each chosen adapter's own health answer, checked side by side."""

        async def check(port: Port) -> Health:
            try:
                return cast(Health, await self.adapters[port].health())
            except Unavailable as error:
                return Health(ok=False, detail=error.detail)

        results = await asyncio.gather(*(check(port) for port in self.adapters))
        return dict(zip(self.adapters, results, strict=True))

    # --- extension hooks -------------------------------------------------------------------------

    def nav_items(self, audience: str, language: str) -> list[NavItem]:
        items = self._collect("carefront_nav_items", audience=audience, language=language)
        return sorted((item for item in items if item.audience == audience), key=lambda item: item.order)

    def dashboard_cards(self, patient_id: str, language: str) -> list[DashboardCard]:
        cards = self._collect("carefront_dashboard_cards", patient_id=patient_id, language=language)
        return sorted(cards, key=lambda card: card.order)

    def demo_personas(self) -> list[DemoPersona]:
        return self._collect("carefront_demo_personas")

    def routes(self) -> list[Any]:
        return self._collect("carefront_routes", strict=True)

    def template_dirs(self) -> list[Path]:
        return [Path(folder) for folder in self._collect("carefront_template_dirs", strict=True)]

    def static_dirs(self) -> list[tuple[str, Path]]:
        return [(name, Path(folder)) for name, folder in self._collect("carefront_static_dirs", strict=True)]

    def code_descriptions(self, wanted: Mapping[str, Iterable[str]], language: str) -> dict[tuple[str, str], str]:
        """Plugins' descriptions of the codes ``wanted`` (code system to codes), by ``(system, code)``.

        One hook call per code system. For each code the first answer in pluggy's call order wins
        (``tryfirst`` implementations, then the most recently registered); a failing plugin is
        logged and skipped, and an answer that is not text, or names a code not asked for, is ignored.
        """
        found: dict[tuple[str, str], str] = {}
        # pluggy calls implementations in the reverse of get_hookimpls()'s order.
        impls = list(reversed(self.pm.hook.carefront_code_descriptions.get_hookimpls()))
        for system, codes in wanted.items():
            asked = sorted(set(codes))
            if not asked:
                continue
            for impl in impls:
                try:
                    answer = dict(_call(impl, code_system=system, codes=asked, language=language) or {})
                except Exception:
                    log.exception("plugin=%s hook=carefront_code_descriptions failed; skipped", impl.plugin_name)
                    continue
                for code, text in answer.items():
                    if code in asked and isinstance(text, str) and text.strip():
                        found.setdefault((system, code), text.strip())
        return found

    def _collect(self, hook_name: str, *, strict: bool = False, **kwargs: Any) -> list[Any]:
        """Merge what every implementation returns; a failing plugin is logged and skipped.

        ``strict`` hooks run at start-up, where a failure should stop the portal instead.
        """
        merged: list[Any] = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                result = _call(impl, **kwargs)
            except Exception as error:
                if strict:
                    raise PluginError(f"plugin {impl.plugin_name!r}: {hook_name} failed: {error!r}") from error
                log.exception("plugin=%s hook=%s failed; skipped", impl.plugin_name, hook_name)
                continue
            if result is not None:
                merged.extend(result)
        return merged

    # --- event hooks -----------------------------------------------------------------------------

    def emit(self, hook_name: str, event: Any) -> None:
        """Tell every plugin what happened. A plugin's failure is logged and changes nothing else."""
        if not hook_name.startswith("carefront_") or not hasattr(hookspecs, hook_name):
            raise ValueError(f"no event hook named {hook_name!r}")
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                _call(impl, event=event)
            except Exception:
                log.exception("plugin=%s hook=%s failed", impl.plugin_name, hook_name)


def _call(impl: pluggy.HookImpl, **kwargs: Any) -> Any:
    """Call one plugin's implementation with the arguments it asks for (a subset of the spec's)."""
    return impl.function(**{name: kwargs[name] for name in impl.argnames})


def _missing_methods(adapter: Any, protocol: type) -> list[str]:
    wanted = [name for name, value in vars(protocol).items() if inspect.iscoroutinefunction(value)]
    return [name for name in wanted if not inspect.iscoroutinefunction(getattr(adapter, name, None))]


def _register_explicit(pm: pluggy.PluginManager, plugins: Sequence[tuple[str, object]]) -> tuple[PluginInfo, ...]:
    infos = []
    for name, module in plugins:
        _register(pm, module, name)
        distribution = _distribution_of(module)
        infos.append(
            PluginInfo(
                name, distribution.version if distribution else "", distribution.name if distribution else "", ()
            )
        )
    return _with_hooks(pm, infos)


def _distribution_of(plugin: object) -> metadata.Distribution | None:
    """The distribution whose ``carefront`` entry point names this plugin module, if one is installed."""
    module_name = plugin.__name__ if isinstance(plugin, ModuleType) else type(plugin).__module__
    for entry_point in metadata.entry_points(group=PROJECT_NAME):
        if entry_point.module == module_name:
            return entry_point.dist
    return None


def _register_entry_points(pm: pluggy.PluginManager, settings: Settings) -> tuple[PluginInfo, ...]:
    infos = []
    for entry_point in sorted(metadata.entry_points(group=PROJECT_NAME), key=lambda ep: ep.name):
        if entry_point.name in settings.plugins_block:
            log.info("plugin=%s blocked by CAREFRONT_DISABLE_PLUGINS / plugins.block", entry_point.name)
            continue
        if settings.plugins_allow is not None and entry_point.name not in settings.plugins_allow:
            log.info("plugin=%s not in CAREFRONT_PLUGINS / plugins.allow; not loaded", entry_point.name)
            continue
        try:
            module = entry_point.load()
        except Exception as error:
            raise PluginError(f"plugin {entry_point.name!r} failed to import: {error!r}") from error
        _register(pm, module, entry_point.name)
        dist = entry_point.dist
        infos.append(PluginInfo(entry_point.name, dist.version if dist else "", dist.name if dist else "", ()))
    if settings.plugins_allow:
        # A plugin both allowed and blocked is blocked: that is not a missing plugin.
        missing = sorted(set(settings.plugins_allow) - {info.name for info in infos} - set(settings.plugins_block))
        if missing:
            raise PluginError(
                f"setting plugins.allow (CAREFRONT_PLUGINS) names plugins that are not installed: {', '.join(missing)}"
            )
    return _with_hooks(pm, infos)


def _register(pm: pluggy.PluginManager, module: object, name: str) -> None:
    try:
        pm.register(module, name=name)
    except pluggy.PluginValidationError as error:
        raise PluginError(f"plugin {name!r}: {error}") from None


def _with_hooks(pm: pluggy.PluginManager, infos: Iterable[PluginInfo]) -> tuple[PluginInfo, ...]:
    result = []
    for info in infos:
        callers = pm.get_hookcallers(pm.get_plugin(info.name)) or []
        result.append(PluginInfo(info.name, info.version, info.distribution, tuple(sorted(c.name for c in callers))))
    return tuple(result)


def _collect_registrations(pm: pluggy.PluginManager) -> tuple[AdapterRegistration, ...]:
    registrations: list[AdapterRegistration] = []
    for port, hook_name in REGISTRATION_HOOKS.items():
        # One registry per plugin, so every offer is labelled with the plugin that made it.
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            registry = AdapterRegistry(port=port, plugin=impl.plugin_name)
            try:
                _call(impl, registry=registry)
            except Exception as error:
                raise PluginError(f"plugin {impl.plugin_name!r}: {hook_name} failed: {error!r}") from error
            registrations.extend(registry.registrations)
    return tuple(registrations)
