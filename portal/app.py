"""The composition root: ``create_app()`` builds the whole portal from one init plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from types import ModuleType

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from litestar import Litestar
from litestar.config.app import AppConfig
from litestar.config.compression import CompressionConfig
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.middleware.compression import CompressionMiddleware
from litestar.plugins import InitPlugin
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from portal import database, jobs
from portal.access import signed_in
from portal.audit.log import Auditor
from portal.audit.middleware import audit_denials_middleware
from portal.billing.pages import ROUTES as BILLING_ROUTES
from portal.console.acting_middleware import acting_middleware
from portal.console.routes import ROUTES as CONSOLE_ROUTES
from portal.coverage.payers import directory_for
from portal.coverage.routes import ROUTES as COVERAGE_ROUTES
from portal.csrf import csrf_protection
from portal.home.page import ROUTES as HOME_ROUTES
from portal.i18n import I18n
from portal.identity.routes import ROUTES as IDENTITY_ROUTES
from portal.identity.session_store import DatabaseSessionStore, SessionConfig
from portal.operations.controllers import PluginsController, ProbeController
from portal.payments.pages import ROUTES as PAYMENT_ROUTES
from portal.plans.routes import ROUTES as PLAN_ROUTES
from portal.plugin_host import PluginHost
from portal.questions.pages import ROUTES as QUESTION_ROUTES
from portal.scheduling.pages import ROUTES as SCHEDULING_ROUTES
from portal.security import security_headers_middleware
from portal.settings import Settings
from portal.web.controllers import FrontPageController, LanguageController
from portal.web.errors import handle_exception
from portal.web.fragments import FragmentCache
from portal.web.templating import StaticAssets
from portal.web.templating import install as install_template_helpers

PORTAL_DIR = Path(__file__).resolve().parent
_SOURCE_TEMPLATES = PORTAL_DIR.parent / "templates"
# In a source checkout the templates sit beside the package; a wheel carries them inside it.
TEMPLATES_DIR = _SOURCE_TEMPLATES if _SOURCE_TEMPLATES.is_dir() else PORTAL_DIR / "templates"
STATIC_DIR = PORTAL_DIR / "static"

SESSION_COOKIE = "__Host-carefront"
CSRF_COOKIE = "__Host-csrftoken"
# Answers that set no cookie: static files are cached for a year, by shared caches too, and probes are
# polled by load balancers.
COOKIELESS_PATHS = ["^/static/", "^/branding/", "^/healthz$", "^/readyz$"]


class CarefrontPlugin(InitPlugin):
    """Registers controllers, dependencies, middleware, sessions, CSRF and templates in one place."""

    def __init__(self, settings: Settings, plugin_host: PluginHost) -> None:
        self.settings = settings
        self.plugin_host = plugin_host
        self.i18n = I18n(settings.hospital.languages, settings.hospital.default_language)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings, host = self.settings, self.plugin_host
        app_config.route_handlers.extend(
            [
                ProbeController,
                PluginsController,
                FrontPageController,
                *IDENTITY_ROUTES,
                *HOME_ROUTES,
                *BILLING_ROUTES,
                *COVERAGE_ROUTES,
                *PAYMENT_ROUTES,
                *PLAN_ROUTES,
                *SCHEDULING_ROUTES,
                *QUESTION_ROUTES,
                *CONSOLE_ROUTES,
                LanguageController,
                create_static_files_router(path="/static", directories=[STATIC_DIR], opt={"public": True}),
                *(
                    create_static_files_router(
                        path=f"/static/plugins/{name}",
                        directories=[folder],
                        name=f"static-{name}",
                        opt={"public": True},
                    )
                    for name, folder in host.static_dirs()
                ),
                *host.routes(),
            ]
        )
        if settings.hospital.logo is not None:
            app_config.route_handlers.append(
                create_static_files_router(
                    path="/branding",
                    directories=[settings.hospital.logo.parent],
                    name="branding",
                    opt={"public": True},
                )
            )
        app_config.dependencies.update(
            {
                "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
                "plugin_host": Provide(lambda: host, use_cache=True, sync_to_thread=False),
            }
        )
        app_config.guards.append(signed_in)
        app_config.request_class = HTMXRequest
        app_config.plugins.append(HTMXPlugin())
        app_config.stores = {"sessions": DatabaseSessionStore(settings.session.absolute, clock=host.clock)}
        app_config.exception_handlers[Exception] = handle_exception
        app_config.middleware.append(
            SessionConfig(
                key=SESSION_COOKIE,
                max_age=int(settings.session.idle.total_seconds()),
                renew_on_access=True,
                secure=True,
                httponly=True,
                samesite="lax",
                exclude=COOKIELESS_PATHS,
            ).middleware
        )
        # Brotli, else gzip (PROMISES.md budgets: 30 KiB a first load). No BREACH oracle: the cookies
        # are SameSite=Lax, so another site's requests come without the session and its secrets.
        # Declared as middleware, not as ``compression_config`` (which Litestar runs inside every
        # middleware), so it compresses what the acting middleware below adds to htmx partials.
        compression = CompressionConfig(backend="brotli", brotli_gzip_fallback=True)
        app_config.middleware.append(DefineMiddleware(CompressionMiddleware, config=compression))
        # Inside the session middleware: it ends acting past its time and banners htmx partials.
        app_config.middleware.append(acting_middleware)
        # Innermost, where Litestar's own ``csrf_config`` would put it (portal/csrf.py says why not that).
        app_config.middleware.append(
            csrf_protection(
                CSRFConfig(
                    secret=settings.secret_key,
                    cookie_name=CSRF_COOKIE,
                    cookie_secure=True,
                    cookie_httponly=True,
                    cookie_samesite="lax",
                    exclude=COOKIELESS_PATHS,
                )
            )
        )
        app_config.template_config = TemplateConfig(engine=JinjaTemplateEngine.from_environment(self._environment()))
        app_config.lifespan.append(self._database_lifespan)
        # A wrong payers.toml stops start-up with what is wrong, as a wrong setting does.
        app_config.on_startup.append(lambda: directory_for(settings))
        auditor = Auditor(host.emit, host.clock)
        app_config.dependencies["auditor"] = Provide(lambda: auditor, use_cache=True, sync_to_thread=False)
        app_config.state.update({"settings": settings, "plugin_host": host, "i18n": self.i18n, "auditor": auditor})
        return app_config

    def _environment(self) -> Environment:
        # Plugin folders come after the portal's own, so a plugin cannot shadow a portal template.
        loader = ChoiceLoader(
            [
                FileSystemLoader(TEMPLATES_DIR),
                *(FileSystemLoader(folder) for folder in self.plugin_host.template_dirs()),
            ]
        )
        environment = Environment(
            loader=loader, autoescape=select_autoescape(default=True), auto_reload=False, extensions=[FragmentCache]
        )
        self.i18n.install(environment, self.settings.hospital.time_zone)
        environment.globals.update(hospital=self.settings.hospital)
        static_folders = {"": STATIC_DIR, **{f"plugins/{name}": path for name, path in self.plugin_host.static_dirs()}}
        install_template_helpers(environment, StaticAssets(static_folders))
        return environment

    @asynccontextmanager
    async def _database_lifespan(self, app: Litestar) -> AsyncIterator[None]:
        engine = await database.connect(self.settings)
        try:
            pending = await database.pending_migrations()
            if pending:
                raise database.UnappliedMigrations(pending)
            async with jobs.in_process(self.plugin_host, self.settings):
                yield
        finally:
            await self.plugin_host.aclose()
            await database.disconnect(engine)


def create_app(
    settings: Settings | None = None,
    *,
    plugins: Sequence[tuple[str, ModuleType | object]] | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Litestar:
    """Build the portal. Tests pass ``plugins`` explicitly; otherwise installed plugins are loaded."""
    settings = settings or Settings.load()
    plugin_host = PluginHost.load(settings, plugins=plugins, clock=clock)
    carefront = CarefrontPlugin(settings, plugin_host)
    app = Litestar(plugins=[carefront], openapi_config=None)
    # Litestar runs app middleware only around matched routes (litestar-org/litestar#175), so a 404, a
    # 405 or a CSRF 403 would lack the security headers and the reader's language: wrap the router too.
    app.asgi_handler = security_headers_middleware(
        carefront.i18n.middleware(audit_denials_middleware(app.asgi_handler))
    )
    return app
