"""PROMISES.md 12: each plan installment is charged exactly once, even if the worker is killed before
the gateway call, after it, or after the commit; and two workers on PostgreSQL over 1,000 due
installments charge each once.

The workers are real ``carefront worker`` processes on a database of their own (a SQLite file, or a
new PostgreSQL database). A small test plugin, installed for the subprocess only (a ``.dist-info``
on its PYTHONPATH, loaded through the ``carefront`` entry point and the plugin allow-list), offers
the sandbox gateway under the name ``crashtest`` and calls ``os._exit`` at the chosen moment, once.
The sandbox gateway's own file is then asked how many charges it made for each plan's customer.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from contextlib import closing
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import carefront_sandbox.hooks
import pytest
from carefront_sandbox.gateway import TEST_CARDS
from carefront_sdk.models import SaveMethodRequest

from portal import database, piccolo_conf
from portal.payments.tables import PaymentAttempt
from portal.plans import agreements
from portal.plans.agreements import Actor, NewPlan
from portal.plans.schedule import Installment
from portal.plans.tables import InstallmentAttempt, PlanInstallment
from portal.plugin_host import PluginHost
from portal.settings import Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")

PLUGIN = '''
"""A test plugin: the sandbox gateway, and a process that dies at the chosen moment (once)."""
import asyncio
import os
from pathlib import Path

from carefront_sdk import hookimpl
from carefront_sandbox.base import FIELDS
from carefront_sandbox.gateway import SandboxGateway

MARKER = Path(os.environ.get("CRASH_MARKER", "/nonexistent/crash-marker"))


def die_once(moment):
    if os.environ.get("CRASH_AT") == moment and not MARKER.exists():
        MARKER.write_text(moment)
        os._exit(9)


class CrashingGateway(SandboxGateway):
    async def charge_saved_method(self, charge, idempotency_key):
        die_once("before_gateway")
        payment = await super().charge_saved_method(charge, idempotency_key)
        die_once("after_gateway")
        return payment


@hookimpl
def carefront_register_gateway(registry):
    registry.add("crashtest", CrashingGateway, config=FIELDS)


@hookimpl
def carefront_payment_succeeded(event):
    if event.plan_id:
        die_once("after_commit")
'''

CONFIG = """
[server]
adapter_timeout_seconds = 1

[jobs]
interval_seconds = 0.2

[ports]
gateway = "crashtest"

[plans]
grace_days = 60
"""


def _psql(server_url: str, sql: str) -> None:
    psql = PG_BIN / "psql" if (PG_BIN / "psql").exists() else "psql"
    subprocess.run(
        [psql, server_url, "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, capture_output=True
    )


@pytest.fixture
def own_database(database_backend, request, tmp_path):
    """A database of the test's own: the workers run every job on everything in it."""
    if database_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'workers.sqlite3'}"
        return
    server = request.getfixturevalue("postgres_server")
    name = f"carefront_workers_{secrets.token_hex(4)}"
    _psql(server, f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(server)._replace(path=f"/{name}").geturl()
    finally:
        _psql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def plugin_path(tmp_path) -> Path:
    """The crash plugin, installed for subprocesses that put this folder on their PYTHONPATH."""
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "carefront_crashtest.py").write_text(textwrap.dedent(PLUGIN))
    info = folder / "carefront_crashtest-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: carefront-crashtest\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[carefront]\ncrashtest = carefront_crashtest\n")
    return folder


@pytest.fixture
def worker_environ(own_database, portal_environ, tmp_path, plugin_path) -> dict[str, str]:
    environ = portal_environ(own_database, tmp_path / "data")
    Path(environ["CAREFRONT_CONFIG"]).write_text(CONFIG)
    return environ


@pytest.fixture
async def setting_up(worker_environ, plugin_path):
    """The workers' environment, and a host (sandbox only) to make plans with, on the workers' database."""
    environ = dict(worker_environ)
    environ |= {
        "CAREFRONT_PLUGINS": "sandbox,crashtest",
        # The venv's own packages need no path; a whole test session's sys.path can outgrow an env var.
        "PYTHONPATH": str(plugin_path),
        "CAREFRONT_LOG_LEVEL": "WARNING",
    }
    settings = replace(Settings.load(environ), ports={}, plugins_allow=("sandbox",))
    await database.migrate(settings)
    previous = piccolo_conf.DB
    engine = await database.connect(settings)
    host = PluginHost.load(settings, plugins=[("sandbox", carefront_sandbox.hooks)])
    try:
        yield environ, host
    finally:
        await database.disconnect(engine)
        database.bind(previous)


