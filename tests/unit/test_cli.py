"""The carefront command line: configuration mistakes end with a message, never a traceback."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

from portal.cli import main

SECRET = "s" * 40


@pytest.fixture
def environ(tmp_path) -> dict[str, str]:
    config = tmp_path / "carefront.toml"
    config.write_text("")
    return {
        "CAREFRONT_CONFIG": str(config),
        "CAREFRONT_SECRET_KEY": SECRET,
        "CAREFRONT_DATA_DIR": str(tmp_path / "var"),
        "CAREFRONT_PLUGINS": "sandbox",
    }


def run(environ, *args):
    return CliRunner().invoke(main, list(args), env=environ, catch_exceptions=False)


def test_migrate_then_migrate_again(environ):
    first = run(environ, "migrate")
    assert first.exit_code == 0, first.output
    assert re.search(r"Applied [1-9]\d* migration\(s\): identity:", first.output), first.output
    again = run(environ, "migrate")
    assert "Applied 0 migration(s); none pending." in again.output


def test_a_bad_setting_ends_with_its_name(environ):
    result = run({**environ, "CAREFRONT_SECRET_KEY": "short"}, "migrate")
    assert result.exit_code == 2
    assert "setting server.secret_key (CAREFRONT_SECRET_KEY): at least 32 characters" in result.output


def test_serve_refuses_several_workers_on_sqlite(environ):
    result = run(environ, "serve", "--workers", "2")
    assert result.exit_code == 2
    assert "several workers need DATABASE_URL=postgresql://" in result.output


def test_plugins_lists_each_plugin_with_version_hooks_adapters_and_health(environ):
    result = run(environ, "plugins")
    assert result.exit_code == 0, result.output
    assert "sandbox 0.1.0 (carefront-sandbox)" in result.output
    assert "carefront_register_ehr" in result.output
    assert "adapter: gateway = sandbox (in use)" in result.output
    assert "notifier: ok" in result.output


def test_plugins_explains_a_missing_adapter(environ):
    result = run({**environ, "CAREFRONT_PLUGINS": "", "CAREFRONT_DISABLE_PLUGINS": "sandbox"}, "plugins")
    assert result.exit_code == 2
    assert "no installed plugin offers an adapter for the ehr port" in result.output


def test_plugin_new_scaffolds_a_plugin(environ, tmp_path):
    result = run(environ, "plugin", "new", "acme", "--port", "notifier", "--directory", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "carefront-acme" / "src" / "carefront_acme" / "hooks.py").is_file()
    assert "pip install -e '.[test]'" in result.output


def test_plugin_new_refuses_a_bad_name(environ, tmp_path):
    result = run(environ, "plugin", "new", "Not Valid", "--port", "ehr", "--directory", str(tmp_path))
    assert result.exit_code == 2
    assert "NAME" in result.output


def test_audit_verify_reports_an_intact_log(environ):
    assert run(environ, "migrate").exit_code == 0
    result = run(environ, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "The audit log is intact: 0 row(s) checked." in result.output


def test_worker_refuses_an_unmigrated_database(environ):
    result = run(environ, "worker")
    assert result.exit_code != 0
    assert "unapplied migrations" in result.output
    assert "carefront migrate" in result.output


def test_worker_runs_until_told_to_stop(environ):
    assert run(environ, "migrate").exit_code == 0
    worker = subprocess.Popen(
        [sys.executable, "-c", "from portal.cli import main; main()", "worker"],
        env={**os.environ, **environ},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert worker.stdout is not None
        lines = iter(worker.stdout.readline, "")
        assert any("Worker running" in line for line in lines)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        worker.kill()


def test_database_drivers_never_log_statements_even_at_debug(environ, monkeypatch):
    """At DEBUG, aiosqlite and asyncpg would log each statement's parameters: patients' data (PROMISES.md 18)."""
    drivers = ("aiosqlite", "asyncpg", "piccolo")
    monkeypatch.setattr(logging.getLogger(), "level", logging.DEBUG)  # as CAREFRONT_LOG_LEVEL=DEBUG leaves it
    for driver in drivers:
        monkeypatch.setattr(logging.getLogger(driver), "level", logging.NOTSET)
    result = run({**environ, "CAREFRONT_LOG_LEVEL": "DEBUG"}, "migrate")
    assert result.exit_code == 0, result.output
    assert all(logging.getLogger(driver).getEffectiveLevel() == logging.INFO for driver in drivers)
