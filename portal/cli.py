"""The ``carefront`` command: demo, serve, worker, migrate, plugins, audit, admin and the plugin scaffold."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any

import click
import uvicorn
from carefront_sdk.adapters import Port

from portal import database, jobs
from portal.app import create_app
from portal.audit import log
from portal.identity.demo_accounts import DEMO_PASSWORD, open_demo_accounts
from portal.identity.passwords import password_problem
from portal.identity.staff import Enrolment, create_local_administrator
from portal.plugin_host import PluginError, PluginHost
from portal.scaffold import create_plugin
from portal.settings import OidcProvider, Settings, SettingsError

DEMO_ADAPTER_SETTINGS = {"sandbox": {"latency_ms": 40}}
"""The demo feels like a real hospital: every sandbox call takes a little time."""
DEMO_STAFF_OIDC = {
    "client_id": "carefront-sandbox-staff",
    "client_secret": "sandbox-staff-secret-not-a-secret",
    "roles": {
        "carefront-representatives": "representative",
        "carefront-supervisors": "supervisor",
        "carefront-administrators": "administrator",
    },
}
"""The sandbox's development OpenID provider's published demo client (see carefront_sandbox.oidc)."""


def _fail_clearly(command: Callable[..., Any]) -> Callable[..., Any]:
    """A configuration mistake ends the command with its message, not a traceback."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (SettingsError, PluginError, database.UnappliedMigrations) as error:
            click.echo(f"carefront: {error}", err=True)
            sys.exit(2)

    return run