async def due_plans(host: PluginHost, plans: int, installments: int) -> list[dict]:
    """``plans`` autopay plans of made-up patients, each with ``installments`` already due."""
    now = host.clock()
    today = agreements.today_in(host.settings, now)
    made = []
    for _ in range(plans):
        customer = f"cf_crash_{secrets.token_hex(6)}"
        schedule = [Installment(today - timedelta(days=installments - day), 1_000 + day) for day in range(installments)]
        new = NewPlan(
            patient_id=f"pt-crash-{secrets.token_hex(6)}",
            account_number="G-CRASH",
            holder_account_id="",
            statements=[(None, sum(item.amount for item in schedule))],
            schedule=schedule,
            day=1,
            autopay=True,
            customer_reference=customer,
        )
        plan_id, _ = await agreements.create_plan(host, new, f"crash:{secrets.token_hex(8)}", Actor("system"))
        plan = await agreements.plan_of(new.patient_id, plan_id)
        checkout = await host.gateway.start_saving_method(
            SaveMethodRequest(customer, "/r", "/c"), idempotency_key=f"save:{secrets.token_hex(8)}"
        )
        await host.gateway.submit_card(checkout.reference, TEST_CARDS["4242424242424242"], "12/2035")
        saved = await host.gateway.read_payment(checkout.reference)
        await agreements.set_method(host, plan, saved.saved_method_reference, saved.method_summary, Actor("system"))
        made.append(await agreements.plan_of(new.patient_id, plan_id))
    return made


def start_worker(environ: dict[str, str], **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from portal.cli import main; main()", "worker"],
        env={**os.environ, **environ, **extra},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


async def wait_until_paid(plans: list[dict], expected: int, seconds: float) -> int:
    ids = [plan["id"] for plan in plans]
    deadline = time.monotonic() + seconds
    paid = 0
    while time.monotonic() < deadline:
        paid = await PlanInstallment.count().where(PlanInstallment.plan.is_in(ids) & (PlanInstallment.status == "paid"))
        if paid >= expected:
            return paid
        await asyncio.sleep(0.5)
    return paid


def stop(worker: subprocess.Popen[str]) -> str:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    try:
        output, _ = worker.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        worker.kill()
        output, _ = worker.communicate()
    return output


def gateway_charges(host: PluginHost, customers: list[str]) -> dict[str, list[tuple[str, int]]]:
    path = next(host.settings.data_dir.glob("sandbox-*.sqlite3"))
    with closing(sqlite3.connect(path)) as db:
        return {
            customer: db.execute(
                "SELECT status, amount FROM gateway_payments WHERE customer_reference = ? ORDER BY amount", (customer,)
            ).fetchall()
            for customer in customers
        }


async def check_each_charged_once(host: PluginHost, plans: list[dict], per_plan: int) -> None:
    charges = gateway_charges(host, [plan["customer_reference"] for plan in plans])
    for plan in plans:
        rows = await PlanInstallment.select().where(PlanInstallment.plan == plan["id"]).order_by(PlanInstallment.amount)
        assert [row["status"] for row in rows] == ["paid"] * per_plan, "0 missed installments"
        assert charges[plan["customer_reference"]] == [("succeeded", row["amount"]) for row in rows], "0 duplicates"
        attempts = await InstallmentAttempt.select().where(
            InstallmentAttempt.installment.is_in([r["id"] for r in rows])
        )
        assert sorted(a["state"] for a in attempts) == ["succeeded"] * per_plan
        ledger = await PaymentAttempt.count().where(
            PaymentAttempt.idempotency_key.is_in([a["idempotency_key"] for a in attempts])
        )
        assert ledger == per_plan, "one ledger row per installment"


@pytest.mark.parametrize("moment", ["before_gateway", "after_gateway", "after_commit"])
async def test_a_worker_killed_mid_charge_leaves_each_installment_charged_once(setting_up, tmp_path, moment):
    environ, host = setting_up
    plans = await due_plans(host, plans=3, installments=2)
    marker = tmp_path / "crashed"

    crashing = start_worker(environ, CRASH_AT=moment, CRASH_MARKER=str(marker))
    try:
        code = crashing.wait(timeout=120)
    finally:
        output = stop(crashing)
    assert code == 9, output
    assert marker.read_text() == moment

    fresh = start_worker(environ, CRASH_AT=moment, CRASH_MARKER=str(marker))  # the marker says: do not die again
    try:
        paid = await wait_until_paid(plans, 6, seconds=120)
    finally:
        output = stop(fresh)
    assert paid == 6, output
    await check_each_charged_once(host, plans, per_plan=2)


async def test_two_workers_charge_a_thousand_due_installments_once_each(setting_up, database_backend):
    if database_backend != "postgres":
        pytest.skip("several workers need PostgreSQL (SQLite serves one process)")
    environ, host = setting_up
    plans = await due_plans(host, plans=100, installments=10)
    workers = [start_worker(environ), start_worker(environ)]
    try:
        paid = await wait_until_paid(plans, 1_000, seconds=280)
    finally:
        outputs = [stop(worker) for worker in workers]
    assert paid == 1_000, outputs
    await check_each_charged_once(host, plans, per_plan=10)
