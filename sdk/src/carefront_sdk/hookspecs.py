"""Every hook a Carefront plugin may implement.

Three families:

- Registration hooks run once at start-up and hand adapter factories to a registry. They are plain
  functions: pluggy never awaits, so the I/O lives in the adapters' ``async`` methods.
- Extension hooks add navigation items, dashboard cards, routes, templates and static files.
- Event hooks tell plugins what happened, after the portal's transaction has committed. They must
  return quickly; an exception is logged with the plugin's name and does not undo anything.

Hooks grow only by adding arguments (an implementation may accept fewer than the spec offers).
Each is documented, with the exact signature, in ``sdk/HOOKS.md``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from carefront_sdk import hookspec
from carefront_sdk.adapters import AdapterRegistry
from carefront_sdk.models import (
    AppointmentEvent,
    AuditEvent,
    CoverageEvent,
    DashboardCard,
    DemoPersona,
    NavItem,
    PaymentEvent,
    PlanEvent,
)

# --- Registration --------------------------------------------------------------------------------


@hookspec
def carefront_register_ehr(registry: AdapterRegistry) -> None:
    """Offer EHR adapters with ``registry.add(name, factory, config=[...])``.

    :param registry: collects this plugin's offers for the ``ehr`` port.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_register_clearinghouse(registry: AdapterRegistry) -> None:
    """Offer clearinghouse adapters with ``registry.add(name, factory, config=[...])``.

    :param registry: collects this plugin's offers for the ``clearinghouse`` port.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_register_gateway(registry: AdapterRegistry) -> None:
    """Offer payment gateway adapters with ``registry.add(name, factory, config=[...])``.

    :param registry: collects this plugin's offers for the ``gateway`` port.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_register_notifier(registry: AdapterRegistry) -> None:
    """Offer notifier (email and SMS) adapters with ``registry.add(name, factory, config=[...])``.

    :param registry: collects this plugin's offers for the ``notifier`` port.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


# --- Extension -----------------------------------------------------------------------------------


@hookspec
def carefront_nav_items(audience: str, language: str) -> Iterable[NavItem] | None:
    """Links to add to the navigation for ``audience`` ("patient" or "staff").

    :param audience: who the navigation is for.
    :param language: the reader's language code ("en", "es"), to label the links in.
    :return: navigation items, or None; results of all implementations are merged and sorted by
        ``order``.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_dashboard_cards(patient_id: str, language: str) -> Iterable[DashboardCard] | None:
    """Cards to add to a patient's home page.

    :param patient_id: the EHR id of the patient whose home page is shown.
    :param language: the reader's language code.
    :return: cards, or None; results of all implementations are merged and sorted by ``order``.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_routes() -> Sequence[Any] | None:
    """Extra Litestar route handlers or routers to mount in the portal.

    Every route needs a session unless its handler sets ``opt={"public": True}``; paths should start
    with ``/-/<plugin name>/``.

    :return: route handlers, or None; results of all implementations are mounted.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_template_dirs() -> Iterable[Path] | None:
    """Folders of Jinja2 templates, searched after the portal's own.

    Put templates under a folder named after the plugin (``<dir>/<plugin>/page.html``) so they cannot
    shadow the portal's.

    :return: folders, or None; all implementations' folders are added.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_static_dirs() -> Iterable[tuple[str, Path]] | None:
    """Folders of static files, each served under ``/static/plugins/<name>/``.

    :return: ``(name, folder)`` pairs, or None; all implementations' folders are served.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_demo_personas() -> Iterable[DemoPersona] | None:
    """People a visitor can try the demo as; ``carefront demo`` prints them.

    Only a demo plugin (the sandbox) should implement this: the portal creates their sign-ins.

    :return: personas, or None; all implementations' personas are listed.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_code_descriptions(code_system: str, codes: Sequence[str], language: str) -> Mapping[str, str] | None:
    """Plain-language descriptions of billing codes, for the statement pages and their PDF.

    Called at page time, once per code system for all the codes on one page: answer from memory,
    without I/O.

    :param code_system: a :class:`carefront_sdk.models.CodeSystem` value: ``"CPT"``, ``"HCPCS"``,
        ``"REV"`` (charge lines), ``"CARC"``, ``"RARC"`` or ``"CAGC"`` (adjustments); other systems
        an EHR uses may be asked for too.
    :param codes: the codes to describe, each once.
    :param language: the reader's language code ("en", "es"); describe only codes you can describe
        in that language.
    :return: code to description for the codes it knows, or None. Answers of all implementations
        are merged: for each code the first answer in pluggy's call order wins (an implementation
        marked ``@hookimpl(tryfirst=True)`` is asked before the others). Any plugin's answer wins
        over the portal's own plain-language baseline (group codes and common CARCs); a code nobody
        describes shows the EHR's description of the line, or the code itself.

    .. versionadded:: 0.1
    """


# --- Events --------------------------------------------------------------------------------------


@hookspec
def carefront_payment_succeeded(event: PaymentEvent) -> None:
    """A payment was recorded as succeeded in the portal's ledger.

    :param event: the payment, with the gateway's reference.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_plan_created(event: PlanEvent) -> None:
    """A patient (or a representative) agreed to a payment plan.

    :param event: the plan; ``event.change`` is ``"created"``.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_plan_changed(event: PlanEvent) -> None:
    """A payment plan changed: amount, day, statements, method, length, paused, resumed, cancelled,
    defaulted or completed.

    :param event: the plan and what changed.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_coverage_changed(event: CoverageEvent) -> None:
    """A coverage was added, updated or removed through the portal.

    :param event: whose coverage, and what changed.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_appointment_booked(event: AppointmentEvent) -> None:
    """An appointment was booked (or rescheduled) through the portal.

    :param event: the appointment; ``previous_appointment_id`` is set on a reschedule.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_appointment_cancelled(event: AppointmentEvent) -> None:
    """An appointment was cancelled through the portal.

    :param event: the cancelled appointment.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@hookspec
def carefront_audit_event(event: AuditEvent) -> None:
    """An audit row was written: forward it to a SIEM.

    :param event: who did what to whose data, when, and the outcome.
    :return: nothing; every implementation is called.

    .. versionadded:: 0.1
    """
