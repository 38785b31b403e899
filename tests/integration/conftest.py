"""Helpers for in-process HTTP tests."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime

import carefront_sandbox.hooks
import httpx
import pytest
from asgi_lifespan import LifespanManager
from litestar import Litestar
from litestar.serialization import encode_json

from portal.app import SESSION_COOKIE, create_app

PUBLIC_URL = "https://testserver"


class Clock:
    """The app's clock, stopped: a test moves it by setting ``now``."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def portal(settings, clock) -> AsyncIterator[Litestar]:
    """The app with the sandbox plugin, running on ``clock``."""
    application = create_app(settings, plugins=[("sandbox", carefront_sandbox.hooks)], clock=clock)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@pytest.fixture
def user_agent() -> str | None:
    """The ``User-Agent`` that ``browser`` sends (None: httpx's own); a module overrides it to be a given browser."""
    return None


@pytest.fixture
def browser(user_agent: str | None) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with browser(app[, user_agent]) as client``: a client from an address of its own, so that
    per-address limits of other tests do not interfere."""
    default_user_agent = user_agent

    @asynccontextmanager
    async def open_browser(
        app: Litestar, user_agent: str | None = default_user_agent
    ) -> AsyncIterator[httpx.AsyncClient]:
        address = ".".join(["10", *(str(secrets.randbelow(250) + 1) for _ in range(3))])
        transport = httpx.ASGITransport(app=app, client=(address, 40000))
        headers = {"user-agent": user_agent} if user_agent else {}
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL, headers=headers) as client:
            yield client

    return open_browser


@pytest.fixture
def session_as(app: Litestar, client: httpx.AsyncClient) -> Callable[..., Awaitable[str]]:
    """Put a server-side session with ``role`` (and any other values) in the real store, and send its cookie.

    Sign-in itself is tested where it is built; tests of other pages start from a session.
    """

    async def start(role: str = "patient", **values: str) -> str:
        session_id = secrets.token_hex(32)
        realm = "patient" if role == "patient" else "staff"
        data = {"account_id": f"account-{secrets.token_hex(4)}", "realm": realm, "role": role, **values}
        await app.stores.get("sessions").set(session_id, encode_json(data), expires_in=15 * 60)
        client.cookies.set(SESSION_COOKIE, session_id)
        return session_id

    return start


@pytest.fixture
def client_for() -> Callable[[Litestar], AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``async with client_for(app) as client``: start an app built in the test, and talk to it."""

    @asynccontextmanager
    async def running(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
        async with app.lifespan():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
                yield client

    return running
