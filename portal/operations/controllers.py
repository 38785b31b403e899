"""Probes for load balancers and the staff page that lists plugins."""

from __future__ import annotations

from carefront_sdk.adapters import Port
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import Response, Template
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from portal.access import staff_only
from portal.database import pending_migrations
from portal.plugin_host import PluginHost


class ProbeController(Controller):
    include_in_schema = False

    @get("/healthz", opt={"public": True}, skip_session=True)
    async def healthz(self) -> dict[str, str]:
        """The process is up and answering; nothing else is checked."""
        return {"status": "ok"}

    @get("/readyz", opt={"public": True}, skip_session=True)
    async def readyz(self, plugin_host: NamedDependency[PluginHost]) -> Response[dict[str, object]]:
        """Ready for traffic: the database answers, its migrations are applied, every port has an adapter."""
        checks: dict[str, str] = {}
        try:
            pending = await pending_migrations()
            checks["database"] = "ok"
            checks["migrations"] = "ok" if not pending else "pending: " + ", ".join(pending)
        except Exception as error:  # any driver error means "not ready", never a 500
            checks["database"] = f"unreachable ({type(error).__name__})"
            checks["migrations"] = "unknown"
        missing = [port.value for port in Port if port not in plugin_host.adapters]
        checks["adapters"] = "ok" if not missing else "missing: " + ", ".join(missing)
        ready = all(value == "ok" for value in checks.values())
        return Response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
        )


class PluginsController(Controller):
    path = "/-/plugins"
    guards = [staff_only]
    include_in_schema = False

    @get("/")
    async def plugins(self, plugin_host: NamedDependency[PluginHost]) -> Template:
        health = await plugin_host.health()
        return Template(
            "operations/plugins.html",
            context={"plugins": plugin_host.plugins, "adapters": plugin_host.chosen(), "health": health},
        )