@click.group()
@click.version_option(package_name="carefront")
def main() -> None:
    """Carefront, the patient self-service portal."""
    logging.basicConfig(
        level=os.environ.get("CAREFRONT_LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s"
    )
    # At DEBUG the database drivers log every statement with its parameters, patients' data included
    # (PROMISES.md 18): they stay at INFO whatever the portal's own level.
    for driver in ("aiosqlite", "asyncpg", "piccolo"):
        logging.getLogger(driver).setLevel(max(logging.INFO, logging.getLogger().level))


@main.command()
@_fail_clearly
def migrate() -> None:
    """Apply the database migrations the code needs."""
    settings = Settings.load()
    applied = asyncio.run(database.migrate(settings))
    click.echo(f"Applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "; none pending."))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="App processes (PostgreSQL for more than 1).")
@_fail_clearly
def serve(host: str, port: int, workers: int) -> None:
    """Serve the portal with the configuration in carefront.toml and the environment."""
    settings = Settings.load()
    if workers > 1 and settings.is_sqlite:
        raise SettingsError("--workers", "1 with SQLite; several workers need DATABASE_URL=postgresql://...")
    PluginHost.load(settings)  # fail here, with the message, rather than inside each worker
    uvicorn.run("portal.app:create_app", factory=True, host=host, port=port, workers=workers, proxy_headers=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@_fail_clearly
def demo(host: str, port: int) -> None:
    """Migrate, seed the sandbox hospital, print demo sign-ins, and serve."""
    environ = dict(os.environ)
    data_dir = Path(environ.get("CAREFRONT_DATA_DIR", "var")).resolve()
    environ.setdefault("CAREFRONT_DATA_DIR", str(data_dir))
    environ.setdefault("CAREFRONT_SECRET_KEY", _demo_secret(data_dir))
    environ.setdefault("CAREFRONT_PUBLIC_URL", f"http://{host}:{port}")
    settings = Settings.load(environ)
    if not settings.adapters:
        settings = Settings.from_document({"adapters": DEMO_ADAPTER_SETTINGS}, environ, settings.config_path)
    if settings.plugins_allow is None and not settings.ports:
        # Other installed plugins (fhir, x12, stripe) need a hospital's configuration: the demo is the sandbox.
        settings = replace(settings, plugins_allow=("sandbox",))
    if settings.identity.staff_oidc is None:
        # Staff sign in through the sandbox's own OpenID provider: the code path a real hospital's takes.
        demo_provider = OidcProvider(
            issuer=f"{settings.public_url}/-/sandbox/oidc",
            name="the sandbox's demo identity provider",
            **DEMO_STAFF_OIDC,
        )
        settings = replace(settings, identity=replace(settings.identity, staff_oidc=demo_provider))
    asyncio.run(database.migrate(settings))
    app = create_app(settings)  # builds the sandbox adapters, which generate the hospital on first run
    plugin_host = app.state["plugin_host"]
    sign_ins = asyncio.run(_open_demo_accounts(settings, plugin_host))
    _print_demo_sign_ins(plugin_host, settings, sign_ins)
    uvicorn.run(app, host=host, port=port)


def _demo_secret(data_dir: Path) -> str:
    """A secret kept in the data folder, so demo sessions survive a restart; never used in production."""
    path = data_dir / "demo-secret-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


async def _open_demo_accounts(settings: Settings, host: PluginHost) -> dict[str, str]:
    engine = await database.connect(settings)
    try:
        opened = await open_demo_accounts(host, host.clock())
    finally:
        await database.disconnect(engine)
    return {sign_in.persona.email: sign_in.email for sign_in in opened}


def _print_demo_sign_ins(host: PluginHost, settings: Settings, sign_ins: dict[str, str]) -> None:
    personas = host.demo_personas()
    click.echo("")
    click.echo(f"  {settings.hospital.name} — Carefront demo at {settings.public_url}")
    click.echo("")
    if not personas:
        click.echo("  No demo plugin is installed, so there are no demo people to sign in as.")
    for persona in personas:
        click.echo(f"  {persona.label}:")
        click.echo(f"      {persona.given_name} {persona.family_name} <{persona.email}>")
        if persona.email in sign_ins:
            click.echo(f"      sign in at {settings.public_url}/sign-in with {sign_ins[persona.email]}")
            click.echo(f"      and the password: {DEMO_PASSWORD}")
        elif persona.role in {"representative", "supervisor"}:
            click.echo(f"      sign in at {settings.public_url}/staff/sign-in and choose {persona.given_name}")
        identity = [
            f"born {persona.birth_date.isoformat()}" if persona.birth_date else "",
            f"MRN {persona.mrn}" if persona.mrn else "",
            f"statement code {persona.statement_code}" if persona.statement_code else "",
        ]
        if any(identity):
            click.echo("      " + ", ".join(part for part in identity if part))
    click.echo("")
    click.echo(f"  Messages the demo sends (one-time codes, receipts): {settings.public_url}/-/sandbox/outbox")
    click.echo(f"  Staff sign in at {settings.public_url}/staff/sign-in")
    click.echo("")


@main.command("plugins")
@_fail_clearly
def plugins_command() -> None:
    """List installed plugins, their versions, hooks and adapters."""
    settings = Settings.load()
    host = PluginHost.load(settings)
    chosen = host.chosen()
    for info in host.plugins:
        click.echo(f"{info.name} {info.version} ({info.distribution})")
        click.echo(f"  hooks: {', '.join(info.hooks) or 'none'}")
        for registration in host.registrations:
            if registration.plugin == info.name:
                in_use = chosen.get(registration.port) == registration
                marker = " (in use)" if in_use else ""
                click.echo(f"  adapter: {registration.port} = {registration.name}{marker}")
    health = asyncio.run(host.health())
    for port in Port:
        state = health.get(port)
        click.echo(
            f"{port}: {'ok' if state and state.ok else 'failing'}{' — ' + state.detail if state and state.detail else ''}"
        )


@main.command()
@_fail_clearly
def worker() -> None:
    """Run the background jobs (outbox relay and the rest) until stopped; start as many as you like."""
    settings = Settings.load()
    app = create_app(settings)
    host: PluginHost = app.state["plugin_host"]

    async def run() -> None:
        engine = await database.connect(settings)
        try:
            pending = await database.pending_migrations()
            if pending:
                raise database.UnappliedMigrations(pending)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signal_number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signal_number, stop.set)
            click.echo(f"Worker running every {settings.jobs.interval_seconds:g} s; Ctrl+C or SIGTERM stops it.")
            await jobs.run_forever(host, settings, stop)
        finally:
            await database.disconnect(engine)

    asyncio.run(run())


@main.group()
def audit() -> None:
    """The audit log."""


@audit.command("verify")
@_fail_clearly
def audit_verify() -> None:
    """Walk the audit log's hash chain; exit 1 and name the first broken row if it was tampered with."""
    settings = Settings.load()

    async def run() -> log.Verdict:
        engine = await database.connect(settings)
        try:
            return await log.verify()
        finally:
            await database.disconnect(engine)

    verdict = asyncio.run(run())
    if verdict.intact:
        click.echo(f"The audit log is intact: {verdict.rows} row(s) checked.")
        return
    click.echo(f"The audit log is broken at row {verdict.first_broken_id}: {verdict.reason}.", err=True)
    sys.exit(1)


@main.group()
def admin() -> None:
    """Staff accounts for setting the portal up."""


@admin.command("create")
@click.option("--email", required=True, help="The administrator's email address, used to sign in.")
@click.option("--name", required=True, help='Given and family name, e.g. "Ada Lovelace".')
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input instead of asking.")
@_fail_clearly
def admin_create(email: str, name: str, password_stdin: bool) -> None:
    """Create a local administrator, who signs in with a password and a code from an authenticator app."""
    settings = Settings.load()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    given, _, family = name.strip().rpartition(" ")
    problem = password_problem(password, email, *name.split())
    if problem:
        raise click.BadParameter(problem, param_hint="password")
    try:
        enrolment = asyncio.run(
            _create_administrator(settings, email, given or family, family if given else "", password)
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--email") from None
    click.echo(f"Created the administrator {email}. Add this key to an authenticator app now; it is shown only once.")
    click.echo(f"  key: {enrolment.secret}")
    click.echo(f"  or open: {enrolment.uri}")
    click.echo(f"Then sign in at {settings.public_url}/staff/sign-in/local with the password and the app's code.")


async def _create_administrator(settings: Settings, email: str, given: str, family: str, password: str) -> Enrolment:
    engine = await database.connect(settings)
    try:
        pending = await database.pending_migrations()
        if pending:
            raise database.UnappliedMigrations(pending)
        return await create_local_administrator(
            settings, email=email, given_name=given, family_name=family, password=password, now=datetime.now(UTC)
        )
    finally:
        await database.disconnect(engine)


@main.group()
def plugin() -> None:
    """Write your own plugin."""


@plugin.command("new")
@click.argument("name")
@click.option("--port", "port_name", type=click.Choice([p.value for p in Port]), required=True)
@click.option("--directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True)
def plugin_new(name: str, port_name: str, directory: Path) -> None:
    """Scaffold a plugin distribution with a working in-memory adapter and contract tests."""
    try:
        created = create_plugin(name, Port(port_name), directory)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="NAME") from None
    click.echo(f"Created {created}. Next: cd {created} && pip install -e '.[test]' && pytest")
