"""Extension and event hooks, through the real plugin host and a running app."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import carefront_sandbox.hooks
import pytest
from carefront_sdk import hookimpl
from carefront_sdk.models import (
    Appointment,
    AppointmentEvent,
    AppointmentStatus,
    AuditEvent,
    CoverageEvent,
    DashboardCard,
    DemoPersona,
    Money,
    NavItem,
    PaymentEvent,
    PlanEvent,
)
from litestar import get
from litestar.response import Template

from portal.app import create_app

NOW = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)


class Extras:
    """A plugin using every extension hook and recording every event."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.events: list[tuple[str, object]] = []
        (folder / "templates" / "extras").mkdir(parents=True)
        (folder / "templates" / "extras" / "hello.html").write_text("<p>Hello from {{ who }}</p>")
        (folder / "static").mkdir()
        (folder / "static" / "extras.css").write_text("p { color: navy }")

    @hookimpl
    def carefront_nav_items(self, audience, language):
        label = "Mi cartera" if language == "es" else "My wallet"
        return [NavItem(label, "/-/extras/wallet", audience="patient", order=5)] if audience == "patient" else []

    @hookimpl
    def carefront_dashboard_cards(self, patient_id):
        return [DashboardCard("Flu shots", f"Walk-in flu shots for {patient_id}", href="/-/extras/flu", order=1)]

    @hookimpl
    def carefront_routes(self):
        @get("/-/extras/hello", opt={"public": True})
        async def hello() -> Template:
            return Template("extras/hello.html", context={"who": "extras"})

        @get("/-/extras/private")
        async def private() -> str:
            return "secret"

        return [hello, private]

    @hookimpl
    def carefront_template_dirs(self):
        return [self.folder / "templates"]

    @hookimpl
    def carefront_static_dirs(self):
        return [("extras", self.folder / "static")]

    @hookimpl
    def carefront_demo_personas(self):
        return [DemoPersona("patient", "a patient from extras", "Ada", "Lovelace", "ada@example.org")]

    @hookimpl
    def carefront_code_descriptions(self, code_system, codes, language):
        words = {"en": "Office visit, our words", "es": "Consulta, en nuestras palabras"}
        return {"99213": words[language]} if code_system == "CPT" and "99213" in codes else None

    @hookimpl
    def carefront_payment_succeeded(self, event):
        self.events.append(("payment_succeeded", event))

    @hookimpl
    def carefront_plan_created(self, event):
        self.events.append(("plan_created", event))

    @hookimpl
    def carefront_plan_changed(self, event):
        self.events.append(("plan_changed", event))

    @hookimpl
    def carefront_coverage_changed(self, event):
        self.events.append(("coverage_changed", event))

    @hookimpl
    def carefront_appointment_booked(self, event):
        self.events.append(("appointment_booked", event))

    @hookimpl
    def carefront_appointment_cancelled(self, event):
        self.events.append(("appointment_cancelled", event))

    @hookimpl
    def carefront_audit_event(self, event):
        self.events.append(("audit_event", event))


class Broken:
    """A plugin whose every navigation, code-description and event hook fails."""

    @hookimpl
    def carefront_code_descriptions(self, code_system):
        raise RuntimeError("bug in a plugin")

    @hookimpl
    def carefront_nav_items(self, audience):
        raise RuntimeError("bug in a plugin")

    @hookimpl
    def carefront_payment_succeeded(self, event):
        raise RuntimeError("bug in a plugin")


@pytest.fixture
def extras(tmp_path) -> Extras:
    return Extras(tmp_path / "extras")


@pytest.fixture
def host_with_extras(settings, extras):
    app = create_app(settings, plugins=[("sandbox", carefront_sandbox.hooks), ("extras", extras), ("broken", Broken())])
    return app, app.state["plugin_host"]


def test_hook_carefront_nav_items(host_with_extras, caplog):
    _, host = host_with_extras
    with caplog.at_level(logging.ERROR, logger="carefront.plugins"):
        items = host.nav_items("patient", "es")
    assert [item.label for item in items if item.href == "/-/extras/wallet"] == ["Mi cartera"]
    assert host.nav_items("staff", "en") == [item for item in host.nav_items("staff", "en") if item.audience == "staff"]
    assert "plugin=broken hook=carefront_nav_items failed" in caplog.text


def test_hook_carefront_dashboard_cards(host_with_extras):
    _, host = host_with_extras
    cards = host.dashboard_cards("patient-7", "en")
    assert DashboardCard("Flu shots", "Walk-in flu shots for patient-7", href="/-/extras/flu", order=1) in cards
    assert cards == sorted(cards, key=lambda card: card.order)


