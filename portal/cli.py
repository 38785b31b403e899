"""The ``carefront`` command: demo, serve, migrate, plugins, and the plugin scaffold."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click
import uvicorn
from carefront_sdk.adapters import Port

from portal import database
from portal.app import create_app
from portal.audit import log
from portal.plugin_host import PluginError, PluginHost
from portal.scaffold import create_plugin
from portal.settings import Settings, SettingsError

DEMO_ADAPTER_SETTINGS = {"sandbox": {"latency_ms": 40}}
"""The demo feels like a real hospital: every sandbox call takes a little time."""


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
    asyncio.run(database.migrate(settings))
    app = create_app(settings)  # builds the sandbox adapters, which generate the hospital on first run
    _print_demo_sign_ins(app.state["plugin_host"], settings)
    uvicorn.run(app, host=host, port=port)


def _demo_secret(data_dir: Path) -> str:
    """A secret kept in the data folder, so demo sessions survive a restart; never used in production."""
    path = data_dir / "demo-secret-key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _print_demo_sign_ins(host: PluginHost, settings: Settings) -> None:
    personas = host.demo_personas()
    click.echo("")
    click.echo(f"  {settings.hospital.name} — Carefront demo at {settings.public_url}")
    click.echo("")
    if not personas:
        click.echo("  No demo plugin is installed, so there are no demo people to sign in as.")
    for persona in personas:
        click.echo(f"  {persona.label}:")
        click.echo(f"      {persona.given_name} {persona.family_name} <{persona.email}>")
        identity = [
            f"born {persona.birth_date.isoformat()}" if persona.birth_date else "",
            f"MRN {persona.mrn}" if persona.mrn else "",
            f"statement code {persona.statement_code}" if persona.statement_code else "",
        ]
        if any(identity):
            click.echo("      " + ", ".join(part for part in identity if part))
    click.echo("")
    click.echo(f"  Messages the demo sends (one-time codes, receipts): {settings.public_url}/-/sandbox/outbox")
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
