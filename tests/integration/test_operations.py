"""Probes, the refusal to serve an unmigrated database, and the staff plugins page."""

from __future__ import annotations

import pytest

from portal import database
from portal.app import create_app
from portal.settings import Settings


async def test_healthz_answers_without_a_session_or_a_cookie(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "set-cookie" not in response.headers


async def test_readyz_checks_database_migrations_and_adapters(client):
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "adapters": "ok"},
    }


async def test_the_portal_refuses_a_database_with_unapplied_migrations(tmp_path, portal_environ):
    settings = Settings.load(portal_environ(f"sqlite:///{tmp_path / 'behind.sqlite3'}", tmp_path / "data"))
    app = create_app(settings)
    # Litestar runs start-up in a task group, which wraps what a start-up hook raises.
    with pytest.RaisesGroup(database.UnappliedMigrations, flatten_subgroups=True) as caught:
        async with app.lifespan():
            pass
    (refusal,) = caught.value.exceptions
    assert refusal.pending
    every_app = {config.app_name for config in database.app_configs()}
    assert {item.partition(":")[0] for item in refusal.pending} == every_app
    assert "carefront migrate" in str(refusal)


async def test_migrate_applies_each_migration_once(settings):
    assert await database.migrate(settings) == []


async def test_the_plugins_page_is_for_staff_only(client, session_as):
    anonymous = await client.get("/-/plugins/", follow_redirects=False)
    assert anonymous.status_code in {302, 303, 401}
    await session_as("patient")
    assert (await client.get("/-/plugins/")).status_code == 403


async def test_the_plugins_page_lists_plugins_versions_hooks_adapters_and_health(client, session_as):
    await session_as("supervisor")
    response = await client.get("/-/plugins/")
    assert response.status_code == 200
    page = response.text
    assert "sandbox" in page
    assert "0.1.0" in page
    assert "carefront_register_gateway" in page
    for port in ("ehr", "clearinghouse", "gateway", "notifier"):
        assert port in page