def test_hook_carefront_code_descriptions(host_with_extras, caplog):
    _, host = host_with_extras
    with caplog.at_level(logging.ERROR, logger="carefront.plugins"):
        found = host.code_descriptions({"CPT": ["99213", "85025", "NOPE"], "CARC": []}, "es")
    # extras was registered after the sandbox, so pluggy asks it first: its words win for 99213.
    assert found[("CPT", "99213")] == "Consulta, en nuestras palabras"
    assert found[("CPT", "85025")] == "Hemograma completo"
    assert ("CPT", "NOPE") not in found
    assert "plugin=broken hook=carefront_code_descriptions failed" in caplog.text


def test_hook_carefront_demo_personas(host_with_extras):
    _, host = host_with_extras
    personas = host.demo_personas()
    assert any(persona.label == "a patient from extras" for persona in personas)


async def test_hook_carefront_routes(host_with_extras, client_for):
    app, _ = host_with_extras
    async with client_for(app) as client:
        hello = await client.get("/-/extras/hello")
        assert hello.status_code == 200
        private = await client.get("/-/extras/private", follow_redirects=False)
        assert private.status_code != 200, "a plugin route without opt public needs a session"


async def test_hook_carefront_template_dirs(host_with_extras, client_for):
    app, _ = host_with_extras
    async with client_for(app) as client:
        assert "Hello from extras" in (await client.get("/-/extras/hello")).text


async def test_hook_carefront_static_dirs(host_with_extras, client_for):
    app, _ = host_with_extras
    async with client_for(app) as client:
        response = await client.get("/static/plugins/extras/extras.css")
        assert response.status_code == 200
        assert "navy" in response.text


APPOINTMENT = Appointment(
    id="a1",
    patient_id="p1",
    status=AppointmentStatus.BOOKED,
    starts_at=NOW,
    ends_at=NOW,
    visit_type_id="vt",
    provider_id="pr",
    location_id="lo",
)
EVENTS = {
    "carefront_payment_succeeded": PaymentEvent("pay1", "p1", Money(2500), "ch_1", NOW),
    "carefront_plan_created": PlanEvent("plan1", "p1", "created", NOW),
    "carefront_plan_changed": PlanEvent("plan1", "p1", "amount_changed", NOW),
    "carefront_coverage_changed": CoverageEvent("p1", "c1", "added", NOW),
    "carefront_appointment_booked": AppointmentEvent(APPOINTMENT, NOW),
    "carefront_appointment_cancelled": AppointmentEvent(APPOINTMENT, NOW),
    "carefront_audit_event": AuditEvent("au1", NOW, "staff:rep1", "patient:p1", "statement.read", "s1", "allowed"),
}


def emitted(host_with_extras, extras, hook_name):
    _, host = host_with_extras
    host.emit(hook_name, EVENTS[hook_name])
    return [event for name, event in extras.events if f"carefront_{name}" == hook_name]


def test_hook_carefront_payment_succeeded(host_with_extras, extras, caplog):
    with caplog.at_level(logging.ERROR, logger="carefront.plugins"):
        received = emitted(host_with_extras, extras, "carefront_payment_succeeded")
    assert received == [EVENTS["carefront_payment_succeeded"]], "a failing plugin must not stop the others"
    assert "plugin=broken hook=carefront_payment_succeeded failed" in caplog.text


def test_hook_carefront_plan_created(host_with_extras, extras):
    assert emitted(host_with_extras, extras, "carefront_plan_created") == [EVENTS["carefront_plan_created"]]


def test_hook_carefront_plan_changed(host_with_extras, extras):
    assert emitted(host_with_extras, extras, "carefront_plan_changed") == [EVENTS["carefront_plan_changed"]]


def test_hook_carefront_coverage_changed(host_with_extras, extras):
    assert emitted(host_with_extras, extras, "carefront_coverage_changed") == [EVENTS["carefront_coverage_changed"]]


def test_hook_carefront_appointment_booked(host_with_extras, extras):
    assert emitted(host_with_extras, extras, "carefront_appointment_booked") == [EVENTS["carefront_appointment_booked"]]


def test_hook_carefront_appointment_cancelled(host_with_extras, extras):
    received = emitted(host_with_extras, extras, "carefront_appointment_cancelled")
    assert received == [EVENTS["carefront_appointment_cancelled"]]


def test_hook_carefront_audit_event(host_with_extras, extras):
    assert emitted(host_with_extras, extras, "carefront_audit_event") == [EVENTS["carefront_audit_event"]]


def test_emit_refuses_a_hook_that_does_not_exist(host_with_extras):
    _, host = host_with_extras
    with pytest.raises(ValueError, match="no event hook named 'carefront_payment_suceeded'"):
        host.emit("carefront_payment_suceeded", EVENTS["carefront_payment_succeeded"])
