"""Fixtures for the whole suite: a migrated database on each backend, settings, the app and a client.

A test that asks for ``database_url``, ``settings``, ``app`` or ``client`` (directly or through another
fixture) runs once on SQLite and once on PostgreSQL 15; every other test runs once. ``--database``
picks one backend. PostgreSQL is ``CAREFRONT_TEST_POSTGRES_URL`` when set, else a throwaway cluster
that this file starts on a free loopback port and removes at the end.

Tests on one backend share its database: make the rows a test needs, with unique values, in the test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import carefront_sandbox.hooks
import httpx
import pytest
from asgi_lifespan import LifespanManager
from litestar import Litestar

from portal.app import create_app
from portal.database import migrate
from portal.settings import Settings

BACKENDS = ("sqlite", "postgres")
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PUBLIC_URL = "https://testserver"
# Fixed, so a failure reproduces byte for byte.
SECRET_KEY = "carefront-test-secret-key-not-for-production-0123456789"
# Tests never autoload plugins: the in-process app gets this list, a server subprocess the same allow-list.
PLUGINS = [("sandbox", carefront_sandbox.hooks)]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database",
        choices=(*BACKENDS, "all"),
        default="all",
        help="run database tests on this backend only (default: all)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Parametrize only the tests that reach the database, so unit tests run once.
    if "database_backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("database")
        backends = BACKENDS if chosen == "all" else (chosen,)
        metafunc.parametrize("database_backend", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def database_backend(request: pytest.FixtureRequest) -> str:
    """``"sqlite"`` or ``"postgres"``: the backend this run of the test uses."""
    backend: str = request.param
    return backend


def environ_for(database_url: str, data_dir: Path, public_url: str = PUBLIC_URL) -> dict[str, str]:
    """The environment a test portal runs with: no inherited settings, no stray carefront.toml."""
    config = data_dir / "carefront.toml"
    data_dir.mkdir(parents=True, exist_ok=True)
    config.touch()
    return {
        "CAREFRONT_CONFIG": str(config),
        "DATABASE_URL": database_url,
        "CAREFRONT_DATA_DIR": str(data_dir),
        "CAREFRONT_SECRET_KEY": SECRET_KEY,
        "CAREFRONT_PUBLIC_URL": public_url,
        "CAREFRONT_PLUGINS": ",".join(name for name, _ in PLUGINS),
    }


@pytest.fixture(scope="session")
def portal_environ() -> Callable[..., dict[str, str]]:
    """``environ_for(database_url, data_dir, public_url=...)``: the environment for a test portal."""
    return environ_for


def _run(command: list[str | Path], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}")


def _postgres_tool(tool: str, *args: str | Path) -> list[str | Path]:
    """A PostgreSQL 15 command line, run as ``postgres`` when we are root (the server refuses root)."""
    as_postgres: list[str | Path] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return [*as_postgres, PG_BIN / tool, *args]


@pytest.fixture(scope="session")
def postgres_server(unused_tcp_port_factory: Callable[[], int]) -> Iterator[str]:
    """URL of a PostgreSQL 15 server's maintenance database, for creating test databases.

    ``CAREFRONT_TEST_POSTGRES_URL`` if set; otherwise a throwaway cluster: initdb into a temporary
    folder owned by ``postgres``, listening only on 127.0.0.1 at a free port, fsync off; stopped
    with ``pg_ctl stop -m immediate`` and deleted at the end of the session.
    """
    if url := os.environ.get("CAREFRONT_TEST_POSTGRES_URL"):
        yield url
        return
    # Not tmp_path_factory: its folders are private to the current user, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="carefront-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    data, log = root / "data", root / "server.log"
    port = unused_tcp_port_factory()
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
        " -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    try:
        initdb = ("-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        _run(_postgres_tool("initdb", *initdb), "initdb")
        try:
            _run(_postgres_tool("pg_ctl", "start", "-D", data, "-w", "-l", log, "-o", options), "pg_ctl start")
        except RuntimeError as error:
            raise RuntimeError(f"{error}\n{log.read_text() if log.exists() else ''}") from None
        yield f"postgresql://postgres:postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            stop = _postgres_tool("pg_ctl", "stop", "-D", data, "-m", "immediate", "-w")
            subprocess.run(stop, capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def _psql(server_url: str, sql: str) -> None:
    psql = PG_BIN / "psql" if (PG_BIN / "psql").exists() else "psql"
    _run([psql, server_url, "--no-psqlrc", "-v", "ON_ERROR_STOP=1", "-qc", sql], f"psql: {sql}")


@pytest.fixture(scope="session")
def database_url(
    database_backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database on this run's backend (a new SQLite file, or a new PostgreSQL database)."""
    if database_backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'carefront.sqlite3'}"
        return
    server_url: str = request.getfixturevalue("postgres_server")
    name = f"carefront_test_{secrets.token_hex(4)}"
    _psql(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield urlsplit(server_url)._replace(path=f"/{name}").geturl()
    finally:
        _psql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def settings(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings for the migrated test database, a temporary data folder and https://testserver."""
    environ = environ_for(database_url, tmp_path_factory.mktemp("data"))
    # In-process tests run the jobs themselves (portal.jobs.run_once), at the moment the test chooses.
    loaded = Settings.load({**environ, "CAREFRONT_JOBS_IN_PROCESS": "false"})
    await migrate(loaded)
    return loaded


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Litestar]:
    """A new app with the sandbox plugin for each test, started (lifespan entered) and stopped around it."""
    application = create_app(settings, plugins=PLUGINS)
    # ASGITransport sends no lifespan events. Not `async with app.lifespan()` either: pytest-asyncio
    # sets a fixture up and tears it down in different tasks, and Litestar's anyio task group refuses
    # to be left from another task; LifespanManager keeps the lifespan in a task of its own.
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling the app in this event loop, at https://testserver (so Secure cookies stick).

    Not Litestar's AsyncTestClient: that runs the app on another event loop, which asyncpg refuses.
    """
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        yield http
